import random

import numpy as np
import pytest
import torch

from reid_stargan.registry import Registry
from reid_stargan.utils.io import (
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    file_sha256,
    torch_load,
)
from reid_stargan.utils.rundir import RunLogger, make_run_dir, read_stats
from reid_stargan.utils.seed import capture_rng_state, restore_rng_state, seed_everything


def test_registry_lists_valid_names_on_a_typo():
    reg = Registry("backbone")

    @reg.register("resnet50")
    def resnet50():
        return "r50"

    assert reg.get("resnet50")() == "r50"
    with pytest.raises(KeyError, match="unknown backbone 'resnet5'; valid: resnet50"):
        reg.get("resnet5")
    with pytest.raises(KeyError, match="twice"):
        reg.register("resnet50")(lambda: None)


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out" / "file.bin"
    atomic_write_bytes(target, b"first")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"second")
    monkeypatch.undo()
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_torch_checkpoint_round_trip_is_weights_only(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3), "step": 5, "nested": {"lr": [1e-4, 5e-5]}}
    path = atomic_torch_save(state, tmp_path / "ckpt.pt")
    loaded = torch_load(path)
    assert torch.equal(loaded["w"], state["w"]) and loaded["step"] == 5
    assert len(file_sha256(path)) == 64

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Exception):  # noqa: B017 - the unpickler refuses arbitrary callables
        torch_load(tmp_path / "evil.pt")


def test_run_dirs_are_numbered_and_never_reused(tmp_path):
    a = make_run_dir(tmp_path, "stargan-market")
    b = make_run_dir(tmp_path, "stargan market")
    assert a.name == "00000-stargan-market"
    assert b.name == "00001-stargan-market"
    assert (a / "checkpoints").is_dir() and (a / "samples").is_dir()
    log = RunLogger(a, echo=False)
    log.info("hello")
    log.stats({"step": 1, "loss": 0.5})
    assert "hello" in (a / "log.txt").read_text()
    assert read_stats(a)[0]["loss"] == 0.5
    atomic_write_json(a / "x.json", {"k": 1})
    silent = RunLogger(b, enabled=False)
    silent.info("nothing")
    assert not (b / "log.txt").exists()


def test_rng_state_capture_restores_every_stream(tmp_path):
    seed_everything(3)
    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    atomic_torch_save(state, tmp_path / "rng.pt")
    seed_everything(99)
    restore_rng_state(torch_load(tmp_path / "rng.pt"))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
