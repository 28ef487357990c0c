"""Short StarGAN runs on CPU: learning, exact resume, multi-data-set and face settings, bad inputs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from reid_stargan.config import load_config
from reid_stargan.gan import CheckpointError, load_discriminator, load_generator
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.trainer import NonFiniteLossError, train_stargan
from reid_stargan.utils.io import torch_load
from reid_stargan.utils.rundir import read_stats

TINY = ["gan.image_size=[16,8]", "gan.g_conv_dim=8", "gan.g_repeat_num=1", "gan.d_conv_dim=8",
        "gan.d_repeat_num=3", "train.batch_size=8", "train.n_critic=2", "train.seed=3", "runtime.device=cpu",
        "runtime.in_memory=true", "runtime.num_workers=0", "log.log_every=1", "log.sample_every=1000",
        "log.checkpoint_every=1000", "log.sample_rows=4", "log.eval_images=64", "log.tensorboard=false"]


def tiny_cfg(root, *overrides) -> StarGANConfig:
    return load_config(StarGANConfig, None, [f"data.root={root}", *TINY, *overrides])


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    from reid_stargan.data.synthetic import PRESETS, make_synthetic

    root = tmp_path_factory.mktemp("gan") / "tiny"
    make_synthetic(root, seed=0, **PRESETS["tiny"])
    return root


def test_discriminator_learns_cameras(tiny_set, tmp_path):
    cfg = tiny_cfg(tiny_set, "train.num_iters=40", "train.num_iters_decay=10", "train.d_lr=1.0e-3", "train.g_lr=1.0e-3",
                   "log.sample_every=20", "log.tensorboard=true")
    gen_path = train_stargan(cfg, tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    chance = summary["datasets"]["tiny"]["chance"]
    assert chance == 0.25 and summary["finished"] and summary["step"] == 40
    assert summary["d_acc_real"] > chance + 0.25, summary  # well above chance after 40 iterations
    assert 0.0 <= summary["d_acc_fake"] <= 1.0 and summary["steps_per_s"] > 0
    stats = read_stats(tmp_path / "run")
    assert len(stats) == 40 and all(math.isfinite(r["D/loss"]) for r in stats)
    assert stats[-1]["lr/g"] == 0.0 and stats[0]["lr/g"] == 1e-3  # schedule ends at exactly 0
    assert {"G/loss_rec", "G/loss_cls", "G/loss_fake", "D/loss_gp", "D/loss_cls"} <= set(stats[-1])
    grids = sorted((tmp_path / "run" / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["000020.png", "000040.png"]
    from PIL import Image

    with Image.open(grids[-1]) as im:  # 4 rows of 16 px; input + 4 cameras = 5 columns of 8 px
        assert im.size == (5 * 8, 4 * 16)
    assert any((tmp_path / "run" / "tb").iterdir())
    G, info = load_generator(gen_path)
    assert info["format"] == "reid_stargan" and info["c_dim"] == 4 and info["image_size"] == (16, 8)
    assert info["domain_names"] == ["c1", "c2", "c3", "c4"]
    D, dinfo = load_discriminator(gen_path)
    assert dinfo["c_dim"] == 4
    # A finished run returns at once (no retraining: last.pt untouched).
    mtime = (tmp_path / "run" / "checkpoints" / "last.pt").stat().st_mtime_ns
    assert train_stargan(cfg, tmp_path / "run", progress=False) == gen_path
    assert (tmp_path / "run" / "checkpoints" / "last.pt").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("in_memory", [True, False])
def test_resume_is_exact(tiny_set, tmp_path, in_memory):
    over = ["train.num_iters=8", "train.num_iters_decay=4", f"runtime.in_memory={str(in_memory).lower()}",
            "augment.random_crop=true"]
    straight = train_stargan(tiny_cfg(tiny_set, *over), tmp_path / "a", progress=False)
    train_stargan(tiny_cfg(tiny_set, *over), tmp_path / "b", progress=False, max_steps=4)
    assert not (tmp_path / "b" / "summary.json").exists()
    assert torch_load(tmp_path / "b" / "checkpoints" / "last.pt")["step"] == 4
    with pytest.raises(FileExistsError, match="partial run"):
        train_stargan(tiny_cfg(tiny_set, *over), tmp_path / "b", resume=False, progress=False)
    resumed = train_stargan(tiny_cfg(tiny_set, *over), tmp_path / "b", progress=False)
    a, b = torch_load(tmp_path / "a" / "checkpoints" / "last.pt"), torch_load(tmp_path / "b" / "checkpoints" / "last.pt")
    for key in ("G", "D"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f"{key}.{name} differs after resume"
    assert a["d_opt"]["state"][0]["exp_avg"].equal(b["d_opt"]["state"][0]["exp_avg"])
    assert straight.name == resumed.name == "generator.pt"


def test_raising_num_iters_extends_a_finished_run_with_the_named_overrides(tiny_set, tmp_path):
    over = ["train.num_iters=4", "train.num_iters_decay=0", "train.n_critic=1"]
    train_stargan(tiny_cfg(tiny_set, *over), tmp_path / "x", progress=False)
    assert json.loads((tmp_path / "x" / "summary.json").read_text())["step"] == 4
    longer = ["train.num_iters=8", "gan.lambda_id=5"]
    train_stargan(tiny_cfg(tiny_set, *over, *longer), tmp_path / "x", progress=False, overrides=longer)
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert summary["finished"] and summary["step"] == summary["num_iters"] == 8
    stats = read_stats(tmp_path / "x")
    assert [r["step"] for r in stats] == list(range(1, 9))
    # The identity-mapping term is on from the resumed step only, as the override asked.
    assert [("G/loss_identity" in r) for r in stats] == [False] * 4 + [True] * 4
    (record,) = [json.loads(line) for line in (tmp_path / "x" / "config_changes.jsonl").read_text().splitlines()]
    assert record["at_step"] == 4
    assert record["changes"]["train.num_iters"] == [4, 8] and record["changes"]["gan.lambda_id"] == [0.0, 5.0]


def test_resume_refuses_a_different_model(tiny_set, tmp_path):
    train_stargan(tiny_cfg(tiny_set, "train.num_iters=4", "train.num_iters_decay=0"), tmp_path / "r",
                  progress=False, max_steps=2)
    with pytest.raises(CheckpointError, match=r"gan.g_conv_dim: checkpoint 8 vs config 16"):
        train_stargan(tiny_cfg(tiny_set, "train.num_iters=4", "train.num_iters_decay=0", "gan.g_conv_dim=16"),
                      tmp_path / "r", progress=False)


def test_nan_loss_stops_with_step_and_checkpoint(tiny_set, tmp_path):
    cfg = tiny_cfg(tiny_set, "train.num_iters=6", "train.num_iters_decay=0", "log.checkpoint_every=2",
                   "gan.lambda_rec=.inf")  # the first G update (step 2) turns the G loss infinite
    with pytest.raises(NonFiniteLossError, match=r"step 2 .*G/loss=.*Last good checkpoint: none yet"):
        train_stargan(cfg, tmp_path / "nan", progress=False)
    cfg = tiny_cfg(tiny_set, "train.num_iters=6", "train.num_iters_decay=0", "log.checkpoint_every=2",
                   "train.n_critic=3", "gan.lambda_rec=.inf")
    with pytest.raises(NonFiniteLossError, match=r"step 3 .*Last good checkpoint: .*last.pt"):
        train_stargan(cfg, tmp_path / "nan3", progress=False)
    assert torch_load(tmp_path / "nan3" / "checkpoints" / "last.pt")["step"] == 2


def test_c_dim_mismatch_names_both_sides(tiny_set, tmp_path):
    with pytest.raises(ValueError, match=r"gan.c_dim=6 but the data has 4 domains \(tiny: 4\)"):
        train_stargan(tiny_cfg(tiny_set, "gan.c_dim=6", "train.num_iters=2", "train.num_iters_decay=0"),
                      tmp_path / "c", progress=False)


def test_two_reid_sets_with_mask_vector(tiny_set, tmp_path):
    from reid_stargan.data.synthetic import make_synthetic

    other = tmp_path / "three_cams"
    make_synthetic(other, num_train_ids=8, num_test_ids=4, num_cameras=3, images_per_id_cam=3,
                   min_cameras_per_id=2, max_cameras_per_id=3, height=64, width=32, seed=1)
    cfg = tiny_cfg(tiny_set, "train.num_iters=2", "train.num_iters_decay=0",
                   f"extra_data=[{{name: market_layout, root: {other}}}]")
    gen_path = train_stargan(cfg, tmp_path / "md", progress=False)
    G, info = load_generator(gen_path)
    assert info["c_dim"] == 4 + 3 + 2 and len(info["domain_names"]) == 7
    summary = json.loads((tmp_path / "md" / "summary.json").read_text())
    assert set(summary["datasets"]) == {"tiny", "three_cams"}
    stats = read_stats(tmp_path / "md")
    assert "three_cams/D/loss_cls" in stats[-1] and "tiny/G/loss_rec" in stats[-1]
    from PIL import Image

    with Image.open(tmp_path / "md" / "samples" / "000002.png") as im:  # (4 + 4) rows; input + 7 domains
        assert im.size == (8 * 8, 8 * 16)


def test_face_setting_celeba_rafd(tmp_path):
    from reid_stargan.data.face_fixtures import write_celeba_fixture, write_rafd_fixture

    celeba = write_celeba_fixture(tmp_path / "celeba", num_images=24, size=32, seed=0)
    rafd = write_rafd_fixture(tmp_path / "rafd", per_expression=2, test_per_expression=1, size=32, seed=0)
    cfg = tiny_cfg(celeba, "data.name=celeba", "augment.celeba_num_test=4", "augment.center_crop=[28, 0]",
                   f"extra_data=[{{name: rafd, root: {rafd}}}]", "train.num_iters=2", "train.num_iters_decay=0")
    gen_path = train_stargan(cfg, tmp_path / "face", progress=False)
    G, info = load_generator(gen_path)
    assert info["c_dim"] == 5 + 8 + 2
    summary = json.loads((tmp_path / "face" / "summary.json").read_text())
    assert summary["datasets"]["celeba"]["label_type"] == "multi"
    assert summary["datasets"]["rafd"]["num_domains"] == 8


def test_cli_dry_run_and_configs(capsys):
    from pathlib import Path

    from reid_stargan.cli.train_stargan import main

    configs = sorted((Path(__file__).resolve().parents[1] / "configs" / "stargan").glob("[!_]*.yaml"))
    assert {c.stem for c in configs} >= {"market", "duke", "msmt17", "celeba", "rafd", "celeba_rafd", "market_duke",
                                         "synthetic", "synthetic_cpu"}
    for path in configs:
        cfg = load_config(StarGANConfig, path)
        cfg.validate()
    assert main(["--config", str(configs[0].parent / "market.yaml"), "--dry-run"]) is None
    out = capsys.readouterr().out
    assert "image_size:\n  - 256\n  - 128" in out or "image_size: [256, 128]" in out
    with pytest.raises(SystemExit, match="unknown config key 'gan.lambda_recc'"):
        main(["--config", str(configs[0].parent / "market.yaml"), "--set", "gan.lambda_recc=5", "--dry-run"])


def test_identity_warmup_trains_g_alone_then_the_paper_loop(tiny_set, tmp_path):
    """train.identity_warmup (off by default): G-only L1 steps first, D untouched, then the usual losses."""
    warm = tiny_cfg(tiny_set, "train.num_iters=32", "train.num_iters_decay=0", "train.identity_warmup=30",
                    "train.g_lr=2e-3", "log.checkpoint_every=30")
    train_stargan(warm, tmp_path / "w", progress=False, max_steps=30)
    stats = read_stats(tmp_path / "w")
    assert [r["step"] for r in stats] == list(range(1, 31))
    assert all("G/loss_identity" in r and "D/loss" not in r for r in stats)
    losses = [r["G/loss_identity"] for r in stats]
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5])  # it learns to reproduce its input
    state = torch_load(tmp_path / "w" / "checkpoints" / "last.pt")
    assert state["d_opt"]["state"] == {}  # D never stepped during the warm-up
    assert state["g_opt"]["state"]  # G did
    train_stargan(warm, tmp_path / "w", progress=False)
    assert any("D/loss" in r for r in read_stats(tmp_path / "w"))
    with pytest.raises(ValueError, match="identity_warmup"):
        train_stargan(tiny_cfg(tiny_set, "train.num_iters=4", "train.identity_warmup=4"), tmp_path / "x")


def test_linked_targets_train_and_a_bad_value_is_refused(tiny_set, tmp_path):
    cfg = tiny_cfg(tiny_set, "train.num_iters=4", "train.num_iters_decay=0", "train.targets=linked")
    train_stargan(cfg, tmp_path / "linked", progress=False)
    assert json.loads((tmp_path / "linked" / "summary.json").read_text())["finished"]
    with pytest.raises(ValueError, match="train.targets must be 'all' or 'linked'"):
        tiny_cfg(tiny_set, "train.targets=pairs").validate()
