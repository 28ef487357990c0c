"""Inference files of StarGAN: this toolkit's `generator.pt` / `discriminator.pt`, and the official
yunjey/stargan and HHL stargan4reid `*-G.ckpt` / `*-D.ckpt` state dicts.

A toolkit file is `{"format": "reid_stargan", "version": 1, "kind": "generator"|"discriminator",
"state_dict": ..., "meta": {c_dim, image_size, conv_dim, repeat_num, domain_names, layout, step}}`.
An official file is a bare state dict; c_dim, conv_dim and repeat_num are read from the weight
shapes (G: `main.0.weight` is (conv_dim, 3 + c_dim, 7, 7); D: `conv2.weight` is (c_dim, C, kh, kw)
so the image size is (kh, kw) * 2**repeat_num). Their instance-norm running statistics are dropped:
the official test code never switches G to eval mode, so those buffers are never used.

Example::

    G, info = load_generator("runs/00001-stargan-market/checkpoints/generator.pt")
    fake = translate(G, images, torch.eye(info["c_dim"])[targets])
    D_and_info = load_discriminator("models/200000-G.ckpt")  # reads models/200000-D.ckpt, or None
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from reid_stargan.gan.models import Discriminator, Generator, set_inference
from reid_stargan.utils.io import atomic_torch_save, torch_load

FORMAT = "reid_stargan"
VERSION = 1
_RUNNING = ("running_mean", "running_var", "num_batches_tracked")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read as a StarGAN generator/discriminator, or does not fit."""


def save_inference(path: str | os.PathLike, model: torch.nn.Module, kind: str, meta: dict) -> Path:
    """Write a G-only or D-only file atomically (weights on CPU, float32)."""
    state = {k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    return atomic_torch_save({"format": FORMAT, "version": VERSION, "kind": kind, "state_dict": state,
                              "meta": meta}, path)


def _clean_official(state: dict) -> dict:
    """Strip a DataParallel `module.` prefix and the unused instance-norm running statistics."""
    return {key.removeprefix("module."): value for key, value in state.items()
            if key.rsplit(".", 1)[-1] not in _RUNNING}


def _is_toolkit(obj: object) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def generator_geometry(state: dict) -> dict:
    """conv_dim, c_dim, repeat_num of a generator state dict (official key names)."""
    if "main.0.weight" not in state:
        raise CheckpointError("not a StarGAN generator state dict (no 'main.0.weight'); keys: "
                              + ", ".join(list(state)[:6]))
    w = state["main.0.weight"]  # (conv_dim, 3 + c_dim, 7, 7)
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"main\.(\d+)\.main\.0\.weight$", k))}
    return {"conv_dim": int(w.shape[0]), "c_dim": int(w.shape[1]) - 3, "repeat_num": len(blocks)}


def discriminator_geometry(state: dict) -> dict:
    """conv_dim, c_dim, repeat_num, image_size (H, W) of a discriminator state dict."""
    if "conv2.weight" not in state or "main.0.weight" not in state:
        raise CheckpointError("not a StarGAN discriminator state dict (no 'conv2.weight' / 'main.0.weight')")
    repeat = sum(1 for k in state if re.match(r"main\.\d+\.weight$", k))  # one strided conv per repeat
    c_dim, _, kh, kw = state["conv2.weight"].shape
    return {"conv_dim": int(state["main.0.weight"].shape[0]), "c_dim": int(c_dim), "repeat_num": repeat,
            "image_size": (int(kh) << repeat, int(kw) << repeat)}


def _load_state(model: torch.nn.Module, state: dict, path: str | os.PathLike) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit the network (missing {missing[:4]}, "
                              f"unexpected {unexpected[:4]})")


def _toolkit_info(meta: dict, net: str) -> dict:
    """info dict of this toolkit's G (`net="g"`) or D (`"d"`) file from its meta block."""
    return {"format": FORMAT, "c_dim": meta["c_dim"] if net == "g" else meta["d_c_dim"],
            "image_size": tuple(meta["image_size"]), "domain_names": meta.get("domain_names"),
            "conv_dim": meta[f"{net}_conv_dim"], "repeat_num": meta[f"{net}_repeat_num"],
            "layout": meta.get("layout"), "step": meta.get("step")}


def _official_d_path(path: Path) -> Path | None:
    for g_suffix, d_suffix in (("-G.ckpt", "-D.ckpt"), ("_G.pth", "_D.pth")):
        if path.name.endswith(g_suffix):
            return path.with_name(path.name.removesuffix(g_suffix) + d_suffix)
    return None


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu",
                   image_size: tuple[int, int] | None = None) -> tuple[Generator, dict]:
    """Load a generator for inference -> (G, info).

    `path` is this toolkit's `generator.pt` (or `last.pt`), or an official `*-G.ckpt`. info holds
    c_dim, image_size (H, W), domain_names (None for official files), conv_dim, repeat_num, format,
    layout (the label layout dict, toolkit files only) and step. For official files image_size comes
    from the sibling `*-D.ckpt` when present, else from `image_size` (else None).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator checkpoint not found: {path}")
    obj = torch_load(path)
    if _is_toolkit(obj) or (isinstance(obj, dict) and "G" in obj and "meta" in obj):
        state = obj["state_dict"] if "state_dict" in obj else obj["G"]
        if obj.get("kind", "generator") != "generator":
            raise CheckpointError(f"{path} holds a {obj['kind']}, not a generator")
        info = _toolkit_info(obj["meta"], "g")
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = _clean_official(obj)
        geo = generator_geometry(state)
        size = tuple(image_size) if image_size else None
        if size is None and (d_path := _official_d_path(path)) is not None and d_path.is_file():
            size = discriminator_geometry(_clean_official(torch_load(d_path)))["image_size"]
        info = {"format": "official", **geo, "image_size": size, "domain_names": None, "layout": None,
                "step": _step_from_name(path)}
    else:
        raise CheckpointError(f"{path}: neither a reid_stargan generator file nor an official StarGAN state dict")
    geo = generator_geometry(state)
    if geo["c_dim"] != info["c_dim"]:
        raise CheckpointError(f"{path}: meta says c_dim={info['c_dim']} but the weights have c_dim={geo['c_dim']}")
    G = Generator(info["conv_dim"], info["c_dim"], info["repeat_num"])
    _load_state(G, state, path)
    return set_inference(G.to(device)), info


def load_discriminator(path: str | os.PathLike, device: str | torch.device = "cpu"
                       ) -> tuple[Discriminator, dict] | None:
    """The discriminator that belongs to a checkpoint -> (D, info), or None when there is none.

    Accepts a D file itself, this toolkit's `generator.pt` (reads `discriminator.pt` beside it),
    `last.pt`, or an official `*-G.ckpt` (reads the sibling `*-D.ckpt`).
    """
    path = Path(path)
    if path.name == "generator.pt":
        path = path.with_name("discriminator.pt")
    elif (d_path := _official_d_path(path)) is not None:
        path = d_path
    if not path.is_file():
        return None
    obj = torch_load(path)
    if _is_toolkit(obj) or (isinstance(obj, dict) and "D" in obj and "meta" in obj):
        if obj.get("kind", "discriminator") != "discriminator":
            return None
        state = obj["state_dict"] if "state_dict" in obj else obj["D"]
        info = _toolkit_info(obj["meta"], "d")
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = _clean_official(obj)
        info = {"format": "official", **discriminator_geometry(state), "domain_names": None, "layout": None,
                "step": _step_from_name(path)}
    else:
        raise CheckpointError(f"{path}: not a StarGAN discriminator file")
    D = Discriminator(info["image_size"], info["conv_dim"], info["c_dim"], info["repeat_num"])
    _load_state(D, state, path)
    return set_inference(D.to(device)), info


def check_c_dim(info: dict, expected: int, what: str) -> None:
    """Refuse a checkpoint whose label size differs from `expected` (name both numbers)."""
    if info["c_dim"] != expected:
        raise CheckpointError(f"checkpoint has c_dim={info['c_dim']} but {what} has {expected} domains")


def _step_from_name(path: Path) -> int | None:
    m = re.match(r"^(\d+)[-_][GD]\.", path.name)
    return int(m.group(1)) if m else None
