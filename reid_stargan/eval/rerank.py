"""k-reciprocal re-ranking (Zhong et al., CVPR 2017): a dense reference and a sparse streaming version.

Both compute, for query i and gallery j,
``final(i, j) = (1 - lambda) * jaccard(i, j) + lambda * d(i, j) / max_k d(i, k)``
where d is the chosen metric over all N = Q + G items (cosine distance, or squared Euclidean as in
the original code; for L2-normalised features the two give the same row-normalised d) and jaccard
comes from the k-reciprocal nearest-neighbour encodings V (k1 = 20, expanded with the k1/2 sets,
Gaussian weights, query expansion over the k2 = 6 nearest neighbours).

The dense reference follows the original implementation step by step with N x N arrays (the
original normalises by column maxima of a symmetric matrix: the same thing as row maxima here).
The sparse version needs only each item's nearest neighbours and its row maximum: one pass over
square tiles of the symmetric N x N distances (tiles on and above the diagonal only, never the whole
matrix), the k-reciprocal expansion by sparse matrix products, V as a scipy CSR matrix, and the final
query x gallery distances yielded chunk by chunk. Both order neighbours by (distance, index).
Market size (3,368 x 15,913, 2048-d) on an idle 2-core CPU: ~7 s vs 70-78 s for the dense reference,
which needs ~6 GB (10-11x; docs/bench/eval.md).

Example::

    import numpy as np
    from reid_stargan.eval.rerank import re_ranking_dense, rerank_distance_chunks
    q, g = np.random.randn(20, 16).astype("f4"), np.random.randn(100, 16).astype("f4")
    dense = re_ranking_dense(q, g)                                          # (20, 100)
    sparse = np.concatenate([d.numpy() for _, _, d in rerank_distance_chunks(q, g)])
    assert np.allclose(dense, sparse, atol=1e-5)
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from .metrics import MAX_KEYED_ELEMS, row_value_col_keys
from .retrieval import (
    DEFAULT_CHUNK_ELEMS,
    DistanceComputer,
    as_tensor,
    check_metric,
    inner_products,
    pairwise_distance,
    query_chunks,
    row_sq_norms,
)


def _half(k1: int) -> int:
    return int(np.around(k1 / 2.0))


def re_ranking_dense(q_feats, g_feats, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
                     metric: str = "cosine") -> np.ndarray:
    """Original dense k-reciprocal re-ranking; returns final (Q, G) distances. O(N^2) memory."""
    q = np.asarray(q_feats, dtype=np.float32)
    feats = np.concatenate([q, np.asarray(g_feats, dtype=np.float32)])
    num_q, num_all = len(q), len(feats)
    original = pairwise_distance(feats, feats, metric)  # (N, N)
    original = (original / original.max(axis=1, keepdims=True)).astype(np.float32)
    initial_rank = np.argsort(original, axis=1, kind="stable").astype(np.int32)
    V = np.zeros_like(original)
    half = _half(k1)
    for i in range(num_all):
        forward = initial_rank[i, : k1 + 1]
        backward = initial_rank[forward, : k1 + 1]
        k_reciprocal = forward[np.where(backward == i)[0]]
        expansion = k_reciprocal
        for candidate in k_reciprocal:
            cand_forward = initial_rank[candidate, : half + 1]
            cand_backward = initial_rank[cand_forward, : half + 1]
            cand_reciprocal = cand_forward[np.where(cand_backward == candidate)[0]]
            if len(np.intersect1d(cand_reciprocal, k_reciprocal)) > 2.0 / 3 * len(cand_reciprocal):
                expansion = np.append(expansion, cand_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        V[i, expansion] = weight / np.sum(weight)
    original = original[:num_q]
    if k2 != 1:
        V_qe = np.zeros_like(V)
        for i in range(num_all):
            V_qe[i] = np.mean(V[initial_rank[i, :k2]], axis=0)
        V = V_qe
    inv_index = [np.where(V[:, j] != 0)[0] for j in range(num_all)]
    jaccard = np.zeros_like(original)
    for i in range(num_q):
        temp_min = np.zeros(num_all, dtype=np.float32)
        nonzero = np.where(V[i] != 0)[0]
        for j in nonzero:
            temp_min[inv_index[j]] += np.minimum(V[i, j], V[inv_index[j], j])
        jaccard[i] = 1 - temp_min / (2.0 - temp_min)
    final = jaccard * (1 - lambda_value) + original * lambda_value
    return final[:, num_q:]


class KnnPass(NamedTuple):
    """What the one streamed pass over the N x N distances keeps (nothing N x N).

    idx (N, k) int64 and dist (N, k) float32: each item's k nearest items (itself included), ordered by
    (distance, index); row_max (N,) float32: each item's largest distance; block: the (split, N - split)
    float32 distances of the rows [0, split) to the columns [split, N) (queries x gallery) when asked
    for and small enough, else None.
    """

    idx: np.ndarray
    dist: np.ndarray
    row_max: np.ndarray
    block: np.ndarray | None


class _SymmetricTiles:
    """Distance tiles d(I, J) over one feature set (d is symmetric: callers only ask for J >= I).

    The product runs in torch (multi-threaded BLAS); everything after it is numpy: on a CPU shared with
    other jobs, torch's intra-op threading makes each small elementwise op cost tens of milliseconds.
    """

    def __init__(self, feats: torch.Tensor, metric: str):
        check_metric(metric)
        self.feats, self.metric = feats, metric
        sq = row_sq_norms(feats.detach()).numpy()  # (N,)
        # cosine: 1 - <f_i, f_j> / (|f_i| |f_j|), scaled on the product: no normalised copy of the features.
        self.scale = 1.0 / np.maximum(np.sqrt(sq), 1e-12) if metric == "cosine" else None  # (N,)
        self.sq = sq if metric == "euclidean" else None  # (N,)

    @torch.no_grad()
    def __call__(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        if (i0, i1) == (j0, j1) and i1 - i0 >= 512:
            tile = self._diagonal_products(i0, i1).numpy()  # (B, B)
        else:
            tile = inner_products(self.feats[i0:i1], self.feats[j0:j1]).numpy()  # (Bi, Bj), rows padded
        if self.metric == "cosine":
            tile *= self.scale[i0:i1, None]
            tile *= self.scale[None, j0:j1]
            np.subtract(1.0, tile, out=tile)
        else:
            tile *= -2.0
            tile += self.sq[i0:i1, None]
            tile += self.sq[None, j0:j1]
        return tile

    @torch.no_grad()
    def pair_distances(self, rows: np.ndarray, cols: np.ndarray, step: int = 256) -> np.ndarray:
        """d(rows[t], cols[t]) for item pairs, without any N x N product.

        Small steps keep the two gathered (step, D) blocks in cache: 256 pairs per step ran 4x faster
        than 8,192 (21,500 pairs of 2048-d features: 0.05 s vs 0.20 s), with identical sums.
        """
        out = np.empty(len(rows), dtype=np.float32)
        rows_t, cols_t = torch.from_numpy(rows), torch.from_numpy(cols)
        for s in range(0, len(rows), step):
            r, c = rows_t[s:s + step], cols_t[s:s + step]
            dot = (self.feats[r] * self.feats[c]).sum(1).numpy()  # (P,)
            r, c = r.numpy(), c.numpy()
            if self.metric == "cosine":
                out[s:s + step] = 1.0 - dot * self.scale[r] * self.scale[c]
            else:
                out[s:s + step] = self.sq[r] + self.sq[c] - 2 * dot
        return out

    def _diagonal_products(self, i0: int, i1: int) -> torch.Tensor:
        """X_I X_I^T from three of its four half blocks (the fourth is the transpose of its mirror): a
        quarter of the diagonal tiles' products, ~5 % of the pass's at Market size, is not computed."""
        x = self.feats[i0:i1]
        n = len(x)
        half = n // 2 // 16 * 16  # keeps every block's first column on a 64-byte boundary
        out = torch.empty(n, -(-n // 16) * 16, dtype=x.dtype)[:, :n]  # rows padded: see inner_products
        top, bottom = x[:half], x[half:]
        torch.mm(top, top.T, out=out[:half, :half])
        torch.mm(top, bottom.T, out=out[:half, half:])
        torch.mm(bottom, bottom.T, out=out[half:, half:])
        out[half:, :half] = out[:half, half:].T
        return out


class _RunningNeighbours:
    """Each row's ``width`` smallest (distance, index) pairs seen so far, updated tile by tile.

    A tile only passes the entries no larger than the row's current width-th distance (one
    comparison; for a row's first tile, the tile's own width-th distance): few per row once the lists
    have settled. Those are merged into the lists (always sorted) in (row, distance, index) order, so
    ties are kept by lowest index and the lists are exactly the first ``width`` of the (distance,
    index) order.
    """

    def __init__(self, n: int, width: int):
        self.width, self.num_cols = width, n
        self.vals = np.full((n, width), np.inf, dtype=np.float32)  # (N, S)
        self.idx = np.full((n, width), n, dtype=np.int64)  # (N, S): n = no neighbour yet, after all real ones
        self.seen = np.zeros(n, dtype=np.int64)  # columns seen per row

    def update(self, r0: int, r1: int, tile: np.ndarray, c0: int, transposed: bool = False) -> None:
        """Merge the distances of rows [r0, r1) to columns [c0, c0 + C).

        tile: (r1-r0, C), or (C, r1-r0) with ``transposed`` (a tile computed the other way round).
        """
        num_b, num_c = r1 - r0, tile.shape[0 if transposed else 1]
        vals, idx = self.vals[r0:r1], self.idx[r0:r1]  # views (B, S)
        threshold = vals[:, -1].copy()  # (B,): the current width-th distance (inf while not full): lists are sorted
        if self.seen[r0:r1].min() < self.width:
            # The width-th distance among the first 32 x width columns bounds the tile's own from above.
            # Measured at Market size (width 63): 8 x width let ~300 entries per row through the first
            # tile of every row block and the merge cost more than the partition saved.
            sub = min(num_c, 32 * self.width)
            head = tile[:sub].T if transposed else tile[:, :sub]  # (B, sub)
            kth = min(self.width, sub) - 1
            np.minimum(threshold, np.partition(head, kth, axis=1)[:, kth], out=threshold)
        self.seen[r0:r1] += num_c
        # flatnonzero + divmod: several times faster than a 2-D nonzero.
        if transposed:
            cols, rows = np.divmod(np.flatnonzero(tile <= threshold[None, :]), num_b)
            cand_v = tile[cols, rows]
        else:
            rows, cols = np.divmod(np.flatnonzero(tile <= threshold[:, None]), num_c)
            cand_v = tile[rows, cols]
        if len(rows):
            merge = self._merge_keyed if num_b * (self.num_cols + 1) < MAX_KEYED_ELEMS else self._merge_lexsorted
            merge(vals, idx, rows, cand_v, cols + c0)

    def _merge_keyed(self, vals, idx, rows, cand_v, cand_i) -> None:
        """Merge by unique int64 (row, distance, index) keys: the lists are already sorted, so only the
        candidates are sorted and both sides find their new rank by binary search (no sort of the lists)."""
        num_b, width, num_keys = len(vals), self.width, self.num_cols + 1
        list_rows = np.repeat(np.arange(num_b), width)
        list_keys = row_value_col_keys(vals.ravel(), list_rows, idx.ravel(), num_keys)  # ascending
        cand_keys = row_value_col_keys(cand_v, rows, cand_i, num_keys)
        order = np.argsort(cand_keys)
        cand_keys, rows, cand_v, cand_i = cand_keys[order], rows[order], cand_v[order], cand_i[order]
        cand_row_start = np.r_[0, np.cumsum(np.bincount(rows, minlength=num_b))]
        # rank in the merged row = own rank on its side + entries of the other side before it
        cand_rank = (np.searchsorted(list_keys, cand_keys) - rows * width) + (np.arange(len(rows)) - cand_row_start[rows])
        list_rank = np.tile(np.arange(width), num_b) + (np.searchsorted(cand_keys, list_keys) - cand_row_start[list_rows])
        keep_list = list_rank < width
        old_v, old_i = vals.ravel()[keep_list], idx.ravel()[keep_list]  # copies, read before writing
        vals[list_rows[keep_list], list_rank[keep_list]] = old_v
        idx[list_rows[keep_list], list_rank[keep_list]] = old_i
        keep = cand_rank < width
        vals[rows[keep], cand_rank[keep]] = cand_v[keep]
        idx[rows[keep], cand_rank[keep]] = cand_i[keep]

    def _merge_lexsorted(self, vals, idx, rows, cand_v, cand_i) -> None:
        """Merge by one lexsort on (row, distance, index): for sets too big for int64 keys."""
        num_b = len(vals)
        all_rows = np.concatenate([np.repeat(np.arange(num_b), self.width), rows])
        all_v = np.concatenate([vals.ravel(), cand_v])
        all_i = np.concatenate([idx.ravel(), cand_i])
        order = np.lexsort((all_i, all_v, all_rows))
        sorted_rows = all_rows[order]
        row_start = np.r_[0, np.cumsum(np.bincount(all_rows, minlength=num_b))]
        rank = np.arange(len(order)) - row_start[sorted_rows]
        keep = rank < self.width  # every row has at least width entries: its own list
        vals[sorted_rows[keep], rank[keep]] = all_v[order[keep]]
        idx[sorted_rows[keep], rank[keep]] = all_i[order[keep]]


def knn_pass(feats, k: int, metric: str = "cosine", chunk_elems: int = DEFAULT_CHUNK_ELEMS,
             split: int | None = None, block_budget_bytes: int = 1 << 30) -> KnnPass:
    """k nearest neighbours of every item among all items, each row's max distance, optionally the Q x G block.

    feats: (N, D). One pass over the N x N distances in square tiles of at most ``chunk_elems``
    entries; d is symmetric, so each tile above the diagonal serves its rows and (transposed) its
    columns: about half the matrix products of a row-by-row pass. ``split``: keep the distances of
    rows [0, split) to columns [split, N) (queries x gallery) when they fit in ``block_budget_bytes``,
    so the final re-ranked distances need no second product. Neighbours are ordered by (distance, index).
    """
    return _knn_pass(_SymmetricTiles(as_tensor(feats), metric), k, chunk_elems, split, block_budget_bytes)


def _knn_pass(tiles: _SymmetricTiles, k: int, chunk_elems: int, split: int | None,
              block_budget_bytes: int) -> KnnPass:
    n = len(tiles.feats)
    k = min(k, n)
    # At least ~8 row blocks (not below 1024 rows), so the skipped tiles are close to half of the work.
    step = max(1, min(int(np.sqrt(chunk_elems)), max(1024, -(-n // 8))))
    running = _RunningNeighbours(n, k)
    row_max = np.full(n, -np.inf, dtype=np.float32)
    keep_block = split is not None and split * (n - split) * 4 <= block_budget_bytes
    block = np.empty((split, n - split), dtype=np.float32) if keep_block else None  # (Q, G)
    spans = [(i0, min(n, i0 + step), j0, min(n, j0 + step)) for i0 in range(0, n, step) for j0 in range(i0, n, step)]
    # The next tile's product runs in a worker thread while this one's (single-threaded numpy)
    # bookkeeping runs: both release the GIL. Measured at Market size: 6.7-7.1 s instead of 7.1-8.8 s.
    with ThreadPoolExecutor(max_workers=1) as worker:
        next_tile = worker.submit(tiles, *spans[0])
        for t, (i0, i1, j0, j1) in enumerate(spans):
            tile = next_tile.result()  # (Bi, Bj)
            if t + 1 < len(spans):
                next_tile = worker.submit(tiles, *spans[t + 1])
            # Fold the tile into the neighbour lists, the row maxima and the Q x G block.
            running.update(i0, i1, tile, j0)
            np.maximum(row_max[i0:i1], tile.max(axis=1), out=row_max[i0:i1])
            if j0 != i0:  # the same distances seen from the rows J
                running.update(j0, j1, tile, i0, transposed=True)
                np.maximum(row_max[j0:j1], tile.max(axis=0), out=row_max[j0:j1])
            if block is not None and i0 < split and j1 > split:
                c0 = max(j0, split)
                block[i0:min(i1, split), c0 - split:j1 - split] = tile[:split - i0, c0 - j0:]
    return KnnPass(running.idx, running.vals, row_max, block)  # every merge keeps the lists sorted


def _reciprocal_matrix(knn: np.ndarray, width: int) -> sp.csr_matrix:
    """(N, N) 0/1 CSR: entry (i, j) when j is among i's first ``width`` neighbours and i among j's."""
    n = len(knn)
    cols = np.sort(knn[:, :width], axis=1).ravel()
    indptr = np.arange(0, n * width + 1, width, dtype=np.int64)
    forward = sp.csr_matrix((np.ones(len(cols), dtype=np.int32), cols, indptr), shape=(n, n))  # row i: knn[i, :width]
    return forward.multiply(forward.T.tocsr()).tocsr()


def _expansion_support(knn: np.ndarray, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the expanded k-reciprocal sets, sorted by (row, col), by sparse products.

    R: the k1-reciprocal sets; H: the k1/2-reciprocal sets. Candidate c in R_i brings H_c into i's set
    when |H_c & R_i| > 2/3 |H_c|; |H_c & R_i| for every (i, c) in R is (R H^T)[i, c] read on R's pattern.
    """
    n = len(knn)
    recip = _reciprocal_matrix(knn, min(k1 + 1, n))  # (N, N) R
    half = _reciprocal_matrix(knn, min(_half(k1) + 1, n))  # (N, N) H
    shared = recip.multiply(recip @ half.T).tocsr()  # (N, N) on R's pattern: |R_i & H_c|
    half_size = np.diff(half.indptr)  # |H_c|
    shared_rows = np.repeat(np.arange(n), np.diff(shared.indptr))
    accept = shared.data > 2.0 / 3 * half_size[shared.indices]
    accepted = sp.csr_matrix((np.ones(int(accept.sum()), dtype=np.int32),
                              (shared_rows[accept], shared.indices[accept])), shape=(n, n))
    support = (recip + accepted @ half).tocsr()  # nonzero where i's expanded set holds the column
    support.sum_duplicates()
    support.sort_indices()
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(support.indptr))
    return rows, support.indices.astype(np.int64)


def _lookup_distances(tiles: _SymmetricTiles, knn: np.ndarray, knn_dist: np.ndarray, rows, cols):
    """d(rows[t], cols[t]) read from the kept neighbour lists; pairs not in them are computed."""
    n = len(knn)
    # Row-major keys of the kept lists, sorted within each row by column: one sorted array overall.
    order = np.argsort(knn, axis=1, kind="stable")
    stored_keys = (np.arange(n, dtype=np.int64)[:, None] * n + np.take_along_axis(knn, order, 1)).ravel()
    stored_dist = np.take_along_axis(knn_dist, order, 1).ravel()
    wanted = rows * n + cols
    pos = np.minimum(np.searchsorted(stored_keys, wanted), len(stored_keys) - 1)
    found = stored_keys[pos] == wanted
    dist = np.empty(len(rows), dtype=np.float32)
    dist[found] = stored_dist[pos[found]]
    if not found.all():
        dist[~found] = tiles.pair_distances(rows[~found], cols[~found])
    return dist


def sparse_encodings(feats, k1: int = 20, k2: int = 6, metric: str = "cosine",
                     chunk_elems: int = DEFAULT_CHUNK_ELEMS, split: int | None = None,
                     block_budget_bytes: int = 1 << 30):
    """k-reciprocal encodings of all items as a sparse CSR matrix (N, N), and the :class:`KnnPass`.

    feats: (N, D). ``split`` / ``block_budget_bytes``: see :func:`knn_pass`. The pass runs on CPU.
    """
    tiles = _SymmetricTiles(as_tensor(feats), metric)
    n = len(tiles.feats)
    # Keep 3x the k1 + 1 neighbours: almost every expansion pair is among them, so its distance comes
    # from the same matrix products instead of a slow gather of feature pairs.
    pass_ = _knn_pass(tiles, 3 * (k1 + 1), chunk_elems, split, block_budget_bytes)
    rows, cols = _expansion_support(pass_.idx, k1)
    dist = _lookup_distances(tiles, pass_.idx, pass_.dist, rows, cols)
    dist /= pass_.row_max[rows]
    weight = np.exp(-dist)
    weight /= np.bincount(rows, weights=weight, minlength=n)[rows]
    V = sp.csr_matrix((weight.astype(np.float32), (rows, cols)), shape=(n, n))
    if k2 != 1:
        k2 = min(k2, n)
        expand = sp.csr_matrix(
            (np.full(n * k2, 1.0 / k2, dtype=np.float32),
             (np.repeat(np.arange(n), k2), pass_.idx[:, :k2].ravel())), shape=(n, n))
        V = (expand @ V).tocsr()
    V.eliminate_zeros()
    return V, pass_


def _min_overlap(Vq: sp.csr_matrix, Vg_csc: sp.csc_matrix) -> np.ndarray:
    """sum_k min(Vq[i, k], Vg[j, k]) for all (i, j) as a dense (B, G) float64 array (B small).

    Vq: (B, N) CSR query encodings; Vg_csc: (G, N) CSC gallery encodings.
    """
    num_b, num_g = Vq.shape[0], Vg_csc.shape[0]
    q_rows = np.repeat(np.arange(num_b), np.diff(Vq.indptr))
    q_cols, q_vals = Vq.indices, Vq.data
    col_start = Vg_csc.indptr[q_cols]
    counts = Vg_csc.indptr[q_cols + 1] - col_start  # gallery items sharing column k
    total = int(counts.sum())
    # Positions into the CSC arrays: col_start[t] + 0..counts[t]-1 for every query nonzero t.
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    pos = np.repeat(col_start, counts) + offsets
    contrib = np.minimum(np.repeat(q_vals, counts), Vg_csc.data[pos])
    flat = np.repeat(q_rows, counts) * num_g + Vg_csc.indices[pos]
    return np.bincount(flat, weights=contrib, minlength=num_b * num_g).reshape(num_b, num_g)


def rerank_distance_chunks(q_feats, g_feats, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
                           metric: str = "cosine", chunk_elems: int = DEFAULT_CHUNK_ELEMS,
                           device="cpu", block_budget_bytes: int = 1 << 30,
                           ) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield (start, end, final_dist (end-start, G) float32 tensor) of re-ranked query x gallery distances.

    The neighbour pass runs on CPU; the yielded chunks are moved to ``device``. When the Q x G distances
    fit in ``block_budget_bytes`` (Market size: 214 MB) they are kept from the neighbour pass, else each
    query chunk's distances are computed again.
    """
    q, g = as_tensor(q_feats), as_tensor(g_feats)
    num_q, num_g = len(q), len(g)
    V, pass_ = sparse_encodings(torch.cat([q, g]), k1, k2, metric, chunk_elems, split=num_q,
                                block_budget_bytes=block_budget_bytes)
    row_max = pass_.row_max[:num_q, None]  # (Q, 1)
    Vg_csc = V[num_q:].tocsc()  # (G, N): column k lists the gallery items whose encoding uses item k
    computer = DistanceComputer(g, metric) if pass_.block is None else None
    # The overlap accumulator is float64 and the gathered contributions several times larger: smaller chunks.
    for start, end in query_chunks(num_q, num_g, chunk_elems // 4):
        # final = (1 - lambda) * jaccard + lambda * d / row_max, jaccard = 1 - overlap / (2 - overlap),
        # in float32 like the dense reference, in place (B x G passes are memory bound).
        final = _min_overlap(V[start:end], Vg_csc).astype(np.float32)  # (B, G) overlap
        final /= np.subtract(np.float32(2.0), final)
        np.subtract(np.float32(1.0), final, out=final)
        final *= np.float32(1 - lambda_value)
        original = computer(q[start:end]).numpy() if computer is not None else pass_.block[start:end].copy()
        original /= row_max[start:end]
        original *= lambda_value
        final += original
        yield start, end, torch.from_numpy(final).to(device)
