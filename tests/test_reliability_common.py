"""Reliability of the shared pieces (issue 13): checkpoint loading, run folders, file modes, images,
camera counts and the one-line CLI errors. Each test fails on the code before the fix."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, write_image
from PIL import Image

from reid_stargan.cli.common import run_cli
from reid_stargan.data.datasets import DatasetError, build_dataset
from reid_stargan.data.imageio import BadImageError, load_rgb
from reid_stargan.utils.io import CheckpointFileError, atomic_torch_save, atomic_write_text, torch_load
from reid_stargan.utils.rundir import (
    RunDirError,
    claim_run_dir,
    discard_unstarted_run,
    drop_stats_after,
    make_run_dir,
    remove_stale_temporaries,
)


# ----------------------------------------------------------------------------- checkpoints (item 12)
class _Code:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _write_cases(tmp_path):
    good = atomic_torch_save({"w": torch.zeros(3)}, tmp_path / "good.pt")
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(2000))
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("model weights, honest\n")
    torch.save({"x": _Code()}, tmp_path / "code.pt")


@pytest.mark.parametrize("name, message", [
    ("truncated.pt", r"truncated or corrupt checkpoint"),
    ("random.pt", r"not a checkpoint"),
    ("empty.pt", r"empty file \(0 bytes\), not a checkpoint"),
    ("text.pt", r"not a checkpoint \(not a torch file"),
    ("code.pt", r"holds pickled code .* refused"),
])
def test_bad_checkpoint_files_say_what_they_are(tmp_path, name, message):
    _write_cases(tmp_path)
    with pytest.raises(CheckpointFileError, match=message) as info:
        torch_load(tmp_path / name)
    assert "weights_only=False" not in str(info.value)  # never advise running the file's code
    assert torch.equal(torch_load(tmp_path / "good.pt")["w"], torch.zeros(3))


# ----------------------------------------------------------------------------- file modes (item 16)
def test_atomic_writes_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o027)
        path = atomic_write_text(tmp_path / "b.txt", "x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------- run folders (5a, 13, 14, 15)
def test_claim_run_dir_refuses_foreign_and_other_tool_folders(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "config.yaml").write_text("my: own notes\n")
    with pytest.raises(RunDirError, match="not a run folder of this toolkit"):
        claim_run_dir(user, "train_reid")
    assert (user / "config.yaml").read_text() == "my: own notes\n"
    run = claim_run_dir(tmp_path / "new", "train_stargan")
    assert json.loads((run / "run.json").read_text())["tool"] == "train_stargan"
    assert claim_run_dir(run, "train_stargan") == run  # its own run: accepted
    with pytest.raises(RunDirError, match="is a train_stargan run folder"):
        claim_run_dir(run, "train_reid")
    numbered = make_run_dir(tmp_path / "runs", "x")  # empty sub-folders only: still empty
    assert claim_run_dir(numbered, "train_reid") == numbered


def test_stale_temporaries_and_unstarted_runs_are_cleaned(tmp_path):
    run = make_run_dir(tmp_path, "r")
    (run / "checkpoints" / "last.pt.tmp-abc123").write_bytes(b"half")
    (run / "checkpoints" / "last.pt").write_bytes(b"whole")
    removed = remove_stale_temporaries(run)
    assert [os.path.basename(p) for p in removed] == ["last.pt.tmp-abc123"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]
    assert not discard_unstarted_run(run) and run.is_dir()  # a checkpoint: kept
    empty = make_run_dir(tmp_path, "failed")
    (empty / "config.yaml").write_text("a: 1\n")
    (empty / "log.txt").write_text("started\n")
    assert discard_unstarted_run(empty) and not empty.exists()


def test_drop_stats_after_keeps_only_records_up_to_the_step(tmp_path):
    lines = [json.dumps({"step": s}) for s in (1, 2, 3, 4)] + ['{"step": 5, "cut sh']
    (tmp_path / "stats.jsonl").write_text("\n".join(lines) + "\n")
    assert drop_stats_after(tmp_path, lambda r: r["step"] <= 2) == 3
    assert [json.loads(x)["step"] for x in (tmp_path / "stats.jsonl").read_text().splitlines()] == [1, 2]


# ----------------------------------------------------------------------------- images (item 6)
def test_16_bit_png_is_scaled_not_white(tmp_path):
    values = (np.arange(64 * 32).reshape(64, 32) * 31).astype(np.uint16)  # (H, W), up to 63,457
    Image.fromarray(values).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as im:
        assert im.mode.startswith("I")
    rgb = np.asarray(load_rgb(tmp_path / "grey16.png"), dtype=np.float64)  # (H, W, 3)
    assert rgb.shape == (64, 32, 3)
    assert np.abs(rgb[..., 0] - values / 257.0).max() <= 0.5  # was 255 almost everywhere
    Image.fromarray(np.full((8, 8), 1.5, np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(BadImageError, match="float"):
        load_rgb(tmp_path / "float.tiff")


# ----------------------------------------------------------------------------- cameras (item 7) and names (8)
def _market(root, train, query=("0100_c1s1_000000_00.jpg",), gallery=("0100_c2s1_000000_00.jpg",)):
    for sub, names in (("bounding_box_train", train), ("query", query), ("bounding_box_test", gallery)):
        for name in names:
            write_image(root / sub / name)
    return root


def test_cameras_come_from_the_training_split(tmp_path):
    root = _market(tmp_path / "m", [f"0001_c{c}s1_000000_00.jpg" for c in (1, 2, 3)],
                   query=["0100_c1s1_000000_00.jpg", "0100_c9s1_000000_00.jpg"])
    with pytest.raises(DatasetError, match=r"c9 has no training image .* c1\.\.c3.*data.num_cameras=9"):
        build_dataset("market_layout", root)
    ds = build_dataset("market_layout", root, num_cameras=9)  # asked for: allowed, and the gaps are named
    assert ds.num_cameras == 9 and ds.cameras_without_training_images() == [3, 4, 5, 6, 7, 8]


def test_unmatched_names_are_counted_and_listed(tmp_path):
    root = _market(tmp_path / "m", ["0001_c1s1_000000_00.jpg", "0002_c2s1_000000_00.jpg", "holiday.jpg"])
    ds = build_dataset("market_layout", root)
    assert ds.num_skipped_names() == 1 and "holiday.jpg" in ds.skipped_note()


# ----------------------------------------------------------------------------- the CLI wrapper (item 12)
def _raises(exc):
    def main(argv):
        raise exc
    return main


@pytest.mark.parametrize("exc, code, text", [
    (ValueError("data set root /x does not exist\nexpected layout ..."), 2, "error: data set root /x does not exist"),
    (OSError(errno.ENOSPC, "No space left on device", "/full/last.pt"), 2, "error: disk full writing /full/last.pt"),
    (KeyError("unknown backbone 'resnet5'; valid: resnet18, resnet50"), 2, "error: unknown backbone 'resnet5'"),
    (SystemExit("config error: unknown config key 'x'"), 2, "error: config error: unknown config key 'x'"),
    (ZeroDivisionError("division by zero"), 1, "error: internal error ZeroDivisionError"),
])
def test_cli_errors_are_one_line(capsys, monkeypatch, exc, code, text):
    monkeypatch.delenv("REID_STARGAN_DEBUG", raising=False)
    assert run_cli(_raises(exc), []) == code
    err = capsys.readouterr().err
    assert err.startswith(text) and err.count("\n") == 1 and "Traceback" not in err
    monkeypatch.setenv("REID_STARGAN_DEBUG", "1")
    assert run_cli(_raises(exc), []) == code
    assert "Traceback" in capsys.readouterr().err


def test_make_synthetic_onto_an_existing_folder_is_one_line(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "make_synthetic.py"), "--out",
                           str(tmp_path / "out"), "--preset", "tiny"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
