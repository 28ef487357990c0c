"""Distances and nearest-neighbour search: a streaming torch path and FAISS (imported lazily).

Distances (smaller = more similar):

* ``"cosine"``: ``1 - <q/|q|, g/|g|>``; the gallery is never copied to normalise it: the product
  with the normalised queries is scaled column-wise by ``1/|g|`` instead.
* ``"euclidean"``: squared Euclidean ``|q|^2 + |g|^2 - 2 <q, g>`` (torchreid's ``euclidean_squared``).

Queries are processed in chunks so that at most ``chunk_elems`` distances exist at a time.

Example::

    import numpy as np
    from reid_stargan.eval.retrieval import search_topk
    q, g = np.random.randn(10, 64).astype("f4"), np.random.randn(500, 64).astype("f4")
    dist, idx = search_topk(q, g, k=5, backend="torch")   # (10, 5), (10, 5)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

METRICS = ("cosine", "euclidean")
DEFAULT_CHUNK_ELEMS = 1 << 25  # 128 MB of float32 distances per query chunk


def as_tensor(x, device: str | torch.device = "cpu") -> torch.Tensor:
    """float32 torch view of a numpy array or tensor; copies only when dtype/device/layout demand it."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return x.detach().to(device=device, dtype=torch.float32).contiguous()  # evaluation: no autograd


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)


def row_sq_norms(x: torch.Tensor, rows_per_step: int = 1 << 14) -> torch.Tensor:
    """(N,) squared row norms summed from the squares (exact for small integers, unlike norm() ** 2),
    in row blocks so no N x D temporary exists."""
    return torch.cat([x[s:s + rows_per_step].square().sum(1) for s in range(0, len(x), rows_per_step)])


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def query_chunks(num_queries: int, num_gallery: int,
                 chunk_elems: int = DEFAULT_CHUNK_ELEMS) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive query chunks of at most ``chunk_elems`` distances (one query at least)."""
    step = int(max(1, min(num_queries, chunk_elems // max(1, num_gallery))))
    return ((start, min(num_queries, start + step)) for start in range(0, num_queries, step))


def inner_products(a: torch.Tensor, b: torch.Tensor, pad_rows: bool = True) -> torch.Tensor:
    """(A, B) products ``a @ b.T``; on CPU written into a buffer whose rows start every 16 floats.

    The returned view may be non-contiguous. Why: with MKL on AVX-512, an output whose row length is
    not a multiple of 16 floats (Market's 15,913 gallery columns) ran at 129 GFLOPS and the same
    product into 64-byte-aligned rows at 180 (bench/eval_speed.py, docs/bench/eval.md). Bit-identical.
    ``pad_rows=False`` gives the plain product (what the reference implementations pay).
    """
    width = b.shape[0]
    stride = -(-width // 16) * 16
    if not pad_rows or a.device.type != "cpu" or stride == width:
        return a @ b.T
    out = torch.empty(a.shape[0], stride, dtype=a.dtype)
    return torch.mm(a, b.T, out=out[:, :width])


class DistanceComputer:
    """Distances from query chunks to one fixed gallery, in the given metric.

    g: (G, D) gallery features (numpy or torch; kept by reference when already float32 contiguous).
    ``__call__(q)`` with q (B, D) returns (B, G) float32 distances on ``device``.
    """

    def __init__(self, g, metric: str = "cosine", device: str | torch.device = "cpu", pad_rows: bool = True):
        check_metric(metric)
        self.metric, self.pad_rows = metric, pad_rows
        self.device = torch.device(device)
        self.g = as_tensor(g, self.device)  # (G, D)
        if metric == "cosine":
            self.g_neg_scale = -1.0 / self.g.norm(dim=1).clamp_min(1e-12)  # (G,) -1/|g|
        else:
            self.g_sq = row_sq_norms(self.g)  # (G,) like the queries' |q|^2 (not norm() ** 2: rounding)

    @torch.no_grad()  # distances are evaluation only; also lets the CPU path view them as numpy
    def __call__(self, q) -> torch.Tensor:
        q = as_tensor(q, self.device)  # (B, D)
        cosine = self.metric == "cosine"
        dist = inner_products(l2_normalize(q) if cosine else q, self.g, self.pad_rows)  # (B, G)
        # The elementwise passes run in place, on CPU in numpy on the same memory (same IEEE rounding as
        # torch): torch's intra-op threads make each memory-bound pass several times slower on a CPU
        # shared with other jobs.
        host = (lambda t: t.numpy()) if dist.device.type == "cpu" else (lambda t: t)
        d = host(dist)
        if cosine:  # 1 - <q/|q|, g> / |g| as <q/|q|, g> * (-1/|g|) + 1: negation is exact, so the same bits
            d *= host(self.g_neg_scale)
            d += 1.0
        else:  # -2 <q, g> + |g|^2 + |q|^2: the same roundings as addmm (the factor -2 is exact)
            d *= -2.0
            d += host(self.g_sq)
            d += host(q.square().sum(1, keepdim=True))  # (B, 1)
        return dist


def pairwise_distance(q, g, metric: str = "cosine") -> np.ndarray:
    """Full (Q, G) distance matrix as numpy float32 (reference path; small sets only).

    A plain product (no padded rows), as the common toolkits compute it: the references' cost.
    """
    return DistanceComputer(g, metric, pad_rows=False)(q).cpu().numpy()


def iter_distance_chunks(
    q, g, metric: str = "cosine", chunk_elems: int = DEFAULT_CHUNK_ELEMS, device="cpu"
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield (start, end, dist) with dist (end-start, G) for consecutive query chunks."""
    computer = DistanceComputer(g, metric, device)
    for start, end in query_chunks(len(q), len(computer.g), chunk_elems):
        yield start, end, computer(q[start:end])


def iter_faiss_distance_chunks(q, g, metric: str = "cosine",
                               chunk_elems: int = DEFAULT_CHUNK_ELEMS) -> Iterator[tuple[int, int, torch.Tensor]]:
    """As :func:`iter_distance_chunks`, with each (B, G) tile computed by FAISS's brute-force kernels.

    On CPU that is ``faiss.pairwise_distances`` (BLAS; its own L2 kernel for euclidean), on a GPU
    ``faiss.pairwise_distance_gpu`` when faiss-gpu sees one. Cosine normalises the gallery once (a
    float32 copy, G x D) and each query chunk.
    """
    import faiss

    check_metric(metric)
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    g = _faiss_rows(g, metric)
    resources = faiss.StandardGpuResources() if faiss_gpu_count() > 0 else None
    for start, end in query_chunks(len(q), len(g), chunk_elems):
        qc = _faiss_rows(q[start:end], metric)
        if resources is not None:
            dist = faiss.pairwise_distance_gpu(resources, qc, g, metric=faiss_metric)
        else:
            dist = faiss.pairwise_distances(qc, g, metric=faiss_metric)
        if metric == "cosine":
            np.subtract(1.0, dist, out=dist)
        yield start, end, torch.from_numpy(dist)


def _faiss_rows(x, metric: str) -> np.ndarray:
    """float32 C-contiguous numpy rows, L2-normalised for cosine (FAISS takes numpy only)."""
    x = np.ascontiguousarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def faiss_gpu_count() -> int:
    """GPUs that FAISS can use: 0 with faiss-cpu (its get_num_gpus may be missing there)."""
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def build_faiss_index(g: np.ndarray, metric: str = "cosine", index: str = "flat", nlist: int = 1024,
                      nprobe: int = 16, use_gpu: bool | None = None):
    """FAISS index over the gallery: exact flat IP (cosine) / L2, or IVF-flat when ``index="ivf"``.

    With faiss-gpu and GPUs present (``use_gpu`` None = auto) the index is moved to the GPU, sharded
    over all of them when there are several. For cosine the gallery is normalised (FAISS keeps a copy).
    """
    import faiss

    check_metric(metric)
    g = _faiss_rows(g, metric)
    dim = g.shape[1]
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    flat = faiss.IndexFlatIP(dim) if metric == "cosine" else faiss.IndexFlatL2(dim)
    if index == "flat":
        cpu_index = flat
    elif index == "ivf":
        cpu_index = faiss.IndexIVFFlat(flat, dim, min(nlist, len(g)), faiss_metric)  # flat: the quantizer
        cpu_index.train(g)
        cpu_index.nprobe = nprobe
    else:
        raise ValueError(f"index must be 'flat' or 'ivf', got {index!r}")
    cpu_index.add(g)

    num_gpus = faiss_gpu_count()
    if use_gpu is None:
        use_gpu = num_gpus > 0
    if use_gpu and num_gpus == 0:
        raise RuntimeError("use_gpu=True but FAISS sees no GPU (is faiss-gpu installed?)")
    if use_gpu:
        if num_gpus > 1:
            options = faiss.GpuMultipleClonerOptions()
            options.shard = True  # split the gallery over the GPUs instead of replicating it
            return faiss.index_cpu_to_all_gpus(cpu_index, co=options)
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, cpu_index)
    return cpu_index


def faiss_search(index, q: np.ndarray, k: int, metric: str = "cosine"):
    """Search a :func:`build_faiss_index` index; returns (dist (Q, k) float32, idx (Q, k) int64).

    Distances follow this module's convention (cosine distance / squared Euclidean), ascending;
    missing results (IVF) have idx -1 and dist +inf.
    """
    scores, idx = index.search(_faiss_rows(q, metric), k)
    dist = 1.0 - scores if metric == "cosine" else scores
    dist = np.where(idx < 0, np.inf, dist).astype(np.float32)
    return dist, idx.astype(np.int64)


def torch_topk(q, g, k: int, metric: str = "cosine", chunk_elems: int = DEFAULT_CHUNK_ELEMS, device="cpu"):
    """Exact top-k by streaming query chunks: (dist (Q, k) float32, idx (Q, k) int64), ascending."""
    k = min(k, len(g))
    out_d = np.empty((len(q), k), dtype=np.float32)
    out_i = np.empty((len(q), k), dtype=np.int64)
    for start, end, dist in iter_distance_chunks(q, g, metric, chunk_elems, device):
        values, indices = torch.topk(dist, k, dim=1, largest=False, sorted=True)
        out_d[start:end], out_i[start:end] = values.cpu().numpy(), indices.cpu().numpy()
    return out_d, out_i


def search_topk(q, g, k: int, metric: str = "cosine", backend: str = "auto", index: str = "flat",
                nlist: int = 1024, nprobe: int = 16, use_gpu: bool | None = None):
    """Top-k gallery neighbours of each query: (dist (Q, k), idx (Q, k)), ascending distance.

    backend: "faiss", "torch" or "auto" (FAISS when importable, else torch). ``index="ivf"`` (FAISS
    only) is approximate; measure it with :func:`ivf_recall`.
    """
    if backend == "auto":
        backend = "faiss" if faiss_available() else "torch"
    if backend == "torch":
        if index != "flat":
            raise ValueError("the torch backend is exact only; use backend='faiss' for index='ivf'")
        return torch_topk(q, g, k, metric)
    if backend != "faiss":
        raise ValueError(f"backend must be 'auto', 'faiss' or 'torch', got {backend!r}")
    faiss_index = build_faiss_index(np.asarray(g), metric, index, nlist, nprobe, use_gpu)
    return faiss_search(faiss_index, np.asarray(q), min(k, len(g)), metric)


def ivf_recall(q, g, k: int = 10, metric: str = "cosine", nlist: int = 1024, nprobe: int = 16) -> float:
    """Recall@k of FAISS IVF search against exact search: mean fraction of the exact top-k found."""
    _, exact = search_topk(q, g, k, metric, backend="torch")
    _, approx = search_topk(q, g, k, metric, backend="faiss", index="ivf", nlist=nlist, nprobe=nprobe)
    found = [len(np.intersect1d(a[a >= 0], e)) for a, e in zip(approx, exact, strict=True)]
    return float(np.sum(found) / exact.size)
