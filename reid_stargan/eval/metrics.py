"""Re-ID ranking metrics: the plain reference and the exact rank-based fast path.

Protocol (single query, as torchreid's ``eval_market1501`` and fast-reid implement it):

* for each query, gallery items with the same pid AND the same camera are removed;
* gallery items with pid -1 are junk and removed for every query;
* a query with no remaining true match is skipped (and counted);
* AP is the non-interpolated finite sum ``mean_i (i / rank_i)`` over the true matches
  (``ap="trapezoid"`` gives the official Market-1501 MATLAB ``compute_AP`` instead);
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

AP_MODES = ("finite", "trapezoid")


def _check_ap(ap: str) -> None:
    if ap not in AP_MODES:
        raise ValueError(f"ap must be one of {AP_MODES}, got {ap!r}")


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
    ap: str = "finite",
) -> dict:
    """Plain reference: stable-sort each query's full distance row, then walk it (torchreid style).

    distmat: (Q, G) distances (smaller = more similar). Returns the same dict as
    :func:`metrics_from_ranks` (fractions in [0, 1], not percent). O(Q G log G); for tests and benches.
    """
    _check_ap(ap)
    num_q, num_g = distmat.shape
    max_rank = effective_max_rank(max_rank, num_g)
    indices = np.argsort(distmat, axis=1, kind="stable")  # (Q, G)
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)

    all_cmc, all_ap, all_inp = [], [], []
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        remove |= g_pids[order] == -1
        raw_cmc = matches[q_idx][~remove]  # 1 where a true match sits in the filtered ranked list
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        last_hit = np.flatnonzero(raw_cmc)[-1]
        all_inp.append(cmc[last_hit] / (last_hit + 1.0))
        cmc = np.minimum(cmc, 1)
        # A valid query always hits before its list ends, so pad a short list with its final 1s.
        cmc = np.pad(cmc[:max_rank], (0, max(0, max_rank - len(cmc))), mode="edge")
        all_cmc.append(cmc)

        num_rel = raw_cmc.sum()
        hit_ranks = np.flatnonzero(raw_cmc)  # 0-based
        precision = np.arange(1, num_rel + 1) / (hit_ranks + 1.0)
        if ap == "finite":
            all_ap.append(precision.sum() / num_rel)
        else:
            # Market-1501 MATLAB compute_AP: trapezoid between the precision just before each hit
            # (1.0 when the hit is at rank 1) and the precision at the hit.
            prev = np.where(hit_ranks > 0, np.arange(num_rel) / np.maximum(hit_ranks, 1), 1.0)
            all_ap.append(((prev + precision) / 2).sum() / num_rel)

    num_valid = len(all_ap)
    if num_valid == 0:
        raise ValueError("no query has a true match in the gallery (after same-camera and junk removal)")
    return {
        "mAP": float(np.mean(all_ap)),
        "mINP": float(np.mean(all_inp)),
        "cmc": np.asarray(all_cmc, dtype=np.float64).mean(0),
        "num_valid_queries": num_valid,
        "num_skipped_queries": num_q - num_valid,
    }


def metrics_from_ranks(
    hit_ranks: np.ndarray,
    hit_query: np.ndarray,
    num_queries: int,
    num_gallery: int,
    max_rank: int = 50,
    ap: str = "finite",
) -> dict:
    """Metrics from the ranks of the true matches.

    hit_ranks: (H,) 0-based rank of each true match in its query's filtered ranked gallery list.
    hit_query: (H,) the query index of each entry. Entries of one query must be contiguous and in
    ascending rank order. Queries without an entry are the skipped ones.
    Returns {"mAP", "mINP", "cmc" (array of length max_rank), "num_valid_queries",
    "num_skipped_queries"}, fractions in [0, 1].
    """
    _check_ap(ap)
    max_rank = effective_max_rank(max_rank, num_gallery)
    hit_ranks = np.asarray(hit_ranks, dtype=np.float64)
    hit_query = np.asarray(hit_query, dtype=np.int64)
    if len(hit_ranks) == 0:
        raise ValueError("no query has a true match in the gallery (after same-camera and junk removal)")
    starts = np.flatnonzero(np.r_[True, hit_query[1:] != hit_query[:-1]])  # first entry of each query
    counts = np.diff(np.r_[starts, len(hit_query)])
    hit_number = np.arange(len(hit_ranks)) - np.repeat(starts, counts) + 1.0  # i = 1..m within a query

    precision = hit_number / (hit_ranks + 1.0)
    if ap == "finite":
        per_hit = precision
    else:
        prev = np.where(hit_ranks > 0, (hit_number - 1) / np.maximum(hit_ranks, 1), 1.0)
        per_hit = (prev + precision) / 2
    ap_per_query = np.add.reduceat(per_hit, starts) / counts

    last = starts + counts - 1
    inp_per_query = counts / (hit_ranks[last] + 1.0)
    first_rank = hit_ranks[starts]
    cmc = (first_rank[None, :] <= np.arange(max_rank)[:, None]).mean(1)

    num_valid = len(starts)
    return {
        "mAP": float(ap_per_query.mean()),
        "mINP": float(inp_per_query.mean()),
        "cmc": cmc,
        "num_valid_queries": int(num_valid),
        "num_skipped_queries": int(num_queries - num_valid),
    }


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
        pids_sorted = self.g_pids[order]
        uniq, starts = np.unique(pids_sorted, return_index=True)
        ends = np.r_[starts[1:], len(order)]
        self._groups = {int(p): order[s:e] for p, s, e in zip(uniq, starts, ends, strict=True) if p != -1}

    def lists(self, q_pids: np.ndarray, q_camids: np.ndarray):
        """Return (pos_rows, pos_cols, rm_rows, rm_cols) int64 arrays for a chunk of queries."""
        empty = np.zeros(0, dtype=np.int64)
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
        cat = (lambda xs: np.concatenate(xs).astype(np.int64)) if pos_r else (lambda xs: empty)
        return cat(pos_r), cat(pos_c), cat(rm_r), cat(rm_c)


def positive_ranks_chunk(
    dist: torch.Tensor,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    match_index: QueryMatchIndex,
    g_pids_t: torch.Tensor | None = None,
):
    """Exact 0-based ranks of the true matches for a chunk of queries, without sorting the gallery.

    dist: (B, G) distances of the chunk to the whole gallery; it is modified in place (removed items
    are set to +inf). A true match's rank is the number of valid gallery items before it in the
    (distance, gallery index) order, so only the items no farther than the query's worst true match
    can matter: they are picked with one comparison, and only they are sorted. For a usable model
    that is a few hundred items per query instead of the whole gallery.
    Returns (hit_ranks, hit_rows) int64 numpy arrays, grouped by row and ascending in rank.
    """
    device = dist.device
    num_b = dist.shape[0]
    pos_r, pos_c, rm_r, rm_c = match_index.lists(q_pids, q_camids)
    if len(match_index.junk):
        dist.index_fill_(1, torch.from_numpy(match_index.junk).to(device), float("inf"))
    if len(rm_r):
        dist[torch.from_numpy(rm_r).to(device), torch.from_numpy(rm_c).to(device)] = float("inf")
    if len(pos_r) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    pos_r_t = torch.from_numpy(pos_r).to(device)
    pos_d = dist[pos_r_t, torch.from_numpy(pos_c).to(device)]
    worst = torch.full((num_b,), float("-inf"), dtype=dist.dtype, device=device)
    worst.scatter_reduce_(0, pos_r_t, pos_d, reduce="amax")

    rows, cols = torch.nonzero(dist <= worst[:, None], as_tuple=True)  # row-major, cols ascending
    cand_d = dist[rows, cols]
    # Order candidates by (row, distance, gallery index): stable sort by distance keeps the index
    # order among equal distances, then a stable sort by row groups them per query.
    order = torch.sort(cand_d, stable=True).indices
    order = order[torch.sort(rows[order], stable=True).indices]
    rows, cols = rows[order], cols[order]
    row_start = torch.zeros(num_b + 1, dtype=torch.int64, device=device)
    row_start[1:] = torch.cumsum(torch.bincount(rows, minlength=num_b), 0)
    rank = torch.arange(len(rows), device=device) - row_start[rows]

    if g_pids_t is None:
        g_pids_t = torch.from_numpy(match_index.g_pids.astype(np.int64)).to(device)
    q_pids_t = torch.from_numpy(np.asarray(q_pids, dtype=np.int64)).to(device)
    is_hit = g_pids_t[cols] == q_pids_t[rows]  # removed items are +inf, never candidates
    return rank[is_hit].cpu().numpy(), rows[is_hit].cpu().numpy()
