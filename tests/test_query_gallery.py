"""Gallery queries: rank_gallery (FAISS = numpy brute force) and tools/query_gallery.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reid_stargan.cli.extract_features import cli as extract_cli
from reid_stargan.cli.query_gallery import cli as query_cli
from reid_stargan.eval.query import load_gallery, rank_gallery, rank_numpy


def test_faiss_ranking_equals_numpy_brute_force():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((600, 48)).astype(np.float32) * rng.uniform(0.5, 2.0, (600, 1)).astype(np.float32)
    q = rng.standard_normal((17, 48)).astype(np.float32)
    d_ref, i_ref = rank_numpy(q, g, 10)
    for backend in ("faiss", "torch", "numpy"):
        dist, idx = rank_gallery(q, g, k=10, backend=backend)
        np.testing.assert_array_equal(idx, i_ref, err_msg=backend)
        np.testing.assert_allclose(dist, d_ref, atol=1e-5, err_msg=backend)
    # Brute force really is brute force: the distances are 1 - cosine of the rows named.
    cos = (q[3] / np.linalg.norm(q[3])) @ (g[i_ref[3]] / np.linalg.norm(g[i_ref[3]], axis=1, keepdims=True)).T
    np.testing.assert_allclose(d_ref[3], 1 - cos, atol=1e-6)
    assert np.all(np.diff(d_ref, axis=1) >= 0)
    assert rank_gallery(q[0], g[:4], k=10)[1].shape == (1, 4)  # one query; k capped at the gallery
    with pytest.raises(ValueError, match="same D"):
        rank_gallery(q[:, :5], g)


def test_query_tool_prints_and_draws_the_top_k(market, model_file, tmp_path, capsys):
    gallery_file = tmp_path / "g.npz"
    assert extract_cli(["--checkpoint", str(model_file), "--data-root", str(market), "--split", "gallery",
                        "--out", str(gallery_file), "--no-progress"]) == 0
    capsys.readouterr()
    gallery = load_gallery(gallery_file)
    queries = [gallery.paths[3], gallery.paths[10]]  # gallery images: each must find itself first
    png = tmp_path / "top.png"
    assert query_cli(["--checkpoint", str(model_file), "--gallery", str(gallery_file), "--images", *queries,
                      "--topk", "5", "--draw", str(png)]) == 0
    text = capsys.readouterr().out
    assert text.count("query ") == 2 and Path(gallery.paths[3]).name in text
    assert query_cli(["--checkpoint", str(model_file), "--gallery", str(gallery_file), "--images", *queries,
                      "--topk", "5", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    for res, gi in zip(results, (3, 10), strict=True):
        assert [h["rank"] for h in res["top"]] == [1, 2, 3, 4, 5]
        assert res["top"][0]["path"] == gallery.paths[gi] and res["top"][0]["distance"] < 1e-5
        assert res["top"][0]["pid"] == gallery.pids[gi]
    from PIL import Image

    with Image.open(png) as img:
        assert img.size[0] > 6 * 64 and img.size[1] > 2 * 128
    # Errors: one line, exit code 2.
    assert query_cli(["--checkpoint", str(model_file), "--gallery", str(tmp_path / "none.npz"),
                      "--images", queries[0]]) == 2
    assert capsys.readouterr().err.startswith("error: gallery file not found")
    np.savez(tmp_path / "q_only.npz", q_feats=gallery.feats)
    assert query_cli(["--checkpoint", str(model_file), "--gallery", str(tmp_path / "q_only.npz"),
                      "--images", queries[0]]) == 2
    assert "no g_feats" in capsys.readouterr().err
    np.savez(tmp_path / "wide.npz", g_feats=np.ones((3, 7), np.float32))
    assert query_cli(["--checkpoint", str(model_file), "--gallery", str(tmp_path / "wide.npz"),
                      "--images", queries[0]]) == 2
    assert "checkpoint that made the gallery" in capsys.readouterr().err
