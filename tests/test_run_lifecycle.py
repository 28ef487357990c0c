"""The run lifecycle both trainers share (utils/run.py): one resume rule, the modes registry, re-ID
resume overrides, last.pt as a model file, and generate_camstyle's own completion."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import test_reliability_train_reid as reliability
import test_reliability_train_stargan as gan_reliability
import torch

from reid_stargan.camstyle.naming import CamStyleRecord, has_generated_images, source_stem
from reid_stargan.config import config_to_dict, load_config
from reid_stargan.data.synthetic import make_synthetic
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.reid.checkpoint import load_reid_model
from reid_stargan.reid.config import ReidConfig
from reid_stargan.reid.modes import MODES
from reid_stargan.reid.trainer import FROZEN_KEYS, ResumeMismatchError, train_reid
from reid_stargan.utils.io import torch_load
from reid_stargan.utils.run import (
    ResumeConfigError,
    amp_dtype,
    flatten,
    ignored_differences,
    precision_name,
    resume_config,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "reid" / "synthetic_cpu_baseline.yaml"
SIZES = reliability.SIZES
FAST = [*reliability.FAST, "optim.epochs=2"]  # the reliability tests' tiny re-ID runs, two epochs
src = reliability.src  # their tiny synthetic set (a module-scoped fixture)
# StarGAN at toy size: the reliability tests' overrides at this file's image size and iterations.
TINY_GAN = [*gan_reliability.TINY, "gan.image_size=[64,32]", "train.num_iters=2", "train.batch_size=4",
            "runtime.threads=1", "log.eval_images=4", "log.sample_rows=2"]


def tiny_cfg(root: Path, *overrides: str) -> ReidConfig:
    return load_config(ReidConfig, CONFIG, [f"data.root={root}", *FAST, *overrides])


# ----------------------------------------------------------------------------- the resume rule
def test_resume_config_takes_named_overrides_and_refuses_frozen_ones(tmp_path):
    saved = config_to_dict(load_config(StarGANConfig, REPO / "configs/stargan/synthetic_cpu.yaml"))
    cfg, changes = resume_config(StarGANConfig, saved, None, ("gan.g_conv_dim",), tmp_path,
                                 ["train.g_lr=0.0007", "gan.lambda_rec=5"])
    assert cfg.train.g_lr == 0.0007 and cfg.gan.lambda_rec == 5
    assert changes == {"gan.lambda_rec": [saved["gan"]["lambda_rec"], 5], "train.g_lr": [saved["train"]["g_lr"], 0.0007]}
    with pytest.raises(ResumeConfigError, match=r"gan.g_conv_dim: checkpoint \d+ vs config 7\. gan.g_conv_dim "
                                                r"cannot change in a resumed run"):
        resume_config(StarGANConfig, saved, None, ("gan.g_conv_dim",), tmp_path, ["gan.g_conv_dim=7"])


def test_a_callers_config_is_not_taken_but_a_frozen_contradiction_is_refused(tmp_path):
    saved_cfg = load_config(StarGANConfig, REPO / "configs/stargan/synthetic_cpu.yaml")
    saved = config_to_dict(saved_cfg)
    given = load_config(StarGANConfig, REPO / "configs/stargan/synthetic_cpu.yaml", ["train.d_lr=0.5"])
    cfg, changes = resume_config(StarGANConfig, saved, given, ("gan.g_conv_dim",), tmp_path)
    assert cfg.train.d_lr == saved_cfg.train.d_lr and changes == {}  # not named as an override: not taken
    assert ignored_differences(cfg, given) == [f"train.d_lr=0.5 (run: {saved_cfg.train.d_lr!r})"]
    # A default value is no request to change the run; a set one that contradicts a frozen key is.
    defaults = load_config(StarGANConfig, None, [])
    resume_config(StarGANConfig, saved, defaults, ("gan.g_conv_dim",), tmp_path)
    other = load_config(StarGANConfig, REPO / "configs/stargan/synthetic_cpu.yaml", ["gan.g_conv_dim=7"])
    with pytest.raises(ValueError, match="gan.g_conv_dim: checkpoint"):
        resume_config(StarGANConfig, saved, other, ("gan.g_conv_dim",), tmp_path, error=ValueError)


def test_flatten_writes_dotted_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [2]}}, "e": None}) == {"a.b": 1, "a.c.d": [2], "e": None}


# ----------------------------------------------------------------------------- re-ID
def test_precision_says_when_a_cpu_has_no_bf16_kernels(monkeypatch):
    import reid_stargan.utils.run as run

    cpu = torch.device("cpu")
    monkeypatch.setattr(run, "bf16_supported", lambda device: False)  # an AVX2-only CPU
    assert amp_dtype(cpu, True, torch.float16) is None
    assert "no bf16 kernels" in precision_name(True, None) and precision_name(False, None) == "fp32"
    monkeypatch.setattr(run, "bf16_supported", lambda device: True)  # AVX512-BF16 / AMX
    assert amp_dtype(cpu, True, torch.float16) is torch.bfloat16 and amp_dtype(cpu, False, torch.float16) is None
    assert precision_name(True, torch.bfloat16) == "bfloat16 autocast"


def test_modes_registry_lists_the_three_modes():
    assert MODES.names() == ["baseline", "camstyle", "hhl"]
    with pytest.raises(KeyError, match="unknown train.mode 'ide'; valid: baseline, camstyle, hhl"):
        MODES.get("ide")


def test_reid_resume_takes_only_named_overrides_and_records_them(src, tmp_path):
    run = tmp_path / "r"
    assert train_reid(tiny_cfg(src), run, progress=False, stop_after_epochs=1) == {}
    with pytest.raises(ResumeMismatchError, match=r"sampler.num_ids: checkpoint 4 vs config 8"):
        train_reid(tiny_cfg(src), run, progress=False, overrides=["sampler.num_ids=8"])
    assert "sampler" in FROZEN_KEYS
    metrics = train_reid(tiny_cfg(src, "loss.triplet_weight=9"), run, progress=False,
                         overrides=["optim.epochs=3"])
    assert metrics["schedule"]["epochs"] == 3  # taken: named as an override
    saved = load_config(ReidConfig, run / "config.yaml")
    assert saved.optim.epochs == 3 and saved.loss.triplet_weight == 1.0  # the caller's 9 was not named: not taken
    record = json.loads((run / "config_changes.jsonl").read_text().splitlines()[0])
    assert record["at_step"] == 1 and record["changes"] == {"optim.epochs": [2, 3]}
    log = (run / "log.txt").read_text()
    assert "resume: optim.epochs: 2 -> 3" in log and "loss.triplet_weight=9" in log


def test_load_reid_model_reads_a_training_state(src, tmp_path):
    run = tmp_path / "half"
    train_reid(tiny_cfg(src), run, progress=False, stop_after_epochs=1)
    model, cfg = load_reid_model(run / "checkpoints" / "last.pt")
    state = torch_load(run / "checkpoints" / "last.pt")
    assert cfg.optim.epochs == 2 and not model.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, state["model"][name]), name
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert model(x).shape == (2, model.out_dim)


# ----------------------------------------------------------------------------- CamStyle names and completion
def test_naming_owns_the_fake_names(tmp_path):
    assert source_stem(CamStyleRecord("x/0001_c1s1_000001_00_fake_1to3.jpg", 1, 0, 2, "")) == "0001_c1s1_000001_00"
    assert source_stem(CamStyleRecord("x/a_fake_3.jpg", 1, 0, 2, "/data/0002_c2.jpg")) == "0002_c2"
    assert not has_generated_images(tmp_path / "missing")
    (tmp_path / "0001_c1s1_000001_00.jpg").write_bytes(b"")
    assert not has_generated_images(tmp_path)
    (tmp_path / "0001_c1s1_000001_00_fake_2.jpg").write_bytes(b"")
    assert has_generated_images(tmp_path)


def test_generate_returns_at_once_on_a_complete_folder(tmp_path, monkeypatch):
    from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle
    from reid_stargan.data.datasets import build_dataset
    from reid_stargan.gan.trainer import train_stargan

    data = tmp_path / "syn"
    make_synthetic(data, seed=0, **SIZES)
    gcfg = load_config(StarGANConfig, REPO / "configs/stargan/synthetic_cpu.yaml", [f"data.root={data}", *TINY_GAN])
    generator = train_stargan(gcfg, tmp_path / "gan", progress=False)
    ds = build_dataset("market_layout", root=str(data))
    out = tmp_path / "cams"
    options = GenerateOptions(progress=False, workers=1)
    first = generate_camstyle(generator, ds.train, out, ds.num_cameras, options)
    assert first["complete"] is True and "already_complete" not in first
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    import reid_stargan.camstyle.generate as gen

    monkeypatch.setattr(gen, "_generate_locked", lambda *a, **k: pytest.fail("a complete folder was regenerated"))
    again = generate_camstyle(generator, ds.train, out, ds.num_cameras, options)
    assert again["already_complete"] is True and again["images_out"] == first["images_out"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    os.remove(out / json.loads((out / "manifest.jsonl").read_text().splitlines()[0])["output"])
    monkeypatch.undo()
    third = generate_camstyle(generator, ds.train, out, ds.num_cameras, options)  # incomplete: finishes it
    assert third["images_out"] == 1 and third["complete"] is True
    import yaml

    assert yaml.safe_load((out / "config.yaml").read_text())["generate"]["naming"] == "camstyle"


def test_generate_cli_resolves_config_then_flags_then_set(tmp_path, capsys):
    import yaml

    from reid_stargan.cli.generate_camstyle import main

    cfg = tmp_path / "job.yaml"
    cfg.write_text("data: {name: market_layout, root: /nowhere}\ngenerate: {keep_detail: true, batch_size: 4, "
                   "targets_per_image: 2}\nreid_baseline: {config: x.yaml}\n")  # other sections are ignored
    assert main(["--checkpoint", "g.pt", "--config", str(cfg), "--batch-size", "8", "--set",
                 "generate.targets_per_image=3", "--dry-run"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["data"]["root"] == "/nowhere"
    g = shown["generate"]
    assert g["keep_detail"] is True and g["batch_size"] == 8 and g["targets_per_image"] == 3 and g["naming"] == "camstyle"
    assert main(["--checkpoint", "g.pt", "--data-root", str(tmp_path), "--no-judge", "--dry-run"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["data"]["root"] == str(tmp_path) and shown["generate"]["judge"] is False


def test_model_file_stores_an_absolute_data_root(src, tmp_path, monkeypatch):
    """evaluate_reid --checkpoint must find the test split from any working directory."""
    monkeypatch.chdir(src.parent)
    run = tmp_path / "rel"
    train_reid(load_config(ReidConfig, CONFIG, [f"data.root={src.name}", *FAST, "optim.epochs=1"]), run,
               progress=False)
    _, cfg = load_reid_model(run / "checkpoints" / "model.pt")
    assert Path(cfg.data.root).is_absolute() and Path(cfg.data.root) == src


def test_stargan_tensorboard_has_sample_grids_and_learning_rates(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from reid_stargan.gan.trainer import train_stargan

    data = tmp_path / "syn"
    make_synthetic(data, seed=0, **SIZES)
    cfg = load_config(StarGANConfig, REPO / "configs/stargan/synthetic_cpu.yaml",
                      [f"data.root={data}", *TINY_GAN, "log.tensorboard=true", "log.sample_every=1"])
    train_stargan(cfg, tmp_path / "gan", progress=False)
    events = EventAccumulator(str(tmp_path / "gan" / "tb"))
    events.Reload()
    assert "samples" in events.Tags()["images"] and len(events.Images("samples")) == 2
    assert {"lr/g", "lr/d", "D/loss"} <= set(events.Tags()["scalars"])
