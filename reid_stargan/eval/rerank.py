"""k-reciprocal re-ranking (Zhong et al., CVPR 2017): a dense reference and a sparse streaming version.

Both compute, for query i and gallery j,
``final(i, j) = (1 - lambda) * jaccard(i, j) + lambda * d(i, j) / max_k d(i, k)``
where d is the chosen metric over all N = Q + G items (cosine distance, or squared Euclidean as in
the original code; for L2-normalised features the two give the same row-normalised d) and jaccard
comes from the k-reciprocal nearest-neighbour encodings V (k1 = 20, expanded with the k1/2 sets,
Gaussian weights, query expansion over the k2 = 6 nearest neighbours).

The dense reference follows the original implementation step by step with N x N arrays (the
original normalises by column maxima of a symmetric matrix: the same thing as row maxima here).
The sparse version needs only each item's k1 + 1 nearest neighbours and its row maximum (one
streamed pass over the N x N distances, never held), keeps V as a sparse matrix, and yields the final
query x gallery distances chunk by chunk. Both sort with ties broken by index.

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

import numpy as np
import scipy.sparse as sp
import torch

from .retrieval import DEFAULT_CHUNK_ELEMS, DistanceComputer, _as_tensor, pairwise_distance, query_chunk_size


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


def knn_with_row_max(feats: torch.Tensor, k: int, metric: str, chunk_elems: int, device="cpu"):
    """k nearest neighbours of every item among all items (itself included) and each row's max distance.

    feats: (N, D). Returns (knn_idx (N, k) int64, knn_dist (N, k) float32, row_max (N,) float32) with
    neighbours ordered by (distance, index). One streamed pass; nothing N x N is kept.
    """
    computer = DistanceComputer(feats, metric, device)
    n = len(feats)
    k = min(k, n)
    # A few spare neighbours so that ties at the k-th place still resolve by index.
    spare = min(n, k + 4)
    knn_idx = np.empty((n, k), dtype=np.int64)
    knn_dist = np.empty((n, k), dtype=np.float32)
    row_max = np.empty(n, dtype=np.float32)
    step = query_chunk_size(n, n, chunk_elems)
    for start in range(0, n, step):
        dist = computer(feats[start:start + step])  # (B, N)
        row_max[start:start + step] = dist.max(dim=1).values.cpu().numpy()
        values, indices = torch.topk(dist, spare, dim=1, largest=False, sorted=True)
        values, indices = values.cpu().numpy(), indices.cpu().numpy()
        for r in range(len(values)):  # (spare,) rows: cheap lexsort to break ties by index
            order = np.lexsort((indices[r], values[r]))[:k]
            knn_idx[start + r], knn_dist[start + r] = indices[r, order], values[r, order]
    return knn_idx, knn_dist, row_max


def _reciprocal_lists(knn: np.ndarray, width: int, pad: int, rows_per_step: int = 8192) -> np.ndarray:
    """(N, width) array: knn[i, :width] entries j whose own first `width` neighbours contain i, else pad."""
    top = torch.from_numpy(np.ascontiguousarray(knn[:, :width]))
    out = torch.full_like(top, pad)
    for start in range(0, len(top), rows_per_step):
        forward = top[start:start + rows_per_step]  # (B, w)
        ids = torch.arange(start, start + len(forward))[:, None, None]
        mutual = (top[forward] == ids).any(-1)  # (B, w): does forward[b, j] list b among its first w?
        out[start:start + rows_per_step] = torch.where(mutual, forward, torch.full_like(forward, pad))
    return out.numpy()


def _expansion_pairs(recip: np.ndarray, recip_half: np.ndarray, rows_per_step: int = 2048):
    """(rows, cols) of the expanded k-reciprocal sets, unique and sorted by (row, col)."""
    n = len(recip)
    recip_t, half_t = torch.from_numpy(recip), torch.from_numpy(recip_half)
    pair_keys = []
    for start in range(0, n, rows_per_step):
        r = recip_t[start:start + rows_per_step]  # (B, w), pad -1
        rows = torch.arange(start, start + len(r))
        valid = r >= 0
        cand = half_t[r.clamp_min(0)]  # (B, w, h), pad -2: each candidate's k1/2-reciprocal set
        cand_valid = cand >= 0
        shared = (cand[..., None] == r[:, None, None, :]).any(-1) & cand_valid  # (B, w, h)
        accept = valid & (shared.sum(-1) > 2.0 / 3 * cand_valid.sum(-1))  # (B, w)
        keep_cand = accept[..., None] & cand_valid  # (B, w, h)
        b_idx = rows[:, None].expand_as(r)[valid]
        pair_keys.append(b_idx * n + r[valid])
        cb = rows[:, None, None].expand_as(cand)[keep_cand]
        pair_keys.append(cb * n + cand[keep_cand])
    keys = torch.unique(torch.cat(pair_keys)).numpy()  # sorted
    return keys // n, keys % n


def _pair_distances(feats: torch.Tensor, computer: DistanceComputer, rows, cols, step: int = 1 << 13):
    """d(rows[t], cols[t]) in the same metric as ``computer``, without any N x N product."""
    out = np.empty(len(rows), dtype=np.float32)
    rows_t, cols_t = torch.from_numpy(rows), torch.from_numpy(cols)
    for s in range(0, len(rows), step):
        r, c = rows_t[s:s + step], cols_t[s:s + step]
        a, b = feats[r], feats[c]  # (P, D)
        if computer.metric == "cosine":
            dot = (a * b).sum(1) / a.norm(dim=1).clamp_min(1e-12)
            out[s:s + step] = (1.0 - dot * computer.g_scale[c]).numpy()
        else:
            out[s:s + step] = ((a * a).sum(1) + computer.g_sq[c] - 2 * (a * b).sum(1)).numpy()
    return out


def sparse_encodings(feats, k1: int = 20, k2: int = 6, metric: str = "cosine",
                     chunk_elems: int = DEFAULT_CHUNK_ELEMS, device="cpu"):
    """k-reciprocal encodings of all items as a sparse CSR matrix (N, N), and each row's max distance."""
    feats = _as_tensor(feats)
    n = len(feats)
    # Keep 3x the k1 + 1 neighbours: almost every expansion pair is among them, so its distance comes
    # from the same matrix product as the dense method instead of a slow gather of feature pairs.
    knn, knn_dist, row_max = knn_with_row_max(feats, 3 * (k1 + 1), metric, chunk_elems, device)
    recip = _reciprocal_lists(knn, min(k1 + 1, n), pad=-1)
    recip_half = _reciprocal_lists(knn, min(_half(k1) + 1, n), pad=-2)
    rows, cols = _expansion_pairs(recip, recip_half)
    stored_keys = (np.arange(n)[:, None] * n + knn).ravel()
    key_order = np.argsort(stored_keys)
    pos = np.minimum(np.searchsorted(stored_keys[key_order], rows * n + cols), len(key_order) - 1)
    found = stored_keys[key_order[pos]] == rows * n + cols
    dist = np.empty(len(rows), dtype=np.float32)
    dist[found] = knn_dist.ravel()[key_order[pos[found]]]
    if not found.all():
        computer = DistanceComputer(feats, metric)
        dist[~found] = _pair_distances(feats, computer, rows[~found], cols[~found])
    dist /= row_max[rows]
    weight = np.exp(-dist)
    weight /= np.bincount(rows, weights=weight, minlength=n)[rows]
    V = sp.csr_matrix((weight.astype(np.float32), (rows, cols)), shape=(n, n))
    if k2 != 1:
        k2 = min(k2, n)
        expand = sp.csr_matrix(
            (np.full(n * k2, 1.0 / k2, dtype=np.float32), (np.repeat(np.arange(n), k2), knn[:, :k2].ravel())),
            shape=(n, n))
        V = (expand @ V).tocsr()
    V.eliminate_zeros()
    return V, row_max


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
                           device="cpu") -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield (start, end, final_dist (end-start, G) float32 tensor) of re-ranked query x gallery distances."""
    q, g = _as_tensor(q_feats), _as_tensor(g_feats)
    num_q, num_g = len(q), len(g)
    feats = torch.cat([q, g])  # (N, D)
    V, row_max = sparse_encodings(feats, k1, k2, metric, chunk_elems, device)
    Vg_csc = V[num_q:].tocsc()  # (G, N): column k lists the gallery items whose encoding uses item k
    computer = DistanceComputer(g, metric, device)
    # The overlap accumulator is float64 and the gathered contributions several times larger: smaller chunks.
    step = query_chunk_size(num_q, num_g, chunk_elems // 4)
    for start in range(0, num_q, step):
        end = min(num_q, start + step)
        overlap = _min_overlap(V[start:end], Vg_csc)  # (B, G)
        jaccard = torch.from_numpy((1.0 - overlap / (2.0 - overlap)).astype(np.float32))
        original = computer(q[start:end]).cpu() / torch.from_numpy(row_max[start:end])[:, None]
        yield start, end, jaccard.mul_(1 - lambda_value).add_(original, alpha=lambda_value).to(device)
