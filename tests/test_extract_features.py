"""Features for any images: the extract_features API on plain paths, and tools/extract_features.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_stargan.cli.evaluate_reid import load_feature_file
from reid_stargan.cli.evaluate_reid import main as evaluate_main
from reid_stargan.cli.extract_features import cli as extract_cli
from reid_stargan.data.datasets import build_dataset
from reid_stargan.data.records import Record
from reid_stargan.eval.features import extract_features, record_from_path


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


def test_record_from_path_reads_market_names():
    assert record_from_path("a/0002_c1s1_000451_03.jpg") == Record("a/0002_c1s1_000451_03.jpg", 2, 0)
    assert record_from_path(Path("b/0001_c2_f0046182.jpg")) == Record("b/0001_c2_f0046182.jpg", 1, 1)
    assert record_from_path("-1_c3s2_000001_00.jpg")[1:] == (-1, 2)
    assert record_from_path("holiday.jpg")[1:] == (-1, -1)
    assert record_from_path("0005_c0s1_1.jpg")[1:] == (-1, -1)  # cameras count from c1 in names


def test_extract_features_accepts_plain_paths(market):
    records = build_dataset("market_layout", market).query[:5]
    model = tiny_model()
    ref, ref_pids, ref_cams = extract_features(model, records, (64, 32), batch_size=2, progress=False)
    as_str = extract_features(model, [r.path for r in records], (64, 32), batch_size=2, progress=False)
    as_path = extract_features(model, [Path(r.path) for r in records], (64, 32), batch_size=2, progress=False)
    for feats, pids, cams in (as_str, as_path):
        np.testing.assert_array_equal(feats, ref)
        np.testing.assert_array_equal(pids, ref_pids)  # labels from the Market names, as the parser's
        np.testing.assert_array_equal(cams, ref_cams)
    mixed = [records[0], records[1].path, Path(records[2].path)]
    feats, pids, cams, kept = extract_features(model, mixed, (64, 32), progress=False, return_index=True)
    np.testing.assert_array_equal(feats, ref[:3])
    assert kept.tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="item 0 is a int"):
        extract_features(model, [3], (64, 32), progress=False)


def test_extract_features_skips_bad_plain_paths_and_reports_positions(tmp_path, market):
    good = sorted((market / "query").iterdir())[:2]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    feats, pids, cams, kept = extract_features(tiny_model(), [str(good[0]), bad, str(good[1])], (64, 32),
                                               progress=False, return_index=True)
    assert kept.tolist() == [0, 2] and feats.shape == (2, 8)


def test_tool_writes_the_file_evaluate_reid_reads(market, model_file, tmp_path, capsys):
    out = tmp_path / "feats.npz"
    assert extract_cli(["--checkpoint", str(model_file), "--data-root", str(market), "--out", str(out),
                        "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    data = load_feature_file(out)
    ds = build_dataset("market_layout", market)
    assert summary["query"]["images"] == len(ds.query) == len(data["q_pids"]) == len(data["q_paths"])
    np.testing.assert_array_equal(data["g_pids"], [r.pid for r in ds.gallery])
    np.testing.assert_array_equal(data["g_camids"], [r.camid for r in ds.gallery])
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in data["g_paths"])
    assert np.allclose(np.linalg.norm(data["q_feats"], axis=1), 1.0, atol=1e-5)
    metrics = evaluate_main(["--features", str(out), "--out", str(tmp_path / "eval")])
    assert metrics["num_gallery"] == len(ds.gallery) and 0.0 <= metrics["mAP"] <= 100.0
    # The same features as evaluate_reid --checkpoint computes.
    direct = evaluate_main(["--checkpoint", str(model_file), "--set", f"data.root={market}",
                            "--out", str(tmp_path / "eval2")])
    assert direct["mAP"] == pytest.approx(metrics["mAP"], abs=1e-6)


def test_tool_on_a_folder_and_a_list(market, model_file, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    names = sorted(p.name for p in (market / "bounding_box_test").iterdir())[:4]
    for name in names:
        (folder / name).write_bytes((market / "bounding_box_test" / name).read_bytes())
    (folder / "holiday.jpg").write_bytes((market / "bounding_box_test" / names[0]).read_bytes())
    out = tmp_path / "g.npz"
    assert extract_cli(["--checkpoint", str(model_file), "--images", str(folder), "--out", str(out),
                        "--no-progress"]) == 0
    with np.load(out, allow_pickle=False) as gallery:  # one set: the g_* arrays of a gallery
        g_names = [Path(p).name for p in gallery["g_paths"]]
        g_feats, g_pids = gallery["g_feats"], gallery["g_pids"]
        assert gallery["image_size"].tolist() == [64, 32] and bool(gallery["flip"])
        assert "q_feats" not in gallery
    assert g_names == sorted([*names, "holiday.jpg"])
    assert g_pids[g_names.index("holiday.jpg")] == -1 and g_pids[0] == int(names[0][:4])

    listing = tmp_path / "list.txt"
    listing.write_text("# my images\n" + "\n".join(f"mine/{n}" for n in names[:2]) + "\n\n")
    assert extract_cli(["--checkpoint", str(model_file), "--list", str(listing), "--out", str(tmp_path / "l.npz"),
                        "--no-progress"]) == 0
    with np.load(tmp_path / "l.npz", allow_pickle=False) as listed:
        np.testing.assert_array_equal(listed["g_feats"], g_feats[:2])
    capsys.readouterr()
    listing.write_text("mine/nope.jpg\n")
    assert extract_cli(["--checkpoint", str(model_file), "--list", str(listing), "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --list") and "nope.jpg" in err and "\n" not in err
    assert extract_cli(["--checkpoint", str(model_file), "--images", str(folder), "--split", "query",
                        "--out", str(tmp_path / "x.npz")]) == 2
    assert capsys.readouterr().err.strip() == "error: --split goes with --data-root"
