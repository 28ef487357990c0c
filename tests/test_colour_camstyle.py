"""bench/colour_camstyle.py, the camera-colour control of docs/RESULTS.md 2e: a CamStyle folder that
train_reid reads, images carrying the target camera's colour statistics and the source's structure."""

from __future__ import annotations

import importlib.util

import numpy as np
from conftest import REPO_ROOT
from PIL import Image

from reid_stargan.camstyle.naming import read_camstyle
from reid_stargan.data.datasets import build_dataset
from reid_stargan.data.records import camera_links
from reid_stargan.data.synthetic import PRESETS, make_synthetic


def _bench():
    spec = importlib.util.spec_from_file_location("colour_camstyle", REPO_ROOT / "bench" / "colour_camstyle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_colour_control_moves_camera_statistics_and_keeps_the_image(tmp_path):
    bench = _bench()
    make_synthetic(tmp_path / "set", seed=0, **PRESETS["tiny"])
    train = build_dataset("market_layout", tmp_path / "set").train
    summary = bench.main(["--data-root", str(tmp_path / "set"), "--out", str(tmp_path / "out"), "--targets-per-image", "1",
                          "--figure", str(tmp_path / "fig.png")])
    generated = read_camstyle(tmp_path / "out")
    assert summary["images"] == len(generated) == len(train)  # one target each
    assert all(g.src_camid != g.dst_camid for g in generated)
    assert Image.open(tmp_path / "fig.png").size[1] == 2 * Image.open(train[0].path).size[1]

    links = camera_links(train)
    assert all(g.dst_camid in links[g.src_camid] for g in generated)  # linked targets only

    image = Image.open(train[0].path).convert("RGB")
    x = np.asarray(image, dtype=np.float64).reshape(-1, 3)
    target = (np.array([100.0, 90.0, 80.0]), np.array([30.0, 25.0, 20.0]))  # far from 0 and 255: no clipping
    y = np.asarray(bench.restyled(image, (x.mean(0), x.std(0)), target), dtype=np.float64).reshape(-1, 3)
    assert np.abs(y.mean(0) - target[0]).max() < 1 and np.abs(y.std(0) - target[1]).max() < 1

    source = train[0]  # the written file is the source under its cameras' map, up to JPEG
    g = next(g for g in generated if g.source == source.path)
    stats = bench.camera_statistics(train)
    want = np.asarray(bench.restyled(Image.open(source.path), stats[g.src_camid], stats[g.dst_camid]), dtype=np.float64)
    got = np.asarray(Image.open(g.path), dtype=np.float64)  # 4:2:0 JPEG, as the generated images: compare means
    assert np.abs(got.mean((0, 1)) - want.mean((0, 1))).max() < 2
    assert np.abs(want - np.asarray(Image.open(source.path).convert("RGB"), dtype=np.float64)).mean() > 4  # it did move
