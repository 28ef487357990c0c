"""Training images and their augmentation: resize or random-sized crop, flip, brightness / contrast
jitter, pad-and-crop, random erasing.

Every augmentation draw comes from a generator seeded by the sample's own key (run seed, epoch,
iteration, slot in the batch), not from a global stream. So a batch's pixels do not depend on the
number of loader workers or on where a run was resumed: resume is exact.

The sampler hands the loader `Sample`s; the loader returns (images (B, 3, H, W), labels (B,),
generated (B,) bool, labelled (B,) bool)::

    loader = make_train_loader(batches, InputConfig(height=64, width=32), num_workers=2)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch.utils.data import DataLoader, Dataset

from reid_stargan.data.imageio import load_rgb
from reid_stargan.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, imagenet_tensor, resize
from reid_stargan.data.records import Record
from reid_stargan.reid.config import InputConfig

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Sample", "TrainImages", "augment", "check_records",
           "jitter_light", "make_train_loader", "random_erase", "sample_seed", "sized_rect_crop", "to_tensor"]


class Sample(NamedTuple):
    """One slot of a training batch."""

    path: str
    label: int  # class index for the losses (contiguous; pseudo-identities for HHL target images)
    generated: bool  # a CamStyle image rather than a real one
    labelled: bool  # its label is a training identity (False: an HHL target image's pseudo-identity)
    aug_seed: int  # seeds this slot's augmentation


def sample_seed(seed: int, epoch: int, iteration: int, slot: int, rank: int = 0) -> int:
    """A 63-bit seed for one batch slot, different for every (seed, rank, epoch, iteration, slot)."""
    ss = np.random.SeedSequence([seed, rank, epoch, iteration, slot])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


to_tensor = imagenet_tensor  # the name the tests and tools know


def augment(img: Image.Image, cfg: InputConfig, rng: np.random.Generator) -> torch.Tensor:
    """The training transform: resize (H, W) (or `sized_rect_crop`), flip, brightness / contrast jitter,
    zero-pad + random crop, normalise, random erasing."""
    size = (cfg.height, cfg.width)
    img = sized_rect_crop(img, size, rng) if cfg.sized_rect_crop else resize(img, size)
    if rng.random() < cfg.flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    if cfg.color_jitter > 0:
        img = jitter_light(img, cfg.color_jitter, rng)
    x = to_tensor(img)  # (3, H, W)
    if cfg.pad > 0:
        padded = torch.nn.functional.pad(x, (cfg.pad,) * 4)  # zero = the mean colour after normalising
        top, left = rng.integers(0, 2 * cfg.pad + 1, size=2)
        x = padded[:, top:top + cfg.height, left:left + cfg.width]
    if rng.random() < cfg.erasing:
        x = random_erase(x, rng)
    return x.contiguous()


def jitter_light(img: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    """What a camera does to the light, never to the clothes' hue: brightness and contrast scaled by
    factors from [1 - strength, 1 + strength] (PIL's ImageEnhance, as torchvision's ColorJitter), then
    a white-balance cast: each channel's gain from [1 - strength / 2, 1 + strength / 2]."""
    brightness, contrast = rng.uniform(1 - strength, 1 + strength, size=2)
    gains = rng.uniform(1 - strength / 2, 1 + strength / 2, size=3)
    img = ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(float(brightness))).enhance(float(contrast))
    cast = np.asarray(img, dtype=np.float32) * gains.astype(np.float32)
    return Image.fromarray(np.clip(cast + 0.5, 0, 255).astype(np.uint8))


def sized_rect_crop(img: Image.Image, size_hw: tuple[int, int], rng: np.random.Generator,
                    area: tuple[float, float] = (0.64, 1.0), aspect: tuple[float, float] = (2.0, 3.0),
                    attempts: int = 10) -> Image.Image:
    """open-reid's RandomSizedRectCrop (CamStyle / HHL): a crop of `area` x the image's area with
    aspect h / w in `aspect`, placed at random, resized (bilinear) to `size_hw`; a plain resize when
    `attempts` draws all fall outside the image."""
    w0, h0 = img.size
    for _ in range(attempts):
        target, ratio = rng.uniform(*area) * w0 * h0, rng.uniform(*aspect)
        h, w = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
        if w <= w0 and h <= h0:
            left, top = int(rng.integers(0, w0 - w + 1)), int(rng.integers(0, h0 - h + 1))
            return resize(img.crop((left, top, left + w, top + h)), size_hw)
    return resize(img, size_hw)


def random_erase(x: torch.Tensor, rng: np.random.Generator, area: tuple[float, float] = (0.02, 0.4),
                 min_ratio: float = 0.3, attempts: int = 100) -> torch.Tensor:
    """Zhong et al. 2020 random erasing: a rectangle of 2-40% of the image, aspect 0.3-3.3, set to the mean."""
    _, h, w = x.shape
    for _ in range(attempts):
        target = rng.uniform(*area) * h * w
        ratio = np.exp(rng.uniform(np.log(min_ratio), -np.log(min_ratio)))
        eh, ew = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
        if 0 < eh < h and 0 < ew < w:
            top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
            x = x.clone()
            x[:, top:top + eh, left:left + ew] = 0.0
            return x
    return x


class TrainImages(Dataset):
    """Indexed by `Sample`s (the batch sampler yields lists of them), not by integers."""

    def __init__(self, cfg: InputConfig):
        self.cfg = cfg

    def __len__(self) -> int:  # pragma: no cover - DataLoader does not ask with a batch_sampler
        raise TypeError("TrainImages is indexed by Sample keys from a batch sampler")

    def __getitem__(self, sample: Sample) -> tuple[torch.Tensor, int, bool, bool]:
        rng = np.random.default_rng(sample.aug_seed)
        return augment(load_rgb(sample.path), self.cfg, rng), sample.label, sample.generated, sample.labelled


def make_train_loader(batches: Iterable[Sequence[Sample]], cfg: InputConfig, num_workers: int = 0,
                      pin_memory: bool = False) -> DataLoader:
    """A loader over pre-built batches of `Sample`s (one epoch's list, possibly already part-consumed)."""
    return DataLoader(TrainImages(cfg), batch_sampler=list(batches), num_workers=num_workers, pin_memory=pin_memory)


def check_records(records: Sequence[Record], what: str) -> None:
    if not records:
        raise ValueError(f"{what}: no images left to use")
