"""Ranked-list pictures: the ranking drawn is the one evaluated (re-ranked or not), queries chosen as asked."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from test_eval_rerank_cli import clustered as rerank_cli_clustered

from reid_stargan.cli.evaluate_reid import main as evaluate_main
from reid_stargan.eval.evaluator import evaluate
from reid_stargan.eval.rerank import re_ranking_dense
from reid_stargan.eval.retrieval import iter_distance_chunks, pairwise_distance
from reid_stargan.eval.visualize import GREEN, RED, Ranking, rank_gallery, save_ranked_lists, select_queries


def clustered(seed, num_q, num_g, dim=16, num_ids=6, noise=1.0):
    return rerank_cli_clustered(seed, num_q, num_g, dim, num_ids, noise)  # the re-ranking tests' toy set


def image_paths(folder, prefix, n):
    paths = []
    for i in range(n):
        p = folder / f"{prefix}{i:03d}_c1.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 64), (40 + i % 50, 60, 120)).save(p)  # never the frames' pure green / red
        paths.append(str(p))
    return paths


def frame_colours(png) -> list[str]:
    """The frame colour of each gallery tile, left to right, read along the picture's middle row."""
    with Image.open(png) as img:
        row = np.asarray(img.convert("RGB"))[img.height // 2]
    labels = ["g" if tuple(p) == GREEN else "r" if tuple(p) == RED else "" for p in row]
    runs = [lab for i, lab in enumerate(labels) if lab and (i == 0 or labels[i - 1] != lab)]
    return runs[::2]  # each tile crosses the row twice: its left and right border


def test_rank_gallery_agrees_with_the_evaluator():
    q, g, q_pids, g_pids, q_cams, g_cams = clustered(0, 30, 120)
    g_pids[:5] = -1  # junk, removed for every query
    ranking = rank_gallery(pairwise_distance(q, g), q_pids, g_pids, q_cams, g_cams, topk=10)
    metrics = evaluate(q, g, q_pids, g_pids, q_cams, g_cams)
    valid = ~np.isnan(ranking.ap)
    assert valid.sum() == metrics["num_valid_queries"]
    assert 100 * ranking.ap[valid].mean() == pytest.approx(metrics["mAP"], abs=1e-4)
    top1_hit = g_pids[ranking.idx[valid, 0]] == q_pids[valid]
    assert 100 * top1_hit.mean() == pytest.approx(metrics["rank1"], abs=1e-4)
    assert not np.isin(ranking.idx, np.arange(5)).any()
    # Query chunks (what the tool feeds) give the same ranking as the whole matrix.
    chunked = rank_gallery(iter_distance_chunks(q, g, chunk_elems=7 * 120), q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(chunked.idx, ranking.idx)
    np.testing.assert_allclose(chunked.ap, ranking.ap)


def test_same_camera_matches_and_junk_are_skipped_and_counted():
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    g_pids, g_cams = np.array([1, -1, 2, 1, 1]), np.array([0, 1, 1, 1, 0])
    ranking = rank_gallery(dist, [1], g_pids, [0], g_cams, topk=2)
    assert ranking.idx.tolist() == [[2, 3]]  # same id same camera (0, 4) and junk (1) are not drawn
    assert ranking.dist.tolist() == [[0.3, 0.4]]
    assert ranking.skipped.tolist() == [2]  # items 0 and 1 ranked ahead of the last tile
    assert ranking.ap[0] == pytest.approx(0.5)  # one true match, at rank 2
    short = rank_gallery(dist, [1], g_pids, [0], g_cams, topk=5)
    assert short.idx.tolist() == [[2, 3, -1, -1, -1]] and short.skipped.tolist() == [3]
    no_match = rank_gallery(dist, [7], g_pids, [0], g_cams, topk=2)
    assert math.isnan(no_match.ap[0])
    with pytest.raises(ValueError, match="cover 0 of 1"):
        rank_gallery(iter([]), [1], g_pids, [0], g_cams)


def _ranking_with_ap(ap):
    n = len(ap)
    z = np.zeros(n, np.int64)
    return Ranking(np.zeros((n, 1), np.int64), np.zeros((n, 1)), np.asarray(ap, float), z, z, z, z[:1], z[:1])


def test_select_queries_worst_best_random_and_names():
    ap = [0.5, 0.1, math.nan, 0.9, 0.1, 0.3]
    paths = [f"/data/query/q{i}_c1.jpg" for i in range(6)]
    ranking = _ranking_with_ap(ap)
    assert select_queries(ranking, paths, "worst", 3) == [1, 4, 5]  # lowest AP first, ties by index
    assert select_queries(ranking, paths, "best", 2) == [3, 0]
    assert len(select_queries(ranking, paths, "worst", 99)) == 5  # no AP, no place in an AP order
    draws = select_queries(ranking, paths, "random", 3, seed=1)
    assert draws == select_queries(ranking, paths, "random", 3, seed=1) == sorted(draws) and len(set(draws)) == 3
    big = _ranking_with_ap(np.linspace(0, 1, 40))
    big_paths = [f"q{i}.jpg" for i in range(40)]
    assert select_queries(big, big_paths, "random", 5, seed=0) != select_queries(big, big_paths, "random", 5, seed=1)
    assert select_queries(ranking, paths, "worst", 3, names=["q3_c1.jpg", "q0_c1", paths[5]]) == [3, 0, 5]
    with pytest.raises(ValueError, match="q9.jpg.*not in the query set"):
        select_queries(ranking, paths, names=["q9.jpg"])
    with pytest.raises(ValueError, match="worst, best, random"):
        select_queries(ranking, paths, "median")


def test_tiles_follow_the_given_ranking_and_pngs_are_named_after_queries(tmp_path):
    q_paths = image_paths(tmp_path / "q", "0001_", 2) + [str(tmp_path / "other" / "0001_000_c1.png")]
    g_paths = image_paths(tmp_path / "g", "g", 4)
    dist = np.array([[0.4, 0.1, 0.3, 0.2], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    ranking = rank_gallery(dist, [1, 2, 1], [1, 2, 1, 3], [0, 0, 0], [1, 1, 2, 2], topk=4)
    written = save_ranked_lists(ranking, [0, 1, 2], q_paths, g_paths, tmp_path / "out")
    # The third query shares the first one's file name (another folder): its index keeps both files.
    assert [p.name for p in written] == ["0001_000_c1.png", "0001_001_c1.png", "0001_000_c1_q000002.png"]
    # Query 0 ranks gallery 1 (id 2), 3 (id 3), 2 (id 1), 0 (id 1): wrong, wrong, right, right.
    assert frame_colours(written[0]) == ["r", "r", "g", "g"]
    assert frame_colours(written[1]) == ["r", "g", "r", "r"]
    assert frame_colours(written[2]) == ["r", "g", "r", "g"]  # a missing query image: grey, still drawn


def _changed_query(q, g, q_pids, g_pids, q_cams, g_cams, topk=10):
    """Index of a query whose top-k true/false pattern re-ranking changes, and both patterns."""
    plain = rank_gallery(pairwise_distance(q, g), q_pids, g_pids, q_cams, g_cams, topk)
    rerank = rank_gallery(re_ranking_dense(q, g), q_pids, g_pids, q_cams, g_cams, topk)
    for qi in range(len(q_pids)):
        a, b = (["g" if g_pids[i] == q_pids[qi] else "r" for i in r.idx[qi]] for r in (plain, rerank))
        if a != b:
            return qi, a, b
    raise AssertionError("the toy set needs a query whose ranking re-ranking changes")


def test_cli_ranked_lists_draw_the_reranked_order(tmp_path):
    data = clustered(3, 12, 60)
    q_paths, g_paths = image_paths(tmp_path / "q", "q", 12), image_paths(tmp_path / "g", "g", 60)
    keys = ("q_feats", "g_feats", "q_pids", "g_pids", "q_camids", "g_camids")
    np.savez(tmp_path / "f.npz", **dict(zip(keys, data)), q_paths=np.array(q_paths), g_paths=np.array(g_paths))
    qi, plain, reranked = _changed_query(*data)
    name = f"q{qi:03d}_c1.png"
    pictures = {}
    for flag in ([], ["--rerank"]):
        out = tmp_path / ("rr" if flag else "plain")
        evaluate_main(["--features", str(tmp_path / "f.npz"), "--out", str(out), "--vis-query", name, *flag])
        assert [p.name for p in (out / "ranked_lists").iterdir()] == [name]
        pictures[bool(flag)] = out / "ranked_lists" / name
        assert (out / "cmc.png").is_file()
    assert frame_colours(pictures[False]) == plain
    assert frame_colours(pictures[True]) == reranked
    assert pictures[False].read_bytes() != pictures[True].read_bytes()


def test_cli_visualize_draws_the_worst_queries_by_default(tmp_path):
    data = clustered(5, 15, 60)
    q_paths, g_paths = image_paths(tmp_path / "q", "q", 15), image_paths(tmp_path / "g", "g", 60)
    keys = ("q_feats", "g_feats", "q_pids", "g_pids", "q_camids", "g_camids")
    np.savez(tmp_path / "f.npz", **dict(zip(keys, data)), q_paths=np.array(q_paths), g_paths=np.array(g_paths))
    ranking = rank_gallery(pairwise_distance(*data[:2]), *data[2:4], *data[4:6])
    ap = np.where(np.isnan(ranking.ap), np.inf, ranking.ap)
    worst = {f"q{i:03d}_c1.png" for i in np.argsort(ap, kind="stable")[:3]}
    evaluate_main(["--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "w"), "--visualize", "3"])
    assert {p.name for p in (tmp_path / "w" / "ranked_lists").iterdir()} == worst
    evaluate_main(["--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "r"), "--visualize", "3",
                   "--vis-select", "random", "--vis-seed", "4", "--vis-topk", "5"])
    drawn = sorted((tmp_path / "r" / "ranked_lists").iterdir())
    expected = select_queries(ranking, q_paths, "random", 3, seed=4)
    assert [p.name for p in drawn] == [f"q{i:03d}_c1.png" for i in expected]
    assert len(frame_colours(drawn[0])) == 5
