"""Both AP forms: `mAP` (finite sum, torchreid / fast-reid) and `mAP_trapezoid` (Market-1501 MATLAB
compute_AP, open-reid with the sklearn < 0.19 of CamStyle / HHL), on hand-built rankings."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from reid_stargan.eval import eval_reference, evaluate, metrics_from_ranks
from reid_stargan.eval.retrieval import faiss_available


def ranked(hit_lists: list[list[int]], length: int = 8):
    """Queries at 0 on a line, gallery item j at distance j + 1 per query block, true matches at the
    given 1-based ranks. Returns evaluate()'s arguments; each query's gallery block is cut off from
    the others by a large offset in a second coordinate."""
    q, g, q_pids, g_pids = [], [], [], []
    for n, hits in enumerate(hit_lists):
        q.append([0.0, 1000.0 * n])
        q_pids.append(n)
        for rank in range(1, length + 1):
            g.append([float(rank), 1000.0 * n])
            g_pids.append(n if rank in hits else 100 + n)
    num_g = len(g)
    return (np.asarray(q, np.float32), np.asarray(g, np.float32), q_pids, g_pids,
            [0] * len(q), [1] * num_g)


# Query 0: hits at ranks 1, 3, 6. Query 1: hits at ranks 2, 5.
FINITE = ((1 / 1 + 2 / 3 + 3 / 6) / 3 + (1 / 2 + 2 / 5) / 2) / 2
# trapezoid per hit: (precision just before the hit [1 at rank 1] + precision at the hit) / 2
TRAPEZOID = (((1 + 1) / 2 + (1 / 2 + 2 / 3) / 2 + (2 / 5 + 3 / 6) / 2) / 3
             + ((0 + 1 / 2) / 2 + (1 / 4 + 2 / 5) / 2) / 2) / 2


def test_hand_values():
    assert FINITE == pytest.approx(0.586111, abs=1e-6)
    assert TRAPEZOID == pytest.approx(0.482639, abs=1e-6)


@pytest.mark.parametrize("backend", ["torch", "reference"] + (["faiss"] if faiss_available() else []))
def test_evaluate_reports_both_forms(backend):
    m = evaluate(*ranked([[1, 3, 6], [2, 5]]), metric="euclidean", backend=backend, max_rank=8)
    assert m["mAP"] == pytest.approx(100 * FINITE, abs=1e-9)
    assert m["mAP_trapezoid"] == pytest.approx(100 * TRAPEZOID, abs=1e-9)
    assert "ap" not in m  # no single "which form" switch left in the output


def test_rank_based_and_reference_functions_give_both_forms():
    fast = metrics_from_ranks(np.array([0, 2, 5, 1, 4]), np.array([0, 0, 0, 1, 1]), 2, 8, max_rank=8)
    assert fast["mAP"] == pytest.approx(FINITE) and fast["mAP_trapezoid"] == pytest.approx(TRAPEZOID)
    q, g, qp, gp, qc, gc = ranked([[1, 3, 6], [2, 5]])
    dist = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    ref = eval_reference(dist, np.asarray(qp), np.asarray(gp), np.asarray(qc), np.asarray(gc), max_rank=8)
    assert ref["mAP"] == pytest.approx(FINITE) and ref["mAP_trapezoid"] == pytest.approx(TRAPEZOID)


def matlab_compute_ap(good: set[int], junk: set[int], order: list[int]) -> float:
    """Market-1501's compute_AP walked by hand: junk skipped, trapezoid on every step of recall."""
    ap, old_recall, old_precision, found, j = 0.0, 0.0, 1.0, 0, 0
    for idx in order:
        if idx in junk:
            continue
        found += idx in good
        recall, precision = found / len(good), found / (j + 1)
        ap += (recall - old_recall) * (old_precision + precision) / 2
        old_recall, old_precision, j = recall, precision, j + 1
        if found == len(good):
            break
    return ap


def test_random_sets_against_the_matlab_walk_and_both_sklearn_definitions():
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve

    rng = np.random.default_rng(4)
    num_q, num_g = 30, 200
    q_pids, g_pids = rng.integers(0, 10, num_q), rng.integers(0, 10, num_g)
    g_pids[rng.random(num_g) < 0.1] = -1
    q_cams, g_cams = rng.integers(0, 3, num_q), rng.integers(0, 3, num_g)
    dist = rng.random((num_q, num_g))  # no ties
    ref = eval_reference(dist, q_pids, g_pids, q_cams, g_cams)
    trap, finite, old_sklearn = [], [], []
    for i in range(num_q):
        junk = {j for j in range(num_g) if g_pids[j] == -1 or (g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i])}
        good = {j for j in range(num_g) if g_pids[j] == q_pids[i] and j not in junk}
        if not good:
            continue
        trap.append(matlab_compute_ap(good, junk, list(np.argsort(dist[i]))))
        keep = [j for j in range(num_g) if j not in junk]
        y_true, y_score = np.isin(keep, list(good)), -dist[i, keep]
        finite.append(average_precision_score(y_true, y_score))  # open-reid with sklearn >= 0.19
        precision, recall, _ = precision_recall_curve(y_true, y_score)
        old_sklearn.append(auc(recall, precision))  # what average_precision_score was before 0.19
    assert ref["num_valid_queries"] == len(trap)
    assert ref["mAP_trapezoid"] == pytest.approx(np.mean(trap), abs=1e-12)
    assert ref["mAP_trapezoid"] == pytest.approx(np.mean(old_sklearn), abs=1e-12)
    assert ref["mAP"] == pytest.approx(np.mean(finite), abs=1e-12)
    assert ref["mAP_trapezoid"] < ref["mAP"]


def test_old_ap_argument_changes_no_number_and_warns():
    args = ranked([[1, 3, 6], [2, 5]])
    plain = evaluate(*args, metric="euclidean", max_rank=8)
    with pytest.warns(DeprecationWarning, match="mAP_trapezoid"):
        asked = evaluate(*args, metric="euclidean", max_rank=8, ap="trapezoid")
    assert asked == plain
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(*args, metric="euclidean", max_rank=8, ap="finite")
    with pytest.raises(ValueError, match="ap must be one of"):
        evaluate(*args, metric="euclidean", ap="interpolated")


def test_evaluate_reid_metrics_json_has_both_keys(tmp_path, capsys):
    from reid_stargan.cli.evaluate_reid import main as evaluate_main

    q, g, qp, gp, qc, gc = ranked([[1, 3, 6], [2, 5]])
    np.savez(tmp_path / "feats.npz", q_feats=q, g_feats=g, q_pids=np.asarray(qp), g_pids=np.asarray(gp),
             q_camids=np.asarray(qc), g_camids=np.asarray(gc))
    evaluate_main(["--features", str(tmp_path / "feats.npz"), "--out", str(tmp_path), "--metric", "euclidean",
                   "--max-rank", "8"])
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["mAP"] == pytest.approx(100 * FINITE) and written["mAP_trapezoid"] == pytest.approx(100 * TRAPEZOID)
    assert "58.61" in capsys.readouterr().out
