"""Image preprocessing shared by every stage (torchvision's references keep theirs in one presets.py):

* `load_resized`: decode (checked, `imageio.load_rgb`) and bilinear-resize to (H, W);
* `to_gan_range` / `from_gan_range`: uint8 <-> StarGAN's [-1, 1] floats;
* `imagenet_tensor` and `reid_eval_tensor`: the re-ID normalisation, the one transform that
  training (`reid.data`, before its augmentation) and feature extraction (`eval.features`) share,
  so train and test normalisation cannot drift;
* `drop_unreadable`: decode every image once and keep the readable ones, reporting through the
  caller's log.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from reid_stargan.data.imageio import format_bad, load_rgb, scan_images

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_resized(path: str | os.PathLike, size_hw: tuple[int, int] | None) -> Image.Image:
    """RGB image of `path`, resized (bilinear) to `size_hw` = (H, W) unless it has that size (or None)."""
    return resize(load_rgb(path), size_hw)


def resize(img: Image.Image, size_hw: tuple[int, int] | None) -> Image.Image:
    if size_hw is None or img.size == (size_hw[1], size_hw[0]):
        return img
    return img.resize((size_hw[1], size_hw[0]), Image.BILINEAR)


def to_gan_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float in [-1, 1], StarGAN's input scaling (a copy)."""
    return images.float().div_(127.5).sub_(1.0)


def from_gan_range(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8, rounded to nearest (values outside are clipped)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)


def imagenet_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> ImageNet-normalised float (3, H, W)."""
    arr = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)  # (3, H, W)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (arr - mean) / std


def reid_eval_tensor(path: str | os.PathLike, size_hw: tuple[int, int]) -> torch.Tensor:
    """A re-ID model's test input: resized to (H, W), ImageNet-normalised, (3, H, W)."""
    return imagenet_tensor(load_resized(path, size_hw))


def drop_unreadable(records: list, log: Callable[[str], None] = print, what: str = "images",
                    workers: int = 4) -> tuple[list, int]:
    """Decode every image of `records` (anything with a `.path`, or plain paths) once; return the
    readable ones and how many were skipped (`log` names the first few)."""
    paths = [getattr(r, "path", r) for r in records]
    good, bad = scan_images(paths, workers=workers)
    if bad:
        log(f"{what}: {format_bad(bad)}")
        good_set = set(good)
        records = [r for r, p in zip(records, paths) if p in good_set]
    return records, len(bad)
