"""Re-ranking (sparse = dense reference), the evaluate_reid CLI, feature extraction and ranked lists."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from PIL import Image

from reid_stargan.cli.evaluate_reid import main as evaluate_main
from reid_stargan.eval import evaluate
from reid_stargan.eval.features import extract_features
from reid_stargan.eval.rerank import re_ranking_dense, rerank_distance_chunks


def clustered(seed, num_q, num_g, dim=16, num_ids=25, noise=0.8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_ids, dim))
    q_pids, g_pids = rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g)
    q = (centres[q_pids] + noise * rng.normal(size=(num_q, dim))).astype(np.float32)
    g = (centres[g_pids] + noise * rng.normal(size=(num_g, dim))).astype(np.float32)
    return q, g, q_pids, g_pids, rng.integers(0, 3, num_q), rng.integers(0, 3, num_g)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("sizes", [(15, 60), (50, 250)])
def test_sparse_rerank_equals_dense_reference(metric, sizes):
    q, g = clustered(sum(sizes), *sizes)[:2]
    dense = re_ranking_dense(q, g, metric=metric)
    sparse = np.concatenate([d.numpy() for _, _, d in rerank_distance_chunks(q, g, metric=metric, chunk_elems=500)])
    assert sparse.shape == dense.shape == sizes
    assert np.abs(sparse - dense).max() < 1e-5
    assert (dense < 1.0).sum() > 0 and dense.std() > 0.01  # the Jaccard term actually varies


def test_rerank_metrics_match_dense_and_change_the_ranking():
    data = clustered(7, 60, 300, noise=1.2)
    sparse = evaluate(*data, rerank=True)
    dense = evaluate(*data, rerank=True, backend="reference")
    plain = evaluate(*data)
    assert sparse["mAP"] == pytest.approx(dense["mAP"], abs=1e-6)
    assert sparse["cmc"] == pytest.approx(dense["cmc"], abs=1e-6)
    assert sparse["mAP"] != pytest.approx(plain["mAP"], abs=1e-3)


def write_npz(path, data, paths=None):
    keys = ("q_feats", "g_feats", "q_pids", "g_pids", "q_camids", "g_camids")
    arrays = dict(zip(keys, data, strict=True))
    if paths is not None:
        arrays["q_paths"], arrays["g_paths"] = np.array(paths[0]), np.array(paths[1])
    np.savez(path, **arrays)


def test_cli_writes_metrics_json(tmp_path, capsys):
    data = clustered(3, 20, 80)
    write_npz(tmp_path / "feats.npz", data)
    returned = evaluate_main(["--features", str(tmp_path / "feats.npz"), "--out", str(tmp_path / "out"),
                              "--metric", "euclidean"])
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    expected = evaluate(*data, metric="euclidean")
    for key in ("mAP", "mAP_trapezoid", "rank1", "rank5", "rank10", "rank20", "mINP", "num_valid_queries"):
        assert written[key] == pytest.approx(expected[key]) == returned[key]
    printed = capsys.readouterr().out
    assert "mAP_trapezoid" in printed and "finite-sum" in printed


def test_cli_visualize_writes_pngs(tmp_path):
    data = clustered(4, 6, 30)
    paths = []
    for split, n in (("q", 6), ("g", 30)):
        split_paths = []
        for i in range(n):
            p = tmp_path / "img" / f"{split}{i}.png"
            p.parent.mkdir(exist_ok=True)
            Image.new("RGB", (16, 32), (i * 8, 50, 100)).save(p)
            split_paths.append(str(p))
        paths.append(split_paths)
    write_npz(tmp_path / "feats.npz", data, paths)
    evaluate_main(["--features", str(tmp_path / "feats.npz"), "--out", str(tmp_path), "--visualize", "3",
                   "--rerank"])
    pngs = sorted((tmp_path / "ranked_lists").glob("*.png"))
    assert len(pngs) == 3
    with Image.open(pngs[0]) as img:
        assert img.width > 10 * img.height / 2  # query + 10 tiles side by side


def test_cli_rejects_npz_without_required_arrays(tmp_path):
    np.savez(tmp_path / "bad.npz", q_feats=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="missing arrays"):
        evaluate_main(["--features", str(tmp_path / "bad.npz"), "--out", str(tmp_path)])


class MeanColour(torch.nn.Module):
    """(B, 3, H, W) -> (B, 6): channel means of the left and right halves (not mirror-symmetric)."""

    def forward(self, x):
        w = x.shape[3] // 2
        return torch.cat([x[..., :w].mean((2, 3)), x[..., w:].mean((2, 3))], dim=1)


def test_extract_features_batches_flips_and_skips_bad_images(tmp_path):
    records = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        img = Image.new("RGB", (20, 40), (10 * i, 100, 200))
        img.paste((255, 0, 0), (0, 0, 10, 40))  # left half red: flipping changes MeanColour's output
        img.save(path)
        records.append(types.SimpleNamespace(path=str(path), pid=i, camid=i % 2))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    records.insert(2, types.SimpleNamespace(path=str(tmp_path / "broken.png"), pid=99, camid=0))

    feats, pids, camids = extract_features(MeanColour(), records, image_size=(32, 16), batch_size=2,
                                           flip=False, normalize=False, progress=False)
    assert feats.shape == (5, 6) and feats.dtype == np.float32
    assert pids.tolist() == [0, 1, 2, 3, 4] and camids.tolist() == [0, 1, 0, 1, 0]
    flipped, _, _ = extract_features(MeanColour(), records, image_size=(32, 16), flip=True, normalize=True,
                                     progress=False)
    # Flip averaging makes left and right halves equal; normalize makes unit vectors.
    assert np.allclose(flipped[:, :3], flipped[:, 3:], atol=1e-6)
    assert np.allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(feats[:, :3], feats[:, 3:])
