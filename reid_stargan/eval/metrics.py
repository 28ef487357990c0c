"""Re-ID ranking metrics: the plain reference and the exact rank-based fast path.

Protocol (single query, as torchreid's ``eval_market1501`` and fast-reid implement it):

* for each query, gallery items with the same pid AND the same camera are removed;
* gallery items with pid -1 are junk and removed for every query;
* a query with no remaining true match is skipped (and counted);
* AP comes in both forms, always both reported:

  - ``mAP``: the non-interpolated finite sum ``mean_i (i / rank_i)`` over the true matches
    (torchreid ``eval_market1501``, fast-reid, sklearn >= 0.19 ``average_precision_score``);
  - ``mAP_trapezoid``: the Market-1501 MATLAB ``compute_AP``, the trapezoid between the precision
    just before each hit (1 when the hit is at rank 1) and the precision at the hit,
    ``mean_i ((i - 1) / (rank_i - 1) + i / rank_i) / 2``. open-reid's ``mean_ap`` gave this form with
    the sklearn < 0.19 of its time (``auc`` of the precision-recall curve); CamStyle and HHL evaluate
    with it. It is never above the finite sum for the same ranking.
* CMC rank-k is the fraction of valid queries whose first true match is within the top k,
  cut at ``max_rank`` (reduced to the gallery size when that is smaller);
* mINP (fast-reid) is ``mean(num_matches / rank_of_last_match)``.

Ties are broken by gallery order: every sort here is stable, so of two gallery items at exactly the
same distance the one with the lower gallery index ranks first.

Every metric only needs, for each valid query, the 0-based ranks of its true matches in the
filtered, sorted gallery list. The reference gets them by sorting the whole distance row;
:func:`positive_ranks_chunk` gets the same numbers without sorting the gallery (see its docstring).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

AP_MODES = ("finite", "trapezoid")  # AP forms; evaluate() reports both: "mAP" and "mAP_trapezoid"
MAX_KEYED_ELEMS = (1 << 31) - 1  # rows x gallery of one candidate sort, so its int64 keys cannot overflow


def effective_max_rank(max_rank: int, num_gallery: int) -> int:
    if num_gallery < max_rank:
        warnings.warn(f"gallery has only {num_gallery} items; max_rank reduced from {max_rank}", stacklevel=3)
        return num_gallery
    return max_rank


def eval_reference(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> dict:
    """Plain reference: stable-sort each query's full distance row, then walk it (torchreid style).

    distmat: (Q, G) distances (smaller = more similar). Returns the same dict as
    :func:`metrics_from_ranks` (fractions in [0, 1], not percent). O(Q G log G); for tests and benches.
    """
    num_q, num_g = distmat.shape
    max_rank = effective_max_rank(max_rank, num_g)
    indices = np.argsort(distmat, axis=1, kind="stable")  # (Q, G)
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)

    all_cmc, all_ap, all_ap_trap, all_inp = [], [], [], []
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        remove |= g_pids[order] == -1
        raw_cmc = matches[q_idx][~remove]  # 1 where a true match sits in the filtered ranked list
        if not np.any(raw_cmc):
            continue
        hit_ranks = np.flatnonzero(raw_cmc)  # 0-based
        cmc = raw_cmc.cumsum()
        all_inp.append(cmc[hit_ranks[-1]] / (hit_ranks[-1] + 1.0))
        cmc = np.minimum(cmc, 1)
        # A valid query always hits before its list ends, so pad a short list with its final 1s.
        cmc = np.pad(cmc[:max_rank], (0, max(0, max_rank - len(cmc))), mode="edge")
        all_cmc.append(cmc)

        num_rel = raw_cmc.sum()
        precision = np.arange(1, num_rel + 1) / (hit_ranks + 1.0)
        all_ap.append(precision.sum() / num_rel)
        # Market-1501 MATLAB compute_AP: trapezoid between the precision just before each hit
        # (1.0 when the hit is at rank 1) and the precision at the hit.
        prev = np.where(hit_ranks > 0, np.arange(num_rel) / np.maximum(hit_ranks, 1), 1.0)
        all_ap_trap.append(((prev + precision) / 2).sum() / num_rel)

    if not all_ap:
        raise ValueError("no query has a true match in the gallery (after same-camera and junk removal)")
    return _summary(all_ap, all_ap_trap, all_inp, np.asarray(all_cmc, dtype=np.float64).mean(0), num_q)


def _summary(ap, ap_trapezoid, inp, cmc: np.ndarray, num_queries: int) -> dict:
    """The result dict of both paths, from the per-valid-query AP, trapezoid AP and INP and the CMC curve."""
    return {"mAP": float(np.mean(ap)), "mAP_trapezoid": float(np.mean(ap_trapezoid)), "mINP": float(np.mean(inp)),
            "cmc": cmc, "num_valid_queries": len(ap), "num_skipped_queries": num_queries - len(ap)}


def metrics_from_ranks(
    hit_ranks: np.ndarray,
    hit_query: np.ndarray,
    num_queries: int,
    num_gallery: int,
    max_rank: int = 50,
) -> dict:
    """Metrics from the ranks of the true matches.

    hit_ranks: (H,) 0-based rank of each true match in its query's filtered ranked gallery list.
    hit_query: (H,) the query index of each entry. Entries of one query must be contiguous and in
    ascending rank order. Queries without an entry are the skipped ones.
    Returns {"mAP" (finite sum), "mAP_trapezoid", "mINP", "cmc" (array of length max_rank),
    "num_valid_queries", "num_skipped_queries"}, fractions in [0, 1].
    """
    max_rank = effective_max_rank(max_rank, num_gallery)
    hit_ranks = np.asarray(hit_ranks, dtype=np.float64)
    hit_query = np.asarray(hit_query, dtype=np.int64)
    if len(hit_ranks) == 0:
        raise ValueError("no query has a true match in the gallery (after same-camera and junk removal)")
    starts = np.flatnonzero(np.r_[True, hit_query[1:] != hit_query[:-1]])  # first entry of each query
    counts = np.diff(np.r_[starts, len(hit_query)])
    hit_number = np.arange(len(hit_ranks)) - np.repeat(starts, counts) + 1.0  # i = 1..m within a query

    precision = hit_number / (hit_ranks + 1.0)
    prev = np.where(hit_ranks > 0, (hit_number - 1) / np.maximum(hit_ranks, 1), 1.0)  # precision before the hit
    ap_per_query = np.add.reduceat(precision, starts) / counts
    ap_trapezoid_per_query = np.add.reduceat((prev + precision) / 2, starts) / counts

    last = starts + counts - 1
    inp_per_query = counts / (hit_ranks[last] + 1.0)
    first_rank = hit_ranks[starts]
    cmc = (first_rank[None, :] <= np.arange(max_rank)[:, None]).mean(1)
    return _summary(ap_per_query, ap_trapezoid_per_query, inp_per_query, cmc, int(num_queries))


class QueryMatchIndex:
    """Per-query gallery index lists of true matches and same-camera removals.

    Built once from the gallery pids; ``lists(q_pids, q_camids)`` returns the flattened
    (row, col) pairs for a chunk of queries.
    """

    def __init__(self, g_pids: np.ndarray, g_camids: np.ndarray):
        self.g_pids = np.asarray(g_pids)
        self.g_camids = np.asarray(g_camids)
        self.junk = np.flatnonzero(self.g_pids == -1)
        order = np.argsort(self.g_pids, kind="stable")  # gallery indices grouped by pid, ascending inside
        uniq, starts = np.unique(self.g_pids[order], return_index=True)
        ends = np.r_[starts[1:], len(order)]
        self._groups = {int(p): order[s:e] for p, s, e in zip(uniq, starts, ends, strict=True) if p != -1}

    def lists(self, q_pids: np.ndarray, q_camids: np.ndarray):
        """Return (pos_rows, pos_cols, rm_rows, rm_cols) int64 arrays for a chunk of queries."""
        pos_r, pos_c, rm_r, rm_c = [], [], [], []
        for row, (pid, cam) in enumerate(zip(q_pids.tolist(), q_camids.tolist(), strict=True)):
            same_pid = self._groups.get(pid)
            if same_pid is None:
                continue
            same_cam = self.g_camids[same_pid] == cam
            pos, rm = same_pid[~same_cam], same_pid[same_cam]
            pos_r.append(np.full(len(pos), row, dtype=np.int64))
            pos_c.append(pos)
            rm_r.append(np.full(len(rm), row, dtype=np.int64))
            rm_c.append(rm)
        if not pos_r:
            return tuple(np.zeros(0, dtype=np.int64) for _ in range(4))
        return tuple(np.concatenate(xs).astype(np.int64) for xs in (pos_r, pos_c, rm_r, rm_c))


def row_value_col_keys(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, num_cols: int) -> np.ndarray:
    """int64 keys that sort like (row, value, col): ``(row * 2^32 + ordered_bits(value)) * num_cols + col``.

    values: float32 (finite or +inf, no NaN). The float bits are mapped to an unsigned 32-bit integer
    that orders like the float (+0.0 is used for -0.0, which compares equal to it). Needs
    (max row + 1) * num_cols < 2^31 so the key fits in int64.
    """
    bits = (values + np.float32(0.0)).view(np.int32).astype(np.int64)  # + 0.0 turns -0.0 into +0.0
    ordered = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits) + (1 << 31)  # [0, 2^32), float order
    return ((rows.astype(np.int64) << 32) + ordered) * num_cols + cols


def _candidates(dist: torch.Tensor, junk, rm_r, rm_c, pos_r, pos_c):
    """Remove junk / same-camera items (set to +inf in place) and pick, per row, the items no farther
    than the row's worst true match. Returns numpy (rows, cols, values), row-major.

    On CPU this is numpy on the tensor's memory: on a CPU shared with other jobs, torch's intra-op
    threads make each of these memory-bound passes several times slower than one numpy thread.
    """
    num_b = dist.shape[0]
    if dist.device.type == "cpu":
        d = dist.numpy()  # shares memory with dist
        if len(junk):
            d[:, junk] = np.inf
        d[rm_r, rm_c] = np.inf
        worst = np.full(num_b, -np.inf, dtype=d.dtype)
        np.maximum.at(worst, pos_r, d[pos_r, pos_c])
        rows, cols = np.nonzero(d <= worst[:, None])
        return rows, cols, d[rows, cols]
    device = dist.device
    if len(junk):
        dist.index_fill_(1, torch.from_numpy(junk).to(device), float("inf"))
    dist[torch.from_numpy(rm_r).to(device), torch.from_numpy(rm_c).to(device)] = float("inf")
    pos_r_t = torch.from_numpy(pos_r).to(device)
    worst = torch.full((num_b,), float("-inf"), dtype=dist.dtype, device=device)
    worst.scatter_reduce_(0, pos_r_t, dist[pos_r_t, torch.from_numpy(pos_c).to(device)], reduce="amax")
    rows, cols = torch.nonzero(dist <= worst[:, None], as_tuple=True)
    return rows.cpu().numpy(), cols.cpu().numpy(), dist[rows, cols].cpu().numpy()


def positive_ranks_chunk(
    dist: torch.Tensor,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    match_index: QueryMatchIndex,
):
    """Exact 0-based ranks of the true matches for a chunk of queries, without sorting the gallery.

    dist: (B, G) distances of the chunk to the whole gallery (CPU or CUDA); it is modified in place
    (removed items are set to +inf). A true match's rank is the number of valid gallery items before
    it in the (distance, gallery index) order, so only the items no farther than the query's worst
    true match can matter: they are picked with one comparison, and only they are sorted, by one
    sort of int64 (row, distance, index) keys. For a usable model that is a few hundred items per
    query instead of the whole gallery.
    Returns (hit_ranks, hit_rows) int64 numpy arrays, grouped by row and ascending in rank.
    """
    num_b, num_g = dist.shape
    rows_per_call = max(1, MAX_KEYED_ELEMS // num_g)
    if num_b > rows_per_call:  # the int64 sort keys need rows * G < 2^31: split the chunk
        starts = range(0, num_b, rows_per_call)
        parts = [positive_ranks_chunk(dist[s:s + rows_per_call], q_pids[s:s + rows_per_call],
                                      q_camids[s:s + rows_per_call], match_index) for s in starts]
        return (np.concatenate([r for r, _ in parts]),
                np.concatenate([q + s for (_, q), s in zip(parts, starts, strict=True)]))
    pos_r, pos_c, rm_r, rm_c = match_index.lists(q_pids, q_camids)
    if len(pos_r) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    rows, cols, values = _candidates(dist, match_index.junk, rm_r, rm_c, pos_r, pos_c)
    keys = np.sort(row_value_col_keys(values, rows, cols, num_g))  # by (row, distance, gallery index)
    cols = keys % num_g
    rows = keys // (num_g << 32)
    row_start = np.r_[0, np.cumsum(np.bincount(rows, minlength=num_b))]
    rank = np.arange(len(rows)) - row_start[rows]
    is_hit = match_index.g_pids[cols] == np.asarray(q_pids, dtype=np.int64)[rows]  # removed: +inf, never here
    return rank[is_hit], rows[is_hit]
