"""evaluate_reid --checkpoint finds the model's relative data.root from any folder; --set data.root= wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_export import make_checkpoint

from reid_stargan.cli.checkpoint_paths import resolve_data_root, training_folder
from reid_stargan.cli.evaluate_reid import cli as evaluate_cli
from reid_stargan.cli.evaluate_reid import main as evaluate_main
from reid_stargan.data.synthetic import make_synthetic

SIZES = dict(num_train_ids=4, num_test_ids=4, num_cameras=2, images_per_id_cam=2, min_cameras_per_id=2,
             max_cameras_per_id=2, height=64, width=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(the folder training ran in, its model.pt) with data.root stored as the relative 'data/set'."""
    where = tmp_path_factory.mktemp("work")
    make_synthetic(where / "data" / "set", seed=0, **SIZES)
    ckpt = where / "runs" / "00001-set-baseline" / "checkpoints" / "model.pt"
    ckpt.parent.mkdir(parents=True)
    return where, make_checkpoint(ckpt, "small", data_root="data/set", height=64, width=32)


def test_relative_root_is_found_from_another_folder(trained, tmp_path, monkeypatch):
    where, ckpt = trained
    monkeypatch.chdir(where)
    here = evaluate_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "a")])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert not Path("data/set").exists()
    for checkpoint in (ckpt, ckpt.parent.parent):  # the file or its run folder
        there = evaluate_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "b")])
        assert there["mAP"] == here["mAP"] and there["num_gallery"] == here["num_gallery"] > 0


def test_set_data_root_overrides_and_a_missing_root_is_one_line(trained, tmp_path, monkeypatch, capsys):
    where, ckpt = trained
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "copy" / "model.pt"
    copy.parent.mkdir()
    copy.write_bytes(ckpt.read_bytes())  # outside any run folder: data/set cannot be found from it
    assert evaluate_cli(["--checkpoint", str(copy), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: data.root 'data/set' of the checkpoint is relative and was not found")
    assert "--set data.root=PATH" in err and "\n" not in err
    assert evaluate_cli(["--checkpoint", str(copy), "--set", f"data.root={where / 'data' / 'set'}",
                         "--out", str(tmp_path / "y")]) == 0
    # An override is taken as given (relative to the current folder), never re-resolved.
    monkeypatch.chdir(where)
    assert evaluate_cli(["--checkpoint", str(copy), "--set", "data.root=data/set", "--out", str(tmp_path / "z")]) == 0


def test_resolution_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the current folder is the first place looked in: keep it empty of "data"
    run = tmp_path / "proj" / "out" / "runs" / "00002-x"
    (run / "checkpoints").mkdir(parents=True)
    assert training_folder(run.resolve(), "out/runs") == (tmp_path / "proj").resolve()
    assert training_folder(run.resolve(), "runs") == (tmp_path / "proj" / "out").resolve()
    assert training_folder(run.resolve(), "elsewhere") is None  # a --run-dir folder: no guess
    assert training_folder(run.resolve(), "../runs") is None
    assert resolve_data_root("/abs/path", run / "checkpoints" / "model.pt") == "/abs/path"
    (tmp_path / "proj" / "data").mkdir()
    got = resolve_data_root("data", run / "checkpoints" / "model.pt", "out/runs")
    assert got == str((tmp_path / "proj" / "data").resolve())
    (run / "local").mkdir()  # beside the run folder's files, when not under the training folder
    assert resolve_data_root("local", run / "checkpoints" / "model.pt", "other") == str((run / "local").resolve())
