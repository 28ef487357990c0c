"""train_stargan's bad-input table (issue 13): each case, its message and exit code. Each test fails
on the code before the fix."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import write_image

from reid_stargan.cli.train_stargan import cli
from reid_stargan.config import ConfigError, load_config
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.trainer import train_stargan
from reid_stargan.utils.rundir import RunDirError, read_stats

TINY = ["gan.image_size=[16,8]", "gan.g_conv_dim=8", "gan.g_repeat_num=1", "gan.d_conv_dim=8",
        "gan.d_repeat_num=3", "train.batch_size=8", "train.n_critic=2", "train.seed=3", "runtime.device=cpu",
        "runtime.in_memory=true", "runtime.num_workers=0", "log.log_every=1", "log.sample_every=1000",
        "log.checkpoint_every=1000", "log.sample_rows=4", "log.eval_images=16", "log.tensorboard=false",
        "train.num_iters=4", "train.num_iters_decay=0"]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    from reid_stargan.data.synthetic import PRESETS, make_synthetic

    root = tmp_path_factory.mktemp("rel_gan") / "tiny"
    make_synthetic(root, seed=0, **PRESETS["tiny"])  # 4 cameras
    return root


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    path = tmp_path_factory.mktemp("rel_gan_cfg") / "blank.yaml"
    path.write_text("{}\n")  # the defaults; the tests' --set values do the rest
    return path


def tiny_cfg(root, *overrides) -> StarGANConfig:
    return load_config(StarGANConfig, None, [f"data.root={root}", *TINY, *overrides])


def args(blank, root, *extra) -> list[str]:
    return ["--config", str(blank), "--no-progress", "--set", f"data.root={root}", *TINY, *extra]


def one_line_error(capsys, code, expected_code=2) -> str:
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("override, message", [
    ("runtime.device=tpu", r"runtime.device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    ("train.d_lr=-0.1", r"train.g_lr and train.d_lr must be > 0"),  # was torch's "Invalid learning rate"
    ("train.beta2=1.5", r"train.beta1 and train.beta2 must be in \[0, 1\)"),
    ("log.checkpoint_every=0", r"log.checkpoint_every must be >= 1"),  # was a ZeroDivisionError mid-run
    ("runtime.num_workers=-1", r"runtime.num_workers and runtime.threads must be >= 0"),
])
def test_bad_values_are_refused_at_load_naming_the_key(blank, override, message, capsys):
    with pytest.raises(ConfigError, match=message):
        load_config(StarGANConfig, None, [override])
    err = one_line_error(capsys, cli(["--config", str(blank), "--set", override, "--dry-run"]))
    assert "config error" in err


def test_run_dir_into_a_foreign_folder_is_refused(blank, tiny_set, tmp_path, capsys):
    user = tmp_path / "experiment"
    user.mkdir()
    (user / "config.yaml").write_text("gan:\n  lambda_rec: 10  # my notes\n")
    with pytest.raises(RunDirError, match="not a run folder"):
        train_stargan(tiny_cfg(tiny_set), user, progress=False)
    err = one_line_error(capsys, cli(args(blank, tiny_set, "--run-dir", str(user))))
    assert "not a run folder of this toolkit" in err
    assert (user / "config.yaml").read_text() == "gan:\n  lambda_rec: 10  # my notes\n"
    reid_run = tmp_path / "reid_run"
    (reid_run / "checkpoints").mkdir(parents=True)
    (reid_run / "checkpoints" / "last.pt").write_bytes(b"x")
    (reid_run / "run.json").write_text(json.dumps({"tool": "train_reid"}))
    err = one_line_error(capsys, cli(args(blank, tiny_set, "--resume", str(reid_run))))
    assert "is a train_reid run folder" in err


def test_single_camera_and_empty_cameras_are_refused(blank, tiny_set, tmp_path, capsys):
    one = tmp_path / "one_cam"
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        for i in range(3):
            write_image(one / sub / f"{i + 1:04d}_c1s1_00000{i}_00.jpg")
    err = one_line_error(capsys, cli(args(blank, one, f"out_root={tmp_path / 'runs'}")))
    assert "1 camera(s) (c1)" in err and "two or more cameras" in err
    err = one_line_error(capsys, cli(args(blank, tiny_set, "data.num_cameras=6", f"out_root={tmp_path / 'runs'}")))
    assert "c5, c6 of c1..c6 have no training image" in err and "--allow-empty-cameras" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # item 15


def test_stray_test_camera_does_not_add_a_domain(blank, tiny_set, tmp_path, capsys):
    root = tmp_path / "stray"
    shutil.copytree(tiny_set, root)
    write_image(root / "query" / "0999_c9s1_000000_00.jpg")
    # StarGAN reads the training split only (item 17), so the stray test file is never parsed: the
    # domains are the training split's four cameras (before: a 9-domain model; then: refused).
    code = cli(args(blank, root, "--run-dir", str(tmp_path / "run")))
    assert code == 0, capsys.readouterr().err
    from reid_stargan.gan import load_generator

    _, info = load_generator(tmp_path / "run" / "checkpoints" / "generator.pt", device="cpu")
    assert info["c_dim"] == 4


def test_failed_start_leaves_no_numbered_folder(blank, tmp_path, capsys):
    runs = tmp_path / "runs"
    err = one_line_error(capsys, cli(args(blank, tmp_path / "missing", f"out_root={runs}")))
    assert "missing" in err
    assert not runs.exists() or not any(runs.iterdir())


def test_c_dim_mismatch_and_nan_are_one_line(blank, tiny_set, tmp_path, capsys):
    runs = tmp_path / "runs"  # the numbered folder made for this failed start is removed again (item 15)
    err = one_line_error(capsys, cli(args(blank, tiny_set, "gan.c_dim=6", f"out_root={runs}")))
    assert "gan.c_dim=6 but the data has 4 domains" in err
    assert runs.is_dir() and not any(runs.iterdir())
    err = one_line_error(capsys, cli(args(blank, tiny_set, "gan.lambda_rec=.inf", "--run-dir", str(tmp_path / "n"))))
    assert "non-finite loss at step 2" in err


def test_resume_drops_duplicate_stats_and_names_both_camera_counts(blank, tiny_set, tmp_path, capsys):
    run = tmp_path / "r"
    train_stargan(tiny_cfg(tiny_set), run, progress=False, max_steps=2)
    with open(run / "stats.jsonl", "a") as f:  # a kill after step 3's record, before its checkpoint
        f.write(json.dumps({"step": 3, "D/loss": 1.0}) + "\n")
    (run / "checkpoints" / "last.pt.tmp-stale1").write_bytes(b"half a checkpoint")
    fewer = tmp_path / "three_cams"
    shutil.copytree(tiny_set, fewer)
    for path in list((fewer / "bounding_box_train").glob("*_c4*")):
        path.unlink()
    for sub in ("query", "bounding_box_test"):
        for path in list((fewer / sub).glob("*_c4*")):
            path.unlink()
    err = one_line_error(capsys, cli(args(blank, fewer, "--resume", str(run))))
    assert "trained with 4 domains (cameras), the data now has 3" in err
    train_stargan(tiny_cfg(tiny_set), run, progress=False)
    assert [r["step"] for r in read_stats(run)] == [1, 2, 3, 4]
    assert not list((run / "checkpoints").glob("*.tmp-*"))


def test_resume_runs_on_the_saved_config_and_records_each_change(blank, tiny_set, tmp_path, capsys):
    """Item 5b: --resume needs no --config, takes only explicit --set changes of non-frozen keys,
    prints them and keeps a record; a --config that silently differs (100x lr) is refused."""
    run = tmp_path / "r"
    train_stargan(tiny_cfg(tiny_set), run, progress=False, max_steps=2)
    hot = tmp_path / "hot.yaml"
    hot.write_text("train:\n  d_lr: 0.01\n")
    err = one_line_error(capsys, cli(["--config", str(hot), "--resume", str(run), "--no-progress",
                                      "--set", f"data.root={tiny_set}", *TINY]))
    assert "--config differs from it: train.d_lr: run 0.0001 vs" in err and "--set KEY=VALUE" in err
    err = one_line_error(capsys, cli(["--resume", str(run), "--no-progress", "--set", "gan.g_conv_dim=16"]))
    assert "gan.g_conv_dim cannot change in a resumed run" in err
    assert not (run / "config_changes.jsonl").exists()
    assert cli(["--resume", str(run), "--no-progress", "--set", "train.g_lr=0.0002", "log.eval_images=8"]) == 0
    assert "resume: train.g_lr: 0.0001 -> 0.0002" in capsys.readouterr().err
    records = [json.loads(line) for line in (run / "config_changes.jsonl").read_text().splitlines()]
    assert records[0]["at_step"] == 2
    assert records[0]["changes"] == {"log.eval_images": [16, 8], "train.g_lr": [0.0001, 0.0002]}
    saved = load_config(StarGANConfig, run / "config.yaml")
    assert saved.train.g_lr == 0.0002 and saved.train.d_lr == 0.0001 and saved.train.seed == 3
