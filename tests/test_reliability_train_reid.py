"""train_reid's bad-input table (issue 13): each case, its message and exit code; NaN stop, resume
refusals, foreign run folders, duplicate stats, failed starts. Each test fails on the code before the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reid_stargan.cli.train_reid import cli
from reid_stargan.config import ConfigError, load_config
from reid_stargan.data.synthetic import make_synthetic
from reid_stargan.reid.config import ReidConfig
from reid_stargan.reid.trainer import NonFiniteLossError, ResumeMismatchError, train_reid
from reid_stargan.utils.io import torch_load
from reid_stargan.utils.rundir import RunDirError, read_stats

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "reid" / "synthetic_cpu_baseline.yaml"
SIZES = dict(num_train_ids=8, num_test_ids=6, num_cameras=3, images_per_id_cam=2, min_cameras_per_id=2,
             max_cameras_per_id=3, height=64, width=32)
FAST = ["sampler.num_ids=4", "sampler.num_instances=2", "optim.iters_per_epoch=2", "optim.epochs=3",
        "optim.warmup_epochs=0", "optim.milestones=[100]", "train.threads=1", "train.num_workers=0",
        "train.log_every=1", "train.checkpoint_every=1", "train.tensorboard=false", "eval.batch_size=128", "train.seed=1", "train.device=cpu"]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel_reid") / "src"
    make_synthetic(root, seed=0, style_strength=0.3, **SIZES)
    return root


def tiny_cfg(root: Path, *overrides: str) -> ReidConfig:
    return load_config(ReidConfig, CONFIG, [f"data.root={root}", *FAST, *overrides])


def cli_args(root: Path, *extra: str) -> list[str]:
    return ["--config", str(CONFIG), "--no-progress", "--set", f"data.root={root}", *FAST, *extra]


# ----------------------------------------------------------------------------- config values (item 11)
@pytest.mark.parametrize("override, message", [
    ("optim.epochs=0", r"optim.epochs must be >= 1, got 0"),
    ("optim.iters_per_epoch=-1", r"optim.iters_per_epoch must be >= 0"),
    ("train.device=tpu", r"train.device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    ("loss.label_smoothing=1.0", r"loss.label_smoothing must be in \[0, 1\), got 1.0"),
    ("loss.label_smoothing=-0.1", r"loss.label_smoothing must be in \[0, 1\)"),
    ("input.height=4", r"input.height=4 is too small for model.backbone=small"),
    ("optim.lr=-1", r"optim.lr must be > 0"),
    ("train.num_workers=-2", r"train.num_workers"),
])
def test_bad_values_are_refused_at_load_naming_the_key(override, message, capsys):
    with pytest.raises(ConfigError, match=message):
        load_config(ReidConfig, CONFIG, [override])
    assert cli(["--config", str(CONFIG), "--set", override, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config error:") and err.count("\n") == 1


# ----------------------------------------------------------------------------- NaN stop (item 2)
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(src, tmp_path, monkeypatch):
    from reid_stargan.reid import modes

    calls = {"n": 0}
    original = modes.BaselineMode.compute_loss

    def poisoned(self, *args, **kwargs):
        losses = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 2, iteration 2
            losses = {**losses, "loss": losses["loss"] * float("nan")}
        return losses

    monkeypatch.setattr(modes.BaselineMode, "compute_loss", poisoned)
    run = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"epoch 2 iteration 2 .*Last good checkpoint: .*last.pt \(epoch 1\)"):
        train_reid(tiny_cfg(src), run, progress=False)
    state = torch_load(run / "checkpoints" / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (run / "checkpoints" / "model.pt").exists() and not (run / "metrics.json").exists()


# ----------------------------------------------------------------------------- resume (items 10, 12, 13)
def test_resume_of_a_missing_folder_is_refused(src, tmp_path, capsys):
    code = cli(cli_args(src, "--resume", str(tmp_path / "nowhere")))
    err = capsys.readouterr().err
    assert code == 2 and "nowhere: no such folder" in err and err.count("\n") == 1
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "empty").mkdir()
    assert cli(cli_args(src, "--resume", str(tmp_path / "empty"))) == 2
    assert "no checkpoints/last.pt" in capsys.readouterr().err


def test_resume_drops_duplicate_stats_and_refuses_other_data(src, tmp_path):
    run = tmp_path / "r"
    assert train_reid(tiny_cfg(src), run, progress=False, stop_after_epochs=1) == {}
    # A kill after the checkpoint but before the next one: stats of epoch 2 that the resume will redo.
    with open(run / "stats.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 1, "iter": 0, "step": 3, "loss": 1.0}) + "\n")
    (run / "checkpoints" / "last.pt.tmp-stale1").write_bytes(b"half a checkpoint")
    train_reid(tiny_cfg(src), run, progress=False)
    steps = [r["step"] for r in read_stats(run) if "step" in r]
    assert steps == sorted(set(steps)) == list(range(1, 7))
    assert not list((run / "checkpoints").glob("*.tmp-*"))

    other = tmp_path / "other_data"
    make_synthetic(other, seed=2, **{**SIZES, "num_train_ids": 9})
    half = tmp_path / "half"
    train_reid(tiny_cfg(src), half, progress=False, stop_after_epochs=1)
    cfg = load_config(ReidConfig, None, [])  # the saved config is used; only data.root moves
    state = torch_load(half / "checkpoints" / "last.pt")
    state["config"]["data"]["root"] = str(other)
    torch.save(state, half / "checkpoints" / "last.pt")
    with pytest.raises(ResumeMismatchError, match=r"trained with 8 training identities, the data now has 9"):
        train_reid(cfg, half, progress=False)


# ----------------------------------------------------------------------------- run folders (items 5a, 15)
def test_run_dir_into_a_foreign_folder_is_refused(src, tmp_path, capsys):
    user = tmp_path / "experiment"
    user.mkdir()
    (user / "config.yaml").write_text("# my notes\nlr: 0.1\n")
    with pytest.raises(RunDirError, match="not a run folder"):
        train_reid(tiny_cfg(src), user, progress=False)
    assert cli(cli_args(src, "--run-dir", str(user))) == 2
    assert "not a run folder of this toolkit" in capsys.readouterr().err
    assert (user / "config.yaml").read_text() == "# my notes\nlr: 0.1\n"
    stargan_run = tmp_path / "gan_run"
    stargan_run.mkdir()
    (stargan_run / "run.json").write_text('{"tool": "train_stargan"}')
    assert cli(cli_args(src, "--resume", str(stargan_run))) == 2
    assert "is a train_stargan run folder" in capsys.readouterr().err


def test_failed_start_leaves_no_numbered_folder(tmp_path, capsys):
    out_root = tmp_path / "runs"
    code = cli(cli_args(tmp_path / "no_such_data", f"out_root={out_root}"))
    err = capsys.readouterr().err
    assert code == 2 and "no_such_data" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out_root.exists() or not any(out_root.iterdir())


def test_missing_camstyle_set_is_one_line(src, tmp_path, capsys):
    code = cli(cli_args(src, "train.mode=camstyle", f"out_root={tmp_path}", "--camstyle", str(tmp_path / "none")))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
