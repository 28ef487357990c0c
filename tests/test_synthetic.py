"""The synthetic multi-camera benchmark: determinism, Market-1501 layout, camera styles, re-rendering."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reid_stargan.cli.make_synthetic import main as cli_main
from reid_stargan.config import ConfigError, load_config
from reid_stargan.data.synthetic import (
    META_FILE,
    SPLIT_DIRS,
    SyntheticWorld,
    load_dataset,
    load_world,
    make_synthetic,
    read_image_meta,
    read_meta,
    true_rendering,
)
from reid_stargan.pipeline.config import PipelineConfig

MARKET_NAME = re.compile(r"^(\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
TINY = dict(num_train_ids=6, num_test_ids=6, num_cameras=4, images_per_id_cam=3, height=64, width=32)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("syn") / "tiny"
    return root, make_synthetic(root, seed=3, **TINY)


def test_same_seed_is_byte_identical_and_other_seed_differs(tiny_set, tmp_path):
    root, _ = tiny_set
    again = make_synthetic(tmp_path / "again", seed=3, **TINY)
    assert _digests(root) == _digests(Path(again["root"]))
    other = _digests(Path(make_synthetic(tmp_path / "other", seed=4, **TINY)["root"]))
    same_names = set(other) & set(_digests(root))
    assert sum(other[n] != _digests(root)[n] for n in same_names if n.endswith(".jpg")) > 0


def test_an_image_does_not_depend_on_the_rest_of_the_set(tiny_set, tmp_path):
    # Fewer identities -> identity 1's images (same cameras) are the same bytes: per-key generators.
    root, _ = tiny_set
    small = Path(make_synthetic(tmp_path / "small", seed=3, **dict(TINY, num_train_ids=2, num_test_ids=1))["root"])
    names = [p.name for p in (small / "bounding_box_train").glob("0001_*.jpg")]
    assert names
    for n in names:
        assert (small / "bounding_box_train" / n).read_bytes() == (root / "bounding_box_train" / n).read_bytes()


def test_layout_counts_and_market_names(tiny_set):
    root, summary = tiny_set
    split_pids = {}
    for split, sub in SPLIT_DIRS.items():
        files = sorted((root / sub).glob("*.jpg"))
        assert len(files) == summary[f"num_{split}"] > 0
        for f in files:
            m = MARKET_NAME.match(f.name)
            assert m, f.name
            assert 1 <= int(m.group(2)) <= TINY["num_cameras"]
            assert Image.open(f).size == (TINY["width"], TINY["height"])
        split_pids[split] = {int(MARKET_NAME.match(f.name).group(1)) for f in files}
    assert split_pids["train"] == set(range(1, TINY["num_train_ids"] + 1))
    assert split_pids["query"] == split_pids["gallery"]
    assert split_pids["train"].isdisjoint(split_pids["gallery"])
    assert summary["num_images"] == sum(summary[f"num_{s}"] for s in SPLIT_DIRS)

    ds = load_dataset(root)
    assert ds.num_cameras == TINY["num_cameras"]
    assert ds.num_train_pids == TINY["num_train_ids"]
    cams_of = {}
    for r in ds.train + ds.query + ds.gallery:
        cams_of.setdefault(r.pid, set()).add(r.camid)
    assert all(len(c) >= 2 for c in cams_of.values())
    # Market-1501 protocol: one query per identity and camera, and a true match in another camera.
    assert len({(r.pid, r.camid) for r in ds.query}) == len(ds.query)
    for q in ds.query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery), q


def test_meta_describes_every_image_and_rebuilds_the_renderer(tiny_set):
    root, _ = tiny_set
    meta, table = read_meta(root), read_image_meta(root)
    on_disk = {p.name for p in root.rglob("*.jpg")}
    assert set(table) == on_disk
    assert len(meta["cameras"]) == TINY["num_cameras"]
    rebuilt, drawn = load_world(root), SyntheticWorld(seed=3, num_cameras=TINY["num_cameras"])
    assert rebuilt.cameras == drawn.cameras
    assert rebuilt.appearance(5) == drawn.appearance(5)


def test_true_rendering_reproduces_the_file(tiny_set):
    root, _ = tiny_set
    table = read_image_meta(root)
    world = load_world(root)
    for name in sorted(table)[::7]:
        rec = table[name]
        exact, mask = true_rendering(root, name, rec["camid"], noise=True)
        image, _ = world.render(rec["pid"], rec["pose"], rec["camid"], noise_key=(rec["pid"], rec["camid"], rec["frame"]))
        np.testing.assert_array_equal(exact, image)  # the pixels that went into the JPEG encoder
        decoded = np.asarray(Image.open(root / rec["file"]).convert("RGB")).astype(float)
        # JPEG q95 (4:4:4) of a noisy 64x32 crop: a few grey levels of error, far below a camera change.
        assert np.abs(decoded - exact).mean() < 5.0
        other, _ = true_rendering(root, name, (rec["camid"] + 1) % TINY["num_cameras"], noise=True)
        assert np.abs(decoded - other).mean() > 4 * np.abs(decoded - exact).mean()
        assert exact.shape == (64, 32, 3) and exact.dtype == np.uint8
        assert mask.shape == (64, 32) and mask.dtype == bool
        assert 0.1 < mask.mean() < 0.7  # a person, not empty, not the whole crop
        # The person's box lies inside the image with a margin (not cut at the border).
        rows, cols = np.nonzero(mask)
        assert rows.min() > 0 and rows.max() < 63


def test_true_rendering_in_another_camera_keeps_the_person_and_changes_the_style(tiny_set):
    root, _ = tiny_set
    name = sorted(read_image_meta(root))[0]
    own = read_image_meta(root)[name]["camid"]
    other = (own + 1) % TINY["num_cameras"]
    img_own, mask_own = true_rendering(root, name, own)
    img_other, mask_other = true_rendering(root, name, other)
    world = load_world(root)
    # Same pose: the silhouette moves only by the cameras' crop geometry (a few pixels at most).
    assert abs(int(mask_own.sum()) - int(mask_other.sum())) < 0.25 * mask_own.sum()
    assert world.cameras[own] != world.cameras[other]
    both = mask_own & mask_other
    assert np.abs(img_own[both].astype(float) - img_other[both].astype(float)).mean() > 10.0
    with pytest.raises(ValueError):
        true_rendering(root, name, TINY["num_cameras"])
    with pytest.raises(KeyError):
        true_rendering(root, "9999_c1s1_000025_01.jpg", 0)


def test_camera_styles_differ_more_than_within_camera_noise():
    world = SyntheticWorld(seed=0, num_cameras=6)
    pid = 7
    # Per camera: mean colour of the person and high-frequency energy (sharpness), over a few noisy renders.
    stats = []
    for cam in range(6):
        rows = []
        for frame in range(4):
            pose = world.pose(pid, 0, 0)  # one pose for every camera: only the camera changes
            img, mask = world.render(pid, pose, cam, noise_key=(pid, cam, frame))
            img = img.astype(float)
            sharp = np.abs(np.diff(img, axis=1)).mean()
            rows.append(np.r_[img[mask].mean(axis=0), sharp])
        stats.append(np.array(rows))
    stats = np.array(stats)  # (cameras, renders, 4)
    centres = stats.mean(axis=1)
    within = np.linalg.norm(stats - centres[:, None], axis=2).max()
    between = min(np.linalg.norm(centres[a, :3] - centres[b, :3])
                  for a in range(6) for b in range(a + 1, 6))
    assert between > 3 * within, (between, within)
    # Blur levels differ too: the sharpest camera has clearly more edge energy than the blurriest.
    assert centres[:, 3].max() > 1.5 * centres[:, 3].min()
    # style_strength=0 removes the photometric styles: the person looks alike in every camera.
    neutral = SyntheticWorld(seed=0, num_cameras=6, style_strength=0.0)
    pose = neutral.pose(pid, 0, 0)
    means = [neutral.render(pid, pose, cam)[0][neutral.render(pid, pose, cam)[1]].mean(axis=0) for cam in range(6)]
    spread = max(np.linalg.norm(a - b) for a in means for b in means)
    assert spread < between / 3, (spread, between)


def test_cli_writes_summary_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "cli"
    summary = cli_main(["--out", str(out), "--preset", "tiny", "--num-cameras", "3", "--seed", "1"])
    assert (out / META_FILE).is_file() and summary["num_cameras"] == 3
    assert "synthetic set written" in capsys.readouterr().out
    with pytest.raises(FileExistsError):
        cli_main(["--out", str(out), "--preset", "tiny"])
    again = cli_main(["--out", str(out), "--preset", "tiny", "--overwrite", "--num-train-ids", "2"])
    assert again["num_train_ids"] == 2 and read_meta(out)["params"]["num_train_ids"] == 2
    assert not list(tmp_path.glob("cli.tmp-*")) and not list(tmp_path.glob("cli.old-*"))


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="min_cameras_per_id"):
        make_synthetic(tmp_path / "a", min_cameras_per_id=1, **{k: v for k, v in TINY.items()})
    with pytest.raises(ValueError, match="images_per_id_cam"):
        make_synthetic(tmp_path / "b", **dict(TINY, images_per_id_cam=1))
    with pytest.raises(ConfigError, match="preset"):  # presets are applied by the callers, which check them
        load_config(PipelineConfig, None, ["synthetic.preset=huge"])
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a synthetic set"):
        make_synthetic(tmp_path / "foreign", overwrite=True, **TINY)
    assert (tmp_path / "foreign" / "keep.txt").read_text() == "x"
