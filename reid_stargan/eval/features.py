"""Feature extraction: a torch re-ID model over a list of ``Record``s, batched, with flip averaging.

Example::

    import torch
    from reid_stargan.eval.features import extract_features
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())  # any (B,3,H,W)->(B,D)
    feats, pids, camids = extract_features(model, dataset.query, image_size=(256, 128), batch_size=64)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _load_rgb(path: str) -> Image.Image:
    """The project's checked loader when present, else plain PIL (either raises on a bad file)."""
    try:
        from reid_stargan.data.imageio import load_rgb
    except ImportError:
        with Image.open(path) as img:
            return img.convert("RGB")
    return load_rgb(path)


class _RecordImages(torch.utils.data.Dataset):
    """Resized, ImageNet-normalised image tensors; unreadable images give ``None`` (counted later)."""

    def __init__(self, records: Sequence, image_size: tuple[int, int]):
        from torchvision import transforms

        self.records = records
        self.transform = transforms.Compose([
            transforms.Resize(tuple(image_size)),  # (H, W)
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        try:
            image = self.transform(_load_rgb(self.records[i].path))  # (3, H, W)
        except (OSError, ValueError):
            return i, None
        return i, image


def _collate(batch):
    good = [(i, img) for i, img in batch if img is not None]
    bad = [i for i, img in batch if img is None]
    if not good:
        return torch.zeros(0, dtype=torch.long), None, bad
    index, images = zip(*good, strict=True)
    return torch.tensor(index), torch.stack(images), bad


@torch.no_grad()
def extract_features(model: torch.nn.Module, records: Sequence, image_size=(256, 128), batch_size: int = 64,
                     flip: bool = True, device: str = "cpu", num_workers: int = 0, normalize: bool = True,
                     progress: bool = True):
    """Embed ``records`` (objects with .path, .pid, .camid) with ``model`` ((B, 3, H, W) -> (B, D)).

    flip=True averages the embeddings of the image and its horizontal mirror; normalize=True L2-
    normalises the result. Unreadable images are skipped (logged with a count), so the returned
    arrays may be shorter than ``records``. Returns (feats float32 (N, D), pids int64 (N,), camids
    int64 (N,)). The model is put in eval mode and restored to its previous mode afterwards.
    """
    from tqdm import tqdm

    loader = torch.utils.data.DataLoader(_RecordImages(records, image_size), batch_size=batch_size,
                                         shuffle=False, num_workers=num_workers, collate_fn=_collate)
    was_training = model.training
    model.eval()
    feats, kept, skipped = [], [], []
    try:
        for index, images, bad in tqdm(loader, desc="features", disable=not progress, unit="batch"):
            skipped.extend(bad)
            if images is None:
                continue
            images = images.to(device)  # (B, 3, H, W)
            emb = model(images).float()  # (B, D)
            if flip:
                emb = (emb + model(torch.flip(images, dims=[3])).float()) / 2
            if emb.ndim != 2 or emb.shape[0] != images.shape[0]:
                raise ValueError(f"model must return (B, D) embeddings, got shape {tuple(emb.shape)}")
            if normalize:
                emb = torch.nn.functional.normalize(emb, dim=1)
            feats.append(emb.cpu())
            kept.append(index)
    finally:
        model.train(was_training)
    if skipped:
        logger.warning("skipped %d unreadable image(s) of %d, e.g. %s", len(skipped), len(records),
                       records[skipped[0]].path)
    if not feats:
        raise ValueError(f"no readable image among {len(records)} records")
    kept_idx = torch.cat(kept).numpy()
    pids = np.array([records[i].pid for i in kept_idx], dtype=np.int64)
    camids = np.array([records[i].camid for i in kept_idx], dtype=np.int64)
    return torch.cat(feats).numpy().astype(np.float32), pids, camids
