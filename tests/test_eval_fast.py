"""The fast paths' building blocks against brute force: kNN pass, sort keys, chunk splitting, Q x G block."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reid_stargan.eval import evaluate, metrics, rerank
from reid_stargan.eval.metrics import QueryMatchIndex, positive_ranks_chunk, row_value_col_keys
from reid_stargan.eval.rerank import knn_pass, re_ranking_dense, rerank_distance_chunks
from reid_stargan.eval.retrieval import DistanceComputer, inner_products


def integer_features(seed, n, dim=6, high=3):
    """Small integer features: every product is exact in float32, so squared distances tie exactly."""
    return np.random.default_rng(seed).integers(-high, high + 1, size=(n, dim)).astype(np.float32)


def brute_force_knn(d: np.ndarray, k: int):
    order = np.argsort(d, axis=1, kind="stable")[:, :k]  # ties by index
    return order, np.take_along_axis(d, order, 1)


@pytest.mark.parametrize("merge", ["keyed", "lexsort"])
def test_knn_pass_matches_brute_force_with_exact_ties(merge, monkeypatch):
    if merge == "lexsort":  # the path of sets too big for int64 (row, distance, index) keys
        monkeypatch.setattr(rerank, "MAX_KEYED_ELEMS", 1)
    feats = integer_features(0, 130)
    sq = (feats ** 2).sum(1)
    d = sq[:, None] + sq[None, :] - 2 * feats @ feats.T  # exact integers
    # chunk_elems=400 -> 20-row tiles: 7 row blocks, both the direct and the transposed tile updates.
    out = knn_pass(feats, 25, "euclidean", chunk_elems=400, split=30)
    idx, dist = brute_force_knn(d, 25)
    assert (out.idx == idx).all()
    assert np.array_equal(out.dist, dist)
    assert np.array_equal(out.row_max, d.max(1))
    assert np.array_equal(out.block, d[:30, 30:])
    # Many exact ties at the cut: the test exercises index tie-breaking, not just the sort.
    assert (d[np.arange(130), idx[:, -1]][:, None] == d).sum(1).max() > 5


def test_knn_pass_cosine_matches_distance_computer():
    feats = np.random.default_rng(1).normal(size=(90, 12)).astype(np.float32)
    d = DistanceComputer(feats, "cosine")(feats).numpy()
    out = knn_pass(feats, 10, "cosine", chunk_elems=300)
    idx, dist = brute_force_knn(d, 10)
    assert (out.idx[:, 1:] == idx[:, 1:]).all()  # column 0 is the item itself up to rounding
    assert np.allclose(out.dist, dist, atol=1e-6)
    assert np.allclose(out.row_max, d.max(1), atol=1e-6)
    assert out.block is None  # not asked for


def test_sparse_rerank_equals_dense_with_exact_ties():
    q, g = integer_features(2, 25), integer_features(3, 90)
    dense = re_ranking_dense(q, g, metric="euclidean")
    sparse = np.concatenate([c.numpy() for _, _, c in rerank_distance_chunks(q, g, metric="euclidean",
                                                                              chunk_elems=600)])
    assert np.abs(sparse - dense).max() < 1e-5
    assert dense.std() > 0.01


def test_rerank_kept_block_equals_recomputed_distances():
    rng = np.random.default_rng(4)
    q, g = rng.normal(size=(30, 8)).astype(np.float32), rng.normal(size=(120, 8)).astype(np.float32)
    kept = np.concatenate([c.numpy() for _, _, c in rerank_distance_chunks(q, g, chunk_elems=900)])
    again = np.concatenate([c.numpy() for _, _, c in rerank_distance_chunks(q, g, chunk_elems=900,
                                                                             block_budget_bytes=0)])
    assert np.allclose(kept, again, atol=1e-6)


def testrow_value_col_keys_sort_like_row_value_col():
    values = np.array([0.5, -0.0, 0.0, -1.5, np.inf, 0.5, -1.5, 2.0, 0.0], dtype=np.float32)
    rows = np.array([1, 0, 0, 0, 0, 1, 1, 0, 1])
    cols = np.array([3, 4, 1, 2, 0, 1, 9, 5, 2])
    got = np.argsort(row_value_col_keys(values, rows, cols, 10))
    # -0.0 and 0.0 compare equal: their order comes from the column.
    expected = np.lexsort((cols, values, rows))
    assert (got == expected).all()


def test_positive_ranks_split_into_key_safe_parts_equals_whole(monkeypatch):
    rng = np.random.default_rng(5)
    num_q, num_g = 40, 300
    q, g = rng.normal(size=(num_q, 8)).astype(np.float32), rng.normal(size=(num_g, 8)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, 10, num_q), rng.integers(-1, 10, num_g)
    q_cams, g_cams = rng.integers(0, 3, num_q), rng.integers(0, 3, num_g)
    index = QueryMatchIndex(g_pids, g_cams)
    dist = DistanceComputer(g)(q)
    whole = positive_ranks_chunk(dist.clone(), q_pids, q_cams, index)
    monkeypatch.setattr(metrics, "MAX_KEYED_ELEMS", 7 * num_g)  # 7 rows per sort: 6 parts
    parts = positive_ranks_chunk(dist.clone(), q_pids, q_cams, index)
    assert len(whole[0]) > num_q and all(np.array_equal(a, b) for a, b in zip(whole, parts, strict=True))
    m = evaluate(q, g, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    ref = evaluate(q, g, q_pids, g_pids, q_cams, g_cams, max_rank=20, backend="reference")
    assert m["mAP"] == pytest.approx(ref["mAP"], abs=1e-9)


def test_distance_computer_cpu_matches_torch_formula():
    rng = np.random.default_rng(6)
    q, g = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(11, 5)).astype(np.float32)
    got = DistanceComputer(g, "cosine")(q)
    qt, gt = torch.from_numpy(q), torch.from_numpy(g)
    expected = 1 - (qt / qt.norm(dim=1, keepdim=True)) @ (gt / gt.norm(dim=1, keepdim=True)).T
    assert got.shape == (7, 11) and torch.allclose(got, expected, atol=1e-6)


def test_features_that_require_grad_are_accepted():
    rng = np.random.default_rng(7)
    q = torch.from_numpy(rng.normal(size=(12, 6)).astype(np.float32)).requires_grad_()
    g = torch.from_numpy(rng.normal(size=(50, 6)).astype(np.float32)).requires_grad_()
    q_pids, g_pids = rng.integers(0, 5, 12), rng.integers(0, 5, 50)
    q_cams, g_cams = np.zeros(12, int), np.ones(50, int)
    m = evaluate(q, g, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    ref = evaluate(q.detach().numpy(), g.detach().numpy(), q_pids, g_pids, q_cams, g_cams, max_rank=10)
    assert m["mAP"] == ref["mAP"] and 0 < m["mAP"] <= 100
    reranked = evaluate(q, g, q_pids, g_pids, q_cams, g_cams, max_rank=10, rerank=True)
    assert 0 < reranked["mAP"] <= 100


@pytest.mark.parametrize("width", [16, 37, 100])
def test_inner_products_with_padded_rows_equal_the_plain_product(width):
    rng = np.random.default_rng(3)
    a, b = (torch.from_numpy(rng.standard_normal((n, 24), dtype=np.float32)) for n in (9, width))
    padded = inner_products(a, b)
    assert padded.shape == (9, width)
    assert padded.stride(0) % 16 == 0  # rows start on 64-byte boundaries
    assert torch.equal(padded, inner_products(a, b, pad_rows=False))
    assert torch.equal(padded, a @ b.T)


def test_knn_pass_with_split_diagonal_tiles_matches_brute_force():
    # 1,100 items: a 1,024-row diagonal tile, computed from three half blocks and one transposed copy.
    feats = integer_features(4, 1100, dim=8)
    sq = (feats ** 2).sum(1)
    d = sq[:, None] + sq[None, :] - 2 * feats @ feats.T  # exact integers
    out = knn_pass(feats, 30, "euclidean", split=100)
    idx, dist = brute_force_knn(d, 30)
    assert (out.idx == idx).all()
    assert np.array_equal(out.dist, dist)
    assert np.array_equal(out.row_max, d.max(1))
    assert np.array_equal(out.block, d[:100, 100:])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_auto_backend_is_faiss_and_agrees_with_torch_and_the_reference(metric):
    pytest.importorskip("faiss", reason="the FAISS path needs the faiss module (the cpu or gpu extra)")
    rng = np.random.default_rng(11)
    num_q, num_g, num_ids = 60, 700, 25
    centres = rng.normal(size=(num_ids, 16)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, num_ids, num_q), rng.integers(-1, num_ids, num_g)
    q = centres[q_pids] + rng.normal(size=(num_q, 16)).astype(np.float32)
    g = centres[np.maximum(g_pids, 0)] + rng.normal(size=(num_g, 16)).astype(np.float32)
    q_cams, g_cams = rng.integers(0, 4, num_q), rng.integers(0, 4, num_g)
    args = (q, g, q_pids, g_pids, q_cams, g_cams)
    # Two FAISS tiles of 30 queries, so their offsets are exercised. (Under 20 queries a tile, FAISS's L2
    # kernel leaves BLAS for a direct loop whose rounding differs: a near-tie may then swap.)
    auto = evaluate(*args, metric=metric, max_rank=20, chunk_elems=30 * num_g)
    torch_path = evaluate(*args, metric=metric, max_rank=20, backend="torch")
    ref = evaluate(*args, metric=metric, max_rank=20, backend="reference")
    assert auto["backend"] == "faiss" and torch_path["backend"] == "torch"
    assert 5 < ref["mAP"] < 95  # a ranking with matches spread down the list, not a trivial one
    for other in (torch_path, ref):
        for key in ("mAP", "mAP_trapezoid", "mINP", "rank1", "rank5"):
            assert auto[key] == pytest.approx(other[key], abs=1e-4), key
        np.testing.assert_allclose(auto["cmc"], other["cmc"], atol=1e-4)
