"""Protocol metrics on hand-made rankings, and every fast path against the plain reference."""

from __future__ import annotations

import numpy as np
import pytest

from reid_stargan.eval import eval_reference, evaluate
from reid_stargan.eval.retrieval import faiss_available, iter_distance_chunks


def line_eval(positions, g_pids, g_cams, q_pid=1, q_cam=0, **kwargs):
    """One query at 0 on a line; squared Euclidean distance orders the gallery by |position|."""
    g = np.asarray(positions, dtype=np.float32)[:, None]  # (G, 1)
    q = np.zeros((1, 1), dtype=np.float32)
    return evaluate(q, g, [q_pid], g_pids, [q_cam], g_cams, metric="euclidean", **kwargs)


def test_hits_at_ranks_2_and_4():
    m = line_eval([1, 2, 3, 4, 5, 6], [2, 1, 3, 1, 4, 5], [1] * 6, max_rank=6)
    assert m["mAP"] == pytest.approx(100 * (1 / 2 + 2 / 4) / 2)
    assert m["rank1"] == 0.0 and m["rank5"] == 100.0
    assert m["cmc"] == pytest.approx([0, 100, 100, 100, 100, 100])
    assert m["mINP"] == pytest.approx(100 * 2 / 4)


def test_junk_and_same_camera_matches_are_removed():
    # Position 0.5 is junk (pid -1); 1.5 is the query's pid seen by the query's own camera.
    m = line_eval([0.5, 1, 1.5, 2, 3, 4, 5, 6], [-1, 2, 1, 1, 3, 1, 4, 5], [1, 1, 0, 1, 1, 1, 1, 1], max_rank=6)
    assert m["mAP"] == pytest.approx(100 * (1 / 2 + 2 / 4) / 2)
    assert m["rank1"] == 0.0 and m["rank5"] == 100.0


def test_same_pid_other_camera_counts_as_hit():
    m = line_eval([1, 2], [1, 2], [3, 0], max_rank=2)
    assert m["rank1"] == 100.0 and m["mAP"] == 100.0


def test_trapezoid_ap_matches_market_matlab_definition():
    m = line_eval([1, 2, 3, 4, 5, 6], [2, 1, 3, 1, 4, 5], [1] * 6, max_rank=6)
    # compute_AP: hit 1 at rank 2: (0/1 + 1/2)/2 * 1/2; hit 2 at rank 4: (1/3 + 2/4)/2 * 1/2
    assert m["mAP_trapezoid"] == pytest.approx(100 * ((0 + 1 / 2) / 4 + (1 / 3 + 1 / 2) / 4))
    first = line_eval([1, 2], [1, 2], [1, 1], max_rank=2)
    assert first["mAP_trapezoid"] == pytest.approx(100.0)  # precision before rank 1 is 1 by definition


def test_query_without_valid_match_is_skipped_and_counted():
    g = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    q = np.zeros((2, 1), dtype=np.float32)
    m = evaluate(q, g, [1, 9], [2, 1, 9], [0, 0], [1, 1, 0], metric="euclidean", max_rank=3)
    assert m["num_valid_queries"] == 1 and m["num_skipped_queries"] == 1
    assert m["mAP"] == pytest.approx(50.0)


def test_single_image_gallery():
    with pytest.warns(UserWarning, match="max_rank reduced"):
        m = line_eval([3.0], [1], [2])
    assert m["mAP"] == 100.0 and m["rank1"] == 100.0 and m["rank20"] == 100.0 and len(m["cmc"]) == 1


def test_ties_are_broken_by_gallery_order():
    # Positions -1 and +1 are at the same distance: the lower gallery index ranks first.
    assert line_eval([-1, 1], [2, 1], [1, 1], max_rank=2)["mAP"] == pytest.approx(50.0)
    assert line_eval([-1, 1], [1, 2], [1, 1], max_rank=2)["mAP"] == pytest.approx(100.0)


def random_set(seed, num_q=120, num_g=700, dim=24, num_ids=40, noise=1.0, integer=False):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_ids, dim))
    q_pids, g_pids = rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g)
    q = centres[q_pids] + noise * rng.normal(size=(num_q, dim))
    g = centres[g_pids] + noise * rng.normal(size=(num_g, dim))
    if integer:  # many exact distance ties
        q, g = np.round(q), np.round(g)
    g_pids[rng.random(num_g) < 0.1] = -1
    return (q.astype(np.float32), g.astype(np.float32), q_pids, g_pids,
            rng.integers(0, 4, num_q), rng.integers(0, 4, num_g))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("ap", ["mAP", "mAP_trapezoid"])
@pytest.mark.parametrize("integer", [False, True])
def test_streaming_path_equals_reference(metric, ap, integer):
    data = random_set(0, integer=integer, noise=1.5)
    fast = evaluate(*data, metric=metric, backend="torch", chunk_elems=5000)
    # The reference ranks the same float32 distances, computed in the same query chunks: with several
    # BLAS threads a different matrix shape can round a near-tie the other way, which is not a
    # protocol difference.
    dist = np.concatenate([d.cpu().numpy() for _, _, d in iter_distance_chunks(data[0], data[1], metric,
                                                                                chunk_elems=5000)])
    ref = eval_reference(dist, *data[2:])
    assert fast[ap] == pytest.approx(100 * ref[ap], abs=1e-9)
    assert fast["mINP"] == pytest.approx(100 * ref["mINP"], abs=1e-9)
    assert np.allclose(fast["cmc"], 100 * ref["cmc"], atol=1e-9)
    assert fast["num_valid_queries"] == ref["num_valid_queries"]
    assert 0 < fast["mAP"] < 100  # a case where ranking errors would show


def test_chunked_equals_unchunked():
    data = random_set(1, noise=1.5)
    small = evaluate(*data, chunk_elems=701)  # one query per chunk
    whole = evaluate(*data, chunk_elems=1 << 30)
    assert small == whole


@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_faiss_path_equals_reference(metric):
    data = random_set(2, noise=2.0)
    via_faiss = evaluate(*data, metric=metric, backend="faiss", max_rank=20)
    ref = evaluate(*data, metric=metric, backend="reference", max_rank=20)
    for key in ("mAP", "mINP", "rank1", "rank5", "rank10", "num_valid_queries"):
        assert via_faiss[key] == pytest.approx(ref[key], abs=1e-9), key
    assert np.allclose(via_faiss["cmc"], ref["cmc"])


@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")
def test_faiss_topk_equals_torch_topk():
    from reid_stargan.eval.retrieval import ivf_recall, search_topk

    q, g = random_set(3)[:2]
    d_f, i_f = search_topk(q, g, 10, backend="faiss")
    d_t, i_t = search_topk(q, g, 10, backend="torch")
    assert np.array_equal(i_f, i_t) and np.allclose(d_f, d_t, atol=1e-5)
    assert 0.0 < ivf_recall(q, g, k=10, nlist=8, nprobe=8) <= 1.0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a.__setitem__(2, a[2][:-1]), "q_pids must be 1-D"),
        (lambda a: a.__setitem__(5, a[5][:-3]), "g_camids must be 1-D"),
        (lambda a: a[1].__setitem__((3, 2), np.nan), "g_feats contains NaN"),
        (lambda a: a[0].__setitem__((0, 0), np.inf), "q_feats contains NaN or Inf"),
        (lambda a: a.__setitem__(0, a[0][:0]), "q_feats is empty"),
        (lambda a: a.__setitem__(1, a[1][:, :5]), "feature dims differ"),
    ],
)
def test_bad_input_gives_clear_error(mutate, message):
    data = list(random_set(4, num_q=10, num_g=50))
    mutate(data)
    with pytest.raises(ValueError, match=message):
        evaluate(*data)


def test_no_valid_query_is_an_error():
    g = np.ones((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate(g[:1], g, [5], [1, 2, 3], [0], [1, 1, 1])
