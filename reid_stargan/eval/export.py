"""Deployable re-ID models: TorchScript and ONNX files of a `ReidModel`'s evaluation forward.

Both formats hold the same function: ImageNet-normalised images (B, 3, H, W) float32 -> (B, D)
L2-normalised float32 features, exactly what ``model.eval()(images)`` returns. Example::

    from reid_stargan.reid.checkpoint import load_reid_model
    from reid_stargan.eval.export import export_onnx, export_torchscript
    model, cfg = load_reid_model("runs/00003-reid/checkpoints/model.pt")
    export_torchscript(model, "model.torchscript.pt")
    export_onnx(model, "model.onnx", height=cfg.input.height, width=cfg.input.width)

TorchScript uses ``torch.jit.script``, not ``trace``: scripting keeps the control flow that depends on
the input size (EfficientNet-Lite0's TF "same" padding is computed from H and W at run time), so one
file serves any batch size and any input size. ``ReidModel.forward`` itself does not script (its shape
assert formats ``tuple(x.shape)`` in an f-string, and it returns a tuple in training mode), so
:class:`ReidInference` scripts the evaluation branch alone, on the same modules and weights.

ONNX goes through PyTorch's TorchScript-based exporter (``dynamo=False``): it needs only ``onnx`` (no
``onnxscript``) and exports these backbones exactly (differences ~1e-7 against PyTorch). The batch
axis is dynamic; H and W are fixed at export time (``height`` / ``width``). ``onnx`` and
``onnxruntime`` come with the ``export`` extra (``pip install -e '.[export]'``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_stargan.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from reid_stargan.utils.io import atomic_write_bytes

FORMATS = ("onnx", "torchscript")
INPUT_NAME, OUTPUT_NAME = "images", "features"
DEFAULT_OPSET = 17
METADATA_FILE = "reid_stargan.json"  # TorchScript extra file / ONNX metadata key


class ReidInference(nn.Module):
    """The evaluation forward of a `ReidModel` (backbone -> GAP -> [embedding -> neck] -> L2 norm).

    Holds a CPU copy of the model's modules in eval mode, so exporting never moves the caller's model
    or changes its mode.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        for name in ("backbone", "embedding", "neck"):
            if not hasattr(model, name):
                raise TypeError(f"expected a ReidModel (with .backbone, .embedding, .neck), got {type(model).__name__}")
            setattr(self, name, copy.deepcopy(getattr(model, name)).cpu())
        self.out_dim = int(getattr(model, "out_dim", 0))
        # The test feature the model was trained to give: the head's (default) or pool5 (the IDE recipes).
        self.use_pool5 = getattr(model, "test_feature", "head") == "pool5"
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool5 = self.backbone(x).mean(dim=(2, 3))  # (B, C, h, w) -> (B, C)
        if self.use_pool5:
            return F.normalize(pool5.float(), dim=1)  # (B, C)
        return F.normalize(self.neck(self.embedding(pool5)).float(), dim=1)  # (B, D)


def export_metadata(model: nn.Module, height: int, width: int, **extra) -> dict:
    """What a deployment needs to feed the file: input layout, size, normalisation, output size."""
    return {"format": "reid_stargan.export/1", "input": INPUT_NAME, "output": OUTPUT_NAME,
            "layout": "NCHW float32, RGB", "height": int(height), "width": int(width),
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "feature_dim": int(getattr(model, "out_dim", 0)), "l2_normalized": True, **extra}


@contextlib.contextmanager
def _quiet_deprecations():
    """torch 2.14 marks torch.jit and the TorchScript-based ONNX exporter deprecated (FutureWarning /
    DeprecationWarning on every call); both are what this module means to use, so the notice is muted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        yield


def export_torchscript(model: nn.Module, path: str | os.PathLike, height: int = 256, width: int = 128,
                       metadata: dict | None = None) -> Path:
    """Script `model`'s evaluation forward to `path` (written atomically); returns the path.

    Load it with ``torch.jit.load(path)``; the metadata JSON is the extra file ``reid_stargan.json``.
    """
    buffer = io.BytesIO()
    with _quiet_deprecations():
        scripted = torch.jit.script(ReidInference(model))
        meta = metadata if metadata is not None else export_metadata(model, height, width)
        torch.jit.save(scripted, buffer, _extra_files={METADATA_FILE: json.dumps(meta)})
    return atomic_write_bytes(path, buffer.getvalue())


def export_onnx(model: nn.Module, path: str | os.PathLike, height: int = 256, width: int = 128,
                opset: int = DEFAULT_OPSET, metadata: dict | None = None) -> Path:
    """ONNX file of `model`'s evaluation forward, dynamic batch axis, fixed (height, width).

    Checked with ``onnx.checker``; the metadata JSON is stored under the key ``reid_stargan.json``.
    """
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("ONNX export needs the packages onnx and onnxruntime: "
                          "pip install -e '.[export]'") from exc

    net = ReidInference(model)
    example = torch.zeros(2, 3, int(height), int(width))
    meta = metadata if metadata is not None else export_metadata(model, height, width)
    buffer = io.BytesIO()
    with _quiet_deprecations():  # dynamo=True would add onnxscript as a dependency; this one is exact here
        torch.onnx.export(net, (example,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=opset, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_FILE, json.dumps(meta)
    onnx.checker.check_model(proto)
    return atomic_write_bytes(path, proto.SerializeToString())


def export_model(model: nn.Module, path: str | os.PathLike, fmt: str, height: int, width: int,
                 metadata: dict | None = None) -> Path:
    """`export_onnx` or `export_torchscript` by name (one of `FORMATS`)."""
    if fmt == "onnx":
        return export_onnx(model, path, height, width, metadata=metadata)
    if fmt == "torchscript":
        return export_torchscript(model, path, height, width, metadata=metadata)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def load_exported(path: str | os.PathLike, fmt: str):
    """A callable numpy (B, 3, H, W) float32 -> numpy (B, D) for an exported file (onnxruntime / jit)."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda images: session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(images, np.float32)})[0]
    if fmt == "torchscript":
        with _quiet_deprecations():
            module = torch.jit.load(str(path), map_location="cpu").eval()
        return torch.no_grad()(
            lambda images: module(torch.from_numpy(np.ascontiguousarray(images, np.float32))).numpy())
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


@torch.no_grad()
def max_export_difference(model: nn.Module, path: str | os.PathLike, fmt: str, images) -> float:
    """Largest |exported - PyTorch| feature difference over `images` ((B, 3, H, W), ImageNet-normalised)."""
    images = torch.as_tensor(np.asarray(images, dtype=np.float32))
    expected = ReidInference(model)(images).numpy()  # (B, D)
    got = load_exported(path, fmt)(images.numpy())
    if got.shape != expected.shape:
        raise ValueError(f"{path}: exported model returns shape {got.shape}, PyTorch {expected.shape}")
    return float(np.abs(got - expected).max())
