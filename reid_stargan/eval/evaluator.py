"""High-level re-ID evaluation: features + labels in, protocol metrics (percent) out.

Example::

    import numpy as np
    from reid_stargan.eval import evaluate
    rng = np.random.default_rng(0)
    g_pids = np.repeat(np.arange(50), 4); g_cams = np.tile(np.arange(4), 50)
    g = rng.normal(size=(200, 32)).astype("f4") + 3 * np.eye(50, 32, dtype="f4")[g_pids]
    q = g[::4] + 0.1 * rng.normal(size=(50, 32)).astype("f4")
    m = evaluate(q, g, np.arange(50), g_pids, np.full(50, 9), g_cams)
    print(m["mAP"], m["mAP_trapezoid"], m["rank1"])

Both AP forms are always reported (see :mod:`.metrics`): ``mAP`` is the finite sum (torchreid /
fast-reid), ``mAP_trapezoid`` the Market-1501 MATLAB / open-reid trapezoid that CamStyle and HHL
report.

Backends (all exact; they differ in speed and memory, and agree to float rounding):

* ``"faiss"`` (what ``"auto"`` picks when FAISS is installed, unless ``device`` is CUDA and FAISS
  sees no GPU): query chunks x whole gallery, each tile
  computed by FAISS's brute-force distance kernels (on the GPU with faiss-gpu), then the ranks of the
  true matches by counting (:func:`reid_stargan.eval.metrics.positive_ranks_chunk`); memory is the
  features plus one chunk, whatever the gallery size. mAP needs the rank of *every* true match, deep
  in the list, so a top-k search does not fit it: the k-growing flat search this replaced took 3x the
  torch path's time at Market size. FAISS's kNN search serves the query tool and approximate (IVF)
  search instead (:mod:`.retrieval`).
* ``"torch"``: the same tiles by one torch matrix product; runs on ``device`` (CUDA works).
* ``"reference"``: full distance matrix and a stable sort of every row (torchreid style); small sets.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .metrics import (
    AP_MODES,
    QueryMatchIndex,
    eval_reference,
    metrics_from_ranks,
    positive_ranks_chunk,
)
from .retrieval import (
    DEFAULT_CHUNK_ELEMS,
    check_metric,
    faiss_available,
    faiss_gpu_count,
    iter_distance_chunks,
    iter_faiss_distance_chunks,
    pairwise_distance,
)

BACKENDS = ("auto", "torch", "faiss", "reference")
REPORTED_RANKS = (1, 5, 10, 20)


def validate_inputs(q_feats, g_feats, q_pids, g_pids, q_camids, g_camids):
    """Check shapes, lengths and finiteness; return numpy (q_pids, g_pids, q_camids, g_camids) as int64."""
    for name, feats in (("q_feats", q_feats), ("g_feats", g_feats)):
        if feats.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(feats.shape)}")
        if feats.shape[0] == 0:
            raise ValueError(f"{name} is empty: nothing to evaluate")
    if q_feats.shape[1] != g_feats.shape[1]:
        raise ValueError(f"feature dims differ: query {q_feats.shape[1]} vs gallery {g_feats.shape[1]}")
    labels = []
    for name, arr, n in (("q_pids", q_pids, len(q_feats)), ("g_pids", g_pids, len(g_feats)),
                         ("q_camids", q_camids, len(q_feats)), ("g_camids", g_camids, len(g_feats))):
        arr = np.asarray(arr.cpu() if isinstance(arr, torch.Tensor) else arr)
        if arr.ndim != 1 or len(arr) != n:
            raise ValueError(f"{name} must be 1-D with {n} entries (one per feature row), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer) and not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integers")
        labels.append(arr.astype(np.int64))
    for name, feats in (("q_feats", q_feats), ("g_feats", g_feats)):
        if not _all_finite(feats):
            raise ValueError(f"{name} contains NaN or Inf values")
    return tuple(labels)


def _all_finite(feats, rows_per_block: int = 65536) -> bool:
    """NaN/Inf check in row blocks: a whole-array mask would be a G x D bool array (1 GB at 500k x 2048)."""
    check = torch.isfinite if isinstance(feats, torch.Tensor) else np.isfinite
    return all(bool(check(feats[s:s + rows_per_block]).all()) for s in range(0, len(feats), rows_per_block))


def evaluate(
    q_feats,
    g_feats,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    metric: str = "cosine",
    rerank: bool = False,
    ap: str = "finite",
    backend: str = "auto",
    max_rank: int = 50,
    chunk_elems: int = DEFAULT_CHUNK_ELEMS,
    device: str = "cpu",
    rerank_k1: int = 20,
    rerank_k2: int = 6,
    rerank_lambda: float = 0.3,
) -> dict:
    """Single-query re-ID evaluation (torchreid / fast-reid protocol; see :mod:`.metrics`).

    q_feats (Q, D), g_feats (G, D): float features (numpy or torch); the pids/camids: (Q,) / (G,) ints,
    gallery pid -1 = junk. Returns {"mAP" (finite-sum AP), "mAP_trapezoid" (Market-1501 MATLAB /
    open-reid AP), "rank1", "rank5", "rank10", "rank20", "mINP" (percent), "num_valid_queries",
    "num_skipped_queries", "cmc" (percent, length max_rank), and the settings}.
    `ap` is kept for old callers and changes no number: both forms are always computed. Asking for
    "trapezoid" warns, because it used to put the trapezoid form under "mAP".
    Raises ValueError on mismatched lengths, NaN/Inf features, empty sets, or no valid query.
    """
    check_metric(metric)
    if ap not in AP_MODES:
        raise ValueError(f"ap must be one of {AP_MODES}, got {ap!r}")
    if ap != "finite":
        warnings.warn("evaluate(ap=...) no longer changes 'mAP': 'mAP' is always the finite sum and "
                      "'mAP_trapezoid' the trapezoid form; read the key you need", DeprecationWarning,
                      stacklevel=2)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    q_pids, g_pids, q_camids, g_camids = validate_inputs(q_feats, g_feats, q_pids, g_pids, q_camids, g_camids)
    num_q, num_g = len(q_feats), len(g_feats)
    if backend == "auto":
        # FAISS when installed, except on a CUDA device that FAISS cannot use (faiss-cpu): torch's tiles there.
        faiss_usable = faiss_available() and (torch.device(device).type != "cuda" or faiss_gpu_count() > 0)
        backend = "faiss" if faiss_usable else "torch"

    if backend == "reference":
        if rerank:
            from .rerank import re_ranking_dense

            distmat = re_ranking_dense(q_feats, g_feats, rerank_k1, rerank_k2, rerank_lambda, metric)
        else:
            distmat = pairwise_distance(q_feats, g_feats, metric)
        raw = eval_reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    else:
        if rerank:
            from .rerank import rerank_distance_chunks

            # Re-ranking runs its own neighbour pass (numpy / torch tiles): report the path that ran.
            backend = "torch"
            chunks = rerank_distance_chunks(q_feats, g_feats, rerank_k1, rerank_k2, rerank_lambda, metric,
                                            chunk_elems=chunk_elems, device=device)
        elif backend == "faiss":
            chunks = iter_faiss_distance_chunks(q_feats, g_feats, metric, chunk_elems)
        else:
            chunks = iter_distance_chunks(q_feats, g_feats, metric, chunk_elems, device)
        match_index = QueryMatchIndex(g_pids, g_camids)
        ranks, rows = [], []  # the true matches' ranks and query rows, chunk by chunk
        for start, end, dist in chunks:
            r, q = positive_ranks_chunk(dist, q_pids[start:end], q_camids[start:end], match_index)
            ranks.append(r)
            rows.append(q + start)
        raw = metrics_from_ranks(np.concatenate(ranks), np.concatenate(rows), num_q, num_g, max_rank)

    cmc = np.asarray(raw["cmc"])
    return {"mAP": 100.0 * raw["mAP"], "mAP_trapezoid": 100.0 * raw["mAP_trapezoid"],
            **{f"rank{k}": 100.0 * float(cmc[min(k, len(cmc)) - 1]) for k in REPORTED_RANKS},
            "mINP": 100.0 * raw["mINP"], "num_valid_queries": int(raw["num_valid_queries"]),
            "num_skipped_queries": int(raw["num_skipped_queries"]), "cmc": [100.0 * float(c) for c in cmc],
            "metric": metric, "rerank": bool(rerank), "backend": backend,
            "num_queries": num_q, "num_gallery": num_g, "max_rank": len(cmc)}
