"""tools/generate_camstyle.py: counts, names, sizes, manifest, determinism, crash-resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, write_image
from PIL import Image

from reid_stargan.camstyle.generate import CamStyleError, GenerateOptions, generate_camstyle
from reid_stargan.camstyle.naming import read_camstyle
from reid_stargan.data.datasets import build_dataset
from reid_stargan.gan.checkpoint import save_inference
from reid_stargan.gan.models import Discriminator, Generator

H, W, CAMS = 32, 16, 3


def make_checkpoint(folder: Path, c_dim: int = CAMS, seed: int = 0, conv_dim: int = 8, repeat: int = 1) -> Path:
    """A small random-weight generator (+ discriminator) in this toolkit's format."""
    torch.manual_seed(seed)
    g = Generator(conv_dim, c_dim, repeat)
    # Random affine IN parameters so different target labels give visibly different outputs.
    for m in g.modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            torch.nn.init.normal_(m.weight, 1.0, 0.5)
    d = Discriminator((H, W), conv_dim, c_dim, 2)
    meta = {"c_dim": c_dim, "image_size": [H, W], "g_conv_dim": conv_dim, "g_repeat_num": repeat,
            "d_c_dim": c_dim, "d_conv_dim": conv_dim, "d_repeat_num": 2, "domain_names": None,
            "layout": None, "step": 0}
    folder.mkdir(parents=True, exist_ok=True)
    save_inference(folder / "discriminator.pt", d, "discriminator", meta)
    return save_inference(folder / "generator.pt", g, "generator", meta)


def make_market(root: Path, ids: int = 4, per_cam: int = 2, size=(20, 40)) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    for pid in range(1, ids + 1):
        for cam in range(1, CAMS + 1):
            for f in range(per_cam):
                arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
                path = root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_{f:06d}_00.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(path)
    write_image(root / "query" / "0100_c1s1_000000_00.jpg")
    write_image(root / "bounding_box_test" / "0100_c2s1_000000_00.jpg")
    return root


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if "_fake_" in p.name}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("camstyle")
    root = make_market(base / "market")
    ckpt = make_checkpoint(base / "ckpt")
    return root, ckpt, build_dataset("market_layout", root)


def run(setup, out, **kw):
    root, ckpt, ds = setup
    return generate_camstyle(ckpt, ds.train, out, ds.num_cameras, GenerateOptions(progress=False, **kw))


def test_counts_names_manifest_and_judge(setup, tmp_path):
    root, ckpt, ds = setup
    summary = run(setup, tmp_path / "out")
    expected = len(ds.train) * (CAMS - 1)
    assert summary["images_out"] == expected and summary["failed"] == 0
    assert summary["d_target_accuracy"] is not None and 0 <= summary["d_target_accuracy"] <= 100
    names = [p.name for p in (tmp_path / "out").glob("*_fake_*.jpg")]
    assert len(names) == expected
    assert "0001_c1s1_000000_00_fake_1to2.jpg" in names
    assert not any(n.endswith("_fake_1to1.jpg") for n in names)  # own camera excluded by default
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == expected
    entry = manifest[0]
    assert set(entry) == {"source", "pid", "src_cam", "dst_cam", "output"}
    assert Path(entry["source"]).is_file() and entry["src_cam"] != entry["dst_cam"]
    info = json.loads((tmp_path / "out" / "camstyle_info.json").read_text())
    assert len(info["checkpoint_sha256"]) == 64
    # Sizes: generator size by default.
    assert Image.open(tmp_path / "out" / names[0]).size == (W, H)


@pytest.mark.parametrize("naming", ["camstyle", "hhl"])
def test_both_namings_round_trip_through_the_reid_reader(setup, tmp_path, naming):
    root, ckpt, ds = setup
    out = tmp_path / naming
    run(setup, out, naming=naming, include_own=True)
    os.remove(out / "manifest.jsonl")  # read by names alone
    recs = read_camstyle(out)
    assert len(recs) == len(ds.train) * CAMS
    by_source = {(r.pid, r.src_camid) for r in recs}
    assert by_source == {(r.pid, r.camid) for r in ds.train}
    assert {r.dst_camid for r in recs} == set(range(CAMS))


def test_targets_per_image_picks_the_same_cameras_in_every_shard(setup, tmp_path):
    root, ckpt, ds = setup
    run(setup, tmp_path / "a", targets_per_image=1)
    for i in range(2):
        run(setup, tmp_path / "b", targets_per_image=1, shard_index=i, num_shards=2)
    a = folder_bytes(tmp_path / "a")
    assert len(a) == len(ds.train) and a == folder_bytes(tmp_path / "b")
    assert {r.dst_camid for r in read_camstyle(tmp_path / "a")} == set(range(CAMS))  # spread over cameras


def test_linked_targets_stay_within_the_cameras_that_share_identities(tmp_path):
    """CUHK03's layout: each person in one camera pair. "linked" renders into the partner camera only."""
    from reid_stargan.camstyle.generate import planned_outputs
    from reid_stargan.data.records import Record, camera_links

    pairs = [(0, 1), (0, 1), (2, 3), (2, 3)]  # pid -> its two cameras (cameras 0-1 and 2-3 share nobody)
    records = [Record(f"{pid:04d}_c{cam + 1}s1_000000_00.jpg", pid, cam) for pid, cams in enumerate(pairs)
               for cam in cams]
    assert camera_links(records) == {0: {0, 1}, 1: {0, 1}, 2: {2, 3}, 3: {2, 3}}
    linked = GenerateOptions(targets="linked", progress=False)
    links = camera_links(records)
    assert {r.camid: [dst for dst, _ in planned_outputs(r, 4, linked, links)] for r in records} == {
        0: [1], 1: [0], 2: [3], 3: [2]}
    assert [dst for dst, _ in planned_outputs(records[0], 4, GenerateOptions(progress=False))] == [1, 2, 3]
    with pytest.raises(CamStyleError, match="targets must be 'all' or 'linked'"):
        GenerateOptions(targets="pairs")

    # Through the generator, on a set whose camera 3 shares no identity with cameras 1-2.
    root = tmp_path / "set"
    for pid, cams in ((1, (1, 2)), (2, (1, 2)), (3, (3,))):
        for cam in cams:
            write_image(root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_000000_00.jpg", size=(16, 32))
    write_image(root / "query" / "0100_c1s1_000000_00.jpg")
    write_image(root / "bounding_box_test" / "0100_c2s1_000000_00.jpg")
    ds = build_dataset("market_layout", root)
    ckpt = make_checkpoint(tmp_path / "ckpt")
    summary = generate_camstyle(ckpt, ds.train, tmp_path / "out", ds.num_cameras, linked)
    made = {(r.src_camid, r.dst_camid) for r in read_camstyle(tmp_path / "out")}
    assert made == {(0, 1), (1, 0)} and summary["complete"]  # camera 3's only person: no linked target
    assert json.loads((tmp_path / "out" / "camstyle_info.json").read_text())["targets"] == "linked"
    with pytest.raises(CamStyleError, match="targets='linked', this run asks 'all'"):
        generate_camstyle(ckpt, ds.train, tmp_path / "out", ds.num_cameras, GenerateOptions(progress=False))


def test_resize_back_and_png(setup, tmp_path):
    run(setup, tmp_path / "o", resize_back=True, image_format="png")
    files = list((tmp_path / "o").glob("*_fake_*.png"))
    assert files and all(Image.open(f).size == (20, 40) for f in files)


def test_bytes_do_not_depend_on_batch_size_or_sharding(setup, tmp_path):
    run(setup, tmp_path / "a", batch_size=1)
    run(setup, tmp_path / "b", batch_size=5, workers=3)
    for i in range(3):
        run(setup, tmp_path / "c", batch_size=2, shard_index=i, num_shards=3)
    a, b, c = (folder_bytes(tmp_path / x) for x in "abc")
    assert a == b == c and len(a) > 0
    assert (tmp_path / "c" / "summary.shard-2-of-3.json").is_file()


def test_rerun_skips_complete_outputs(setup, tmp_path):
    first = run(setup, tmp_path / "o")
    (tmp_path / "o" / "0001_c1s1_000000_00_fake_1to2.jpg").unlink()
    second = run(setup, tmp_path / "o")
    assert second["images_out"] == 1
    assert second["skipped_existing"] == first["images_out"] - 1


def test_killed_run_resumes_to_identical_result(tmp_path):
    """SIGKILL mid-run, rerun: the folder equals an uninterrupted run's, byte for byte."""
    root = make_market(tmp_path / "market", ids=12, per_cam=4, size=(64, 128))
    ckpt = make_checkpoint(tmp_path / "ckpt", conv_dim=32, repeat=3)  # slow enough to be killed mid-way
    cmd = [sys.executable, str(REPO_ROOT / "tools" / "generate_camstyle.py"), "--checkpoint", str(ckpt),
           "--data-root", str(root), "--batch-size", "2", "--no-progress", "--no-judge"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out_a = tmp_path / "interrupted"
    proc = subprocess.Popen([*cmd, "--out", str(out_a)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out_a.glob("*_fake_*"))) < 10:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len([p for p in out_a.glob("*_fake_*") if ".tmp-" not in p.name])
    total = 12 * CAMS * 4 * (CAMS - 1)
    assert 0 < partial < total, "the run should have been killed part-way"
    subprocess.run([*cmd, "--out", str(out_a)], env=env, check=True, capture_output=True)
    out_b = tmp_path / "straight"
    subprocess.run([*cmd, "--out", str(out_b)], env=env, check=True, capture_output=True)
    a, b = folder_bytes(out_a), folder_bytes(out_b)
    assert len(b) == total and a == b
    assert not [p for p in out_a.iterdir() if ".tmp-" in p.name]  # the killed run's half-written file is gone


def test_unreadable_source_is_counted_not_fatal(setup, tmp_path):
    root, ckpt, ds = setup
    bad = tmp_path / "broken" / "0009_c2s1_000000_00.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not a jpeg")
    records = [*ds.train, ds.train[0]._replace(path=str(bad), pid=9, camid=1)]
    summary = generate_camstyle(ckpt, records, tmp_path / "o", CAMS, GenerateOptions(progress=False))
    assert summary["failed"] == 1 and summary["failed_files"][0]["path"] == str(bad)
    assert summary["images_out"] == len(ds.train) * (CAMS - 1)


def test_wrong_c_dim_and_foreign_folder_are_refused(setup, tmp_path):
    root, ckpt, ds = setup
    with pytest.raises(CamStyleError, match=r"c_dim=3 .* 5 cameras"):
        generate_camstyle(ckpt, ds.train, tmp_path / "x", 5, GenerateOptions(progress=False))
    run(setup, tmp_path / "o")
    other = make_checkpoint(tmp_path / "other", seed=1)
    with pytest.raises(CamStyleError, match="another checkpoint"):
        generate_camstyle(other, ds.train, tmp_path / "o", CAMS, GenerateOptions(progress=False))
    summary = generate_camstyle(other, ds.train, tmp_path / "o", CAMS,
                                GenerateOptions(progress=False, overwrite=True))
    assert summary["images_out"] == len(ds.train) * (CAMS - 1)
    with pytest.raises(CamStyleError, match="naming"):
        generate_camstyle(other, ds.train, tmp_path / "o", CAMS, GenerateOptions(progress=False, naming="hhl"))


def test_official_checkpoint_with_cli(setup, tmp_path):
    """An official-format *-G.ckpt / *-D.ckpt pair (bare state dicts) drives the CLI."""
    root, ckpt, ds = setup
    torch.manual_seed(0)
    g, d = Generator(8, CAMS, 1), Discriminator((H, W), 8, CAMS, 2)
    models = tmp_path / "models"
    models.mkdir()
    torch.save(g.state_dict(), models / "1000-G.ckpt")
    torch.save(d.state_dict(), models / "1000-D.ckpt")
    out = tmp_path / "official"
    cmd = [sys.executable, str(REPO_ROOT / "tools" / "generate_camstyle.py"), "--checkpoint",
           str(models / "1000-G.ckpt"), "--data-root", str(root), "--out", str(out), "--naming", "hhl",
           "--include-own", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images_out"] == len(ds.train) * CAMS and summary["d_target_accuracy"] is not None
    bad = subprocess.run([*cmd[:-1], "--shard", "3/2"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--shard" in bad.stderr
