"""Export (tools/export_reid.py): TorchScript and ONNX files give PyTorch's features on real images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from reid_stargan.cli.export_reid import cli as export_cli
from reid_stargan.config import load_config
from reid_stargan.eval.export import (
    ReidInference,
    export_onnx,
    export_torchscript,
    load_exported,
    max_export_difference,
)
from reid_stargan.reid.checkpoint import load_reid_model, save_inference_model
from reid_stargan.reid.config import ReidConfig

HEIGHT, WIDTH = 128, 64
ATOL = 1e-4


def make_checkpoint(path: Path, backbone: str, data_root: str = "data/none", height: int = HEIGHT,
                    width: int = WIDTH, seed: int = 0) -> Path:
    """A model.pt as train_reid writes it, with random weights and non-trivial BN-neck statistics."""
    cfg = load_config(ReidConfig, None, [f"model.backbone={backbone}", "model.pretrained=none",
                                         f"input.height={height}", f"input.width={width}", f"data.root={data_root}"])
    torch.manual_seed(seed)
    from reid_stargan.reid.checkpoint import model_from_config

    model = model_from_config(cfg, num_classes=7)
    with torch.no_grad():  # running statistics away from (0, 1), so the neck is not an identity
        model.neck.running_mean.uniform_(-0.5, 0.5)
        model.neck.running_var.uniform_(0.5, 2.0)
    save_inference_model(path, model, cfg, num_classes=7)
    return path


def real_images(tmp_path: Path, count: int) -> torch.Tensor:
    """(count, 3, H, W) ImageNet-normalised person crops: CUHK03 (Market layout) when present, else
    images with texture made here; loaded the way extract_features loads them."""
    from reid_stargan.eval.features import _RecordImages

    query = SHARED_DATA / "cuhk03_market" / "query"
    if query.is_dir():
        paths = sorted(query.iterdir())[:count]
    else:
        from PIL import Image

        rng = np.random.default_rng(0)
        (tmp_path / "imgs").mkdir(exist_ok=True)
        paths = []
        for i in range(count):
            pixels = rng.integers(0, 256, (160, 80, 3), dtype=np.uint8)
            pixels[:80] //= 2  # a darker upper half: not pure noise
            paths.append(tmp_path / "imgs" / f"{i:04d}_c1s1_000000_00.png")
            Image.fromarray(pixels).save(paths[-1])
    ds = _RecordImages([type("R", (), {"path": str(p)})() for p in paths], (HEIGHT, WIDTH))
    return torch.stack([ds[i][1] for i in range(len(paths))])


@pytest.fixture(scope="module", params=["small", "efficientnet_lite0"])
def model_file(request, tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp(request.param) / "model.pt", request.param)


def test_onnx_matches_pytorch_at_two_batch_sizes(model_file, tmp_path):
    pytest.importorskip("onnxruntime")
    model, _ = load_reid_model(model_file)
    out = export_onnx(model, tmp_path / "m.onnx", HEIGHT, WIDTH)
    images = real_images(tmp_path, 5)
    run = load_exported(out, "onnx")
    with torch.no_grad():
        expected = model(images).numpy()  # (5, D): the model's own eval forward
    for batch in (1, 5):  # exported at batch 2: both prove the batch axis is dynamic
        got = run(images[:batch].numpy())
        assert got.shape == (batch, model.out_dim)
        assert np.abs(got - expected[:batch]).max() < ATOL
    assert np.allclose(np.linalg.norm(run(images.numpy()), axis=1), 1.0, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_is_scripted_and_matches_pytorch_at_any_size(model_file, tmp_path):
    model, _ = load_reid_model(model_file)
    out = export_torchscript(model, tmp_path / "m.pt", HEIGHT, WIDTH)
    module = torch.jit.load(str(out))
    assert isinstance(module, torch.jit.ScriptModule)
    images = real_images(tmp_path, 4)
    with torch.no_grad():
        for batch in (1, 4):
            assert (module(images[:batch]) - model(images[:batch])).abs().max().item() < ATOL
        # Scripted, not traced: another input size runs the size-dependent code again ("same" padding).
        other = torch.nn.functional.interpolate(images, size=(HEIGHT + 30, WIDTH + 6), mode="bilinear")
        assert (module(other) - model(other)).abs().max().item() < ATOL
    extra = {"reid_stargan.json": ""}
    torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["reid_stargan.json"])["height"] == HEIGHT


def test_export_leaves_the_model_as_it_was(model_file, tmp_path):
    model, _ = load_reid_model(model_file)
    model.train()
    export_torchscript(model, tmp_path / "m.pt")
    assert model.training and model.backbone.training
    assert ReidInference(model).training is False


def test_cli_exports_and_checks_both_formats(model_file, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    assert export_cli(["--checkpoint", str(model_file), "--format", "onnx", "--out", str(tmp_path / "a.onnx")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["max_abs_diff"] < ATOL and (result["height"], result["width"]) == (HEIGHT, WIDTH)
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "a.onnx")).metadata_props}
    assert json.loads(meta["reid_stargan.json"])["mean"] == [0.485, 0.456, 0.406]
    # Default --out: beside the checkpoint. The run folder itself is accepted too.
    assert export_cli(["--checkpoint", str(model_file), "--format", "torchscript", "--height", "96"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["height"] == 96
    scripted = model_file.parent / "model.torchscript.pt"
    assert scripted.is_file()
    # TorchScript takes any input size: the 96-high export runs 128-high images exactly too.
    assert max_export_difference(load_reid_model(model_file)[0], scripted, "torchscript",
                                 real_images(tmp_path, 2)) < ATOL


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    assert export_cli(["--checkpoint", str(tmp_path / "missing.pt"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: checkpoint not found") and "\n" not in err
    bad = tmp_path / "model.pt"
    bad.write_text("not a checkpoint")
    assert export_cli(["--checkpoint", str(bad), "--format", "torchscript"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    small = make_checkpoint(tmp_path / "small.pt", "small")
    assert export_cli(["--checkpoint", str(small), "--format", "onnx", "--height", "2"]) == 2
    assert "too small" in capsys.readouterr().err
