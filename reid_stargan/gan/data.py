"""Images and domain labels for StarGAN training, as deterministic, resumable batch streams.

Each data set becomes a `DomainData` (image paths, raw labels, `DomainSpec`): re-ID sets give one
domain per camera (label = 0-based camid), face sets their attributes or expressions. Pixels are
decoded once per use into uint8 tensors at the *load size* (the image size, or 9/8 of it when
random cropping as HHL's stargan4reid does: 288x144 -> crop 256x128); cropping, flipping and the
[-1, 1] scaling happen on whole batches (`augment_batch`), on the training device.

`BatchStream` draws batches from a per-epoch permutation seeded by (seed, data set index, epoch),
sharded over torchrun ranks, and remembers only how many batches it handed out, so a resumed run
sees exactly the batches an uninterrupted run would. With `in_memory=True` every image is decoded
once into one (N, 3, h, w) uint8 tensor and the loader never touches the disk again.
"""

from __future__ import annotations

import io
import itertools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from reid_stargan.data.config import DataConfig
from reid_stargan.data.datasets import DatasetError
from reid_stargan.data.imageio import load_rgb
from reid_stargan.data.preprocess import drop_unreadable, from_gan_range, resize, to_gan_range
from reid_stargan.data.records import AttributeDataset, ReidDataset, camera_links
from reid_stargan.gan.labels import DomainSpec


@dataclass
class DomainData:
    """One data set's training images and raw labels ((N,) long or (N, c) float)."""

    spec: DomainSpec
    paths: list[str]
    labels: torch.Tensor
    unparsed_names: int = 0  # training file names that did not match the layout (skipped)
    # Camera sets: (c, c) bool, [i, j] = cameras i and j share a training identity (None: face sets)
    links: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.paths)


def check_camera_domains(ds: ReidDataset, root, allow_empty: bool) -> None:
    """Refuse what StarGAN cannot train on: one camera (nothing to translate), or a camera with no
    training image (an empty domain) unless `allow_empty`."""
    present = sorted({r.camid for r in ds.train})
    if len(present) < 2:
        raise DatasetError(f"{root}: the training split has images of {len(present)} camera(s) "
                           f"({', '.join(f'c{c + 1}' for c in present)}); StarGAN needs two or more "
                           "cameras to translate between")
    empty = ds.cameras_without_training_images()
    if empty and not allow_empty:
        raise DatasetError(f"{root}: camera(s) {', '.join(f'c{c + 1}' for c in empty)} of c1..c{ds.num_cameras} "
                           "have no training image (empty StarGAN domains); fix data.num_cameras or the files, "
                           "or pass --allow-empty-cameras (data.allow_empty_cameras=true)")


def build_domain_data(dc: DataConfig, log=None) -> DomainData:
    """Parse the data set of `dc` and return its training images with domain labels.

    `log` (default: stderr) names the unreadable images that are skipped."""
    log = log if log is not None else (lambda message: print(message, file=sys.stderr))
    ds = dc.build(train_only=True)
    if isinstance(ds, ReidDataset):
        check_camera_domains(ds, dc.root, dc.allow_empty_cameras)
        paths = [r.path for r in ds.train]
        labels = torch.tensor([r.camid for r in ds.train], dtype=torch.long)
        spec = DomainSpec(ds.name, ds.num_cameras, "single", tuple(f"c{i + 1}" for i in range(ds.num_cameras)))
        links = torch.zeros(ds.num_cameras, ds.num_cameras, dtype=torch.bool)
        for cam, linked in camera_links(ds.train).items():
            links[cam, list(linked)] = True
    elif isinstance(ds, AttributeDataset):
        links = None
        paths = [r.path for r in ds.train]
        if ds.label_type == "single":
            labels = torch.tensor([int(r.label[0]) for r in ds.train], dtype=torch.long)
        else:
            labels = torch.tensor([r.label for r in ds.train], dtype=torch.float32).reshape(-1, ds.c_dim)
        spec = DomainSpec(ds.name, ds.c_dim, ds.label_type, tuple(ds.domain_names))
    else:  # pragma: no cover - a parser returned something new
        raise TypeError(f"unsupported data set type {type(ds).__name__}")
    if not paths:
        raise ValueError(f"data set '{dc.name}' at {dc.root} has no training images")
    if dc.verify_images:
        good, bad = drop_unreadable(paths, log, f"[{dc.name}]")
        if bad:
            keep = set(good)
            idx = [i for i, p in enumerate(paths) if p in keep]
            paths, labels = [paths[i] for i in idx], labels[idx]
        if not paths:
            raise ValueError(f"data set '{dc.name}': no readable training image")
    unparsed = ds.num_skipped_names() if isinstance(ds, ReidDataset) else 0
    return DomainData(spec, paths, labels, unparsed, links)


def load_size(image_size: tuple[int, int], random_crop: bool) -> tuple[int, int]:
    """Decoded (H, W): the image size, or 9/8 of it for a random crop (HHL: 288x144 for 256x128)."""
    h, w = image_size
    return (round(h * 9 / 8), round(w * 9 / 8)) if random_crop else (h, w)


def decode(path: str, size: tuple[int, int], center_crop: int = 0) -> torch.Tensor:
    """One image -> (3, H, W) uint8: optional centred square crop, then bilinear resize to `size`."""
    img = load_rgb(path)
    if center_crop:
        w, h = img.size
        left, top = max(0, (w - center_crop) // 2), max(0, (h - center_crop) // 2)
        img = img.crop((left, top, min(w, left + center_crop), min(h, top + center_crop)))
    img = resize(img, size)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)  # (3, H, W)


class ImageDataset(torch.utils.data.Dataset):
    """Map-style data set for a DataLoader: index -> ((3, h, w) uint8, index)."""

    def __init__(self, paths: list[str], size: tuple[int, int], center_crop: int = 0):
        self.paths, self.size, self.center_crop = paths, size, center_crop

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return decode(self.paths[i], self.size, self.center_crop), i


def decode_all(paths: list[str], size: tuple[int, int], center_crop: int = 0, threads: int = 4) -> torch.Tensor:
    """Every image into one (N, 3, H, W) uint8 tensor (Pillow decodes release the GIL)."""
    out = torch.empty(len(paths), 3, *size, dtype=torch.uint8)

    def fill(i: int) -> None:
        out[i] = decode(paths[i], size, center_crop)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(fill, range(len(paths))))
    return out


class BatchStream:
    """Deterministic, resumable, rank-sharded batches of (uint8 images, raw labels) from one data set."""

    def __init__(self, data: DomainData, size: tuple[int, int], batch_size: int, seed: int, index: int = 0,
                 rank: int = 0, world_size: int = 1, center_crop: int = 0, in_memory: bool = False,
                 num_workers: int = 0, consumed: int = 0):
        self.data, self.size, self.batch_size = data, size, batch_size
        self.seed, self.index, self.rank, self.world_size = seed, index, rank, world_size
        self.center_crop, self.num_workers = center_crop, num_workers
        self.batches_per_epoch = len(data) // world_size // batch_size  # this rank's share, whole batches
        if self.batches_per_epoch < 1:
            raise ValueError(f"data set '{data.spec.name}' has {len(data)} images: fewer than one batch of "
                             f"{batch_size} per rank x {world_size} rank(s); lower train.batch_size")
        self.consumed = consumed
        self._perm_cache: tuple[int, torch.Tensor] | None = None
        self.images = decode_all(data.paths, size, center_crop, threads=min(8, os.cpu_count() or 1)) if in_memory else None
        self._iter = None

    def batch_indices(self, n: int) -> torch.Tensor:
        """Indices of this rank's `n`-th batch (0-based over the whole run)."""
        epoch, b = divmod(n, self.batches_per_epoch)
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            perm = np.random.default_rng([self.seed, self.index, epoch]).permutation(len(self.data))
            self._perm_cache = (epoch, torch.from_numpy(perm[self.rank::self.world_size].copy()))
        return self._perm_cache[1][b * self.batch_size:(b + 1) * self.batch_size]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch: ((B, 3, h, w) uint8, raw labels)."""
        if self.images is not None:
            idx = self.batch_indices(self.consumed)
            images = self.images[idx]
        else:
            if self._iter is None:
                batches = (self.batch_indices(n).tolist() for n in itertools.count(self.consumed))  # endless
                loader = torch.utils.data.DataLoader(
                    ImageDataset(self.data.paths, self.size, self.center_crop),
                    batch_sampler=batches, num_workers=self.num_workers,
                    persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())
                self._iter = iter(loader)
            images, idx = next(self._iter)
        self.consumed += 1
        return images, self.data.labels[idx]

    @property
    def epochs(self) -> float:
        return self.consumed / self.batches_per_epoch


def augment_batch(images: torch.Tensor, out_size: tuple[int, int], *, random_crop: bool, hflip: bool,
                  generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, 3, h, w) uint8 -> (B, 3, H, W) float in [-1, 1] on `device`: random crop, random flip.

    The random draws come from `generator` (CPU) in a fixed order, so they are part of the
    resumable training state and independent of the device.
    """
    b, _, h, w = images.shape
    oh, ow = out_size
    tops = torch.randint(0, h - oh + 1, (b,), generator=generator) if random_crop else torch.full((b,), (h - oh) // 2)
    lefts = torch.randint(0, w - ow + 1, (b,), generator=generator) if random_crop else torch.full((b,), (w - ow) // 2)
    flips = torch.rand(b, generator=generator) < 0.5 if hflip else torch.zeros(b, dtype=torch.bool)
    images = images.to(device, non_blocking=True)
    if (h, w) != (oh, ow):
        images = torch.stack([images[i, :, t:t + oh, x0:x0 + ow] for i, (t, x0) in enumerate(zip(tops.tolist(), lefts.tolist()))])
    if flips.any():
        images = torch.where(flips.to(images.device)[:, None, None, None], images.flip(-1), images)
    return to_gan_range(images)


def grid_png(rows: list[torch.Tensor]) -> bytes:
    """Sample grid: `rows` is a list of (B, 3, H, W) [-1, 1] columns; row i = rows[0][i], rows[1][i], ..."""
    grid = torch.cat(rows, dim=3)  # (B, 3, H, W * columns)
    grid = torch.cat(list(grid), dim=1)  # (3, B * H, W * columns)
    buf = io.BytesIO()
    Image.fromarray(from_gan_range(grid[None])[0].permute(1, 2, 0).cpu().numpy()).save(buf, format="PNG")
    return buf.getvalue()
