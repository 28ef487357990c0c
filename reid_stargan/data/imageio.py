"""Image reading that reports bad files instead of crashing hours into a run."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class BadImageError(OSError):
    """An image file that cannot be decoded completely."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot read image {path}: {reason}")
        self.path = path
        self.reason = reason


def _to_8bit(img: Image.Image, path: str | os.PathLike) -> Image.Image:
    """16-bit greyscale (`I;16*`, or `I` from a 16-bit PNG) scaled to 8 bits; PIL's own convert clips
    every value above 255 to white. Other wide modes (32-bit int, float) are refused, not guessed."""
    if img.mode.startswith("I;16") or (img.mode == "I" and img.format == "PNG"):
        values = np.asarray(img, dtype=np.uint32)  # (H, W), 0..65535
        return Image.fromarray(((values + 128) // 257).clip(0, 255).astype(np.uint8), mode="L")
    if img.mode in ("I", "F"):
        raise BadImageError(str(path), f"{img.mode} ({'32-bit integer' if img.mode == 'I' else 'float'}) pixels "
                            "are not supported; save the image with 8 or 16 bits per channel")
    return img


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode the whole file (so truncation is caught here, not later) and return an RGB image.

    16-bit images come out scaled to 8 bits (not clipped to white).
    """
    try:
        with Image.open(path) as img:
            img.load()
            return _to_8bit(img, path).convert("RGB")
    except BadImageError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise BadImageError(str(path), f"{type(exc).__name__}: {exc}") from exc


def _check(path: str) -> str | None:
    try:
        load_rgb(path)
        return None
    except BadImageError as exc:
        return exc.reason


def scan_images(paths: Sequence[str], workers: int = 4) -> tuple[list[str], list[tuple[str, str]]]:
    """Decode every image once. Returns (readable paths, [(bad path, reason), ...]) in input order."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        reasons = list(pool.map(_check, paths, chunksize=64))
    good = [p for p, r in zip(paths, reasons) if r is None]
    bad = [(p, r) for p, r in zip(paths, reasons) if r is not None]
    return good, bad


def list_images(folder: str | os.PathLike) -> list[str]:
    """Image file names in `folder` (not recursive), sorted so every run sees the same order."""
    return sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES))


def format_bad(bad: Iterable[tuple[str, str]], limit: int = 5) -> str:
    bad = list(bad)
    shown = "; ".join(f"{os.path.basename(p)} ({r})" for p, r in bad[:limit])
    more = f" and {len(bad) - limit} more" if len(bad) > limit else ""
    return f"{len(bad)} unreadable image(s) skipped: {shown}{more}"
