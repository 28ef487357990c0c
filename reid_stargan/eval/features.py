"""Feature extraction: a torch re-ID model over ``Record``s or plain image paths, batched, with flip averaging.

Example::

    import torch
    from reid_stargan.eval.features import extract_features
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())  # any (B,3,H,W)->(B,D)
    feats, pids, camids = extract_features(model, dataset.query, image_size=(256, 128), batch_size=64)
    feats, pids, camids = extract_features(model, ["a/0002_c1s1_000451_03.jpg", Path("b/me.jpg")])
    # -> pids [2, -1], camids [0, -1]: labels from Market-1501 style names, -1 where a name has none
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch

from reid_stargan.data.datasets import MARKET_NAME
from reid_stargan.data.preprocess import reid_eval_tensor
from reid_stargan.data.records import Record

logger = logging.getLogger(__name__)


def record_from_path(path: str | os.PathLike) -> Record:
    """A ``Record`` for a plain image path: pid and 0-based camid from a Market-1501 style file name
    (``0002_c1s1_...``), -1 and -1 when the name does not carry them."""
    path = os.fspath(path)
    match = MARKET_NAME.match(os.path.basename(path))
    if match is None or int(match.group(2)) < 1:
        return Record(path, -1, -1)
    return Record(path, int(match.group(1)), int(match.group(2)) - 1)


def as_records(items: Sequence) -> list:
    """``items`` as objects with .path / .pid / .camid: Records are kept, str / Path become
    :func:`record_from_path` records; anything else raises TypeError naming the first bad item."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            out.append(record_from_path(item))
        elif all(hasattr(item, a) for a in ("path", "pid", "camid")):
            out.append(item)
        else:
            raise TypeError(f"item {i} is a {type(item).__name__}; expected a Record (.path, .pid, .camid) "
                            "or an image path (str / pathlib.Path)")
    return out


class _RecordImages(torch.utils.data.Dataset):
    """Resized, ImageNet-normalised image tensors; unreadable images give ``None`` (counted later)."""

    def __init__(self, records: Sequence, image_size: tuple[int, int]):
        self.records, self.image_size = records, tuple(image_size)  # (H, W)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        try:
            return i, reid_eval_tensor(self.records[i].path, self.image_size)  # (3, H, W), as in training
        except (OSError, ValueError):
            return i, None


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
                     progress: bool = True, return_index: bool = False):
    """Embed ``records`` with ``model`` ((B, 3, H, W) -> (B, D)).

    ``records``: objects with .path, .pid, .camid (``Record``), or plain image paths (str /
    ``pathlib.Path``), whose pid and camid come from Market-1501 style names (-1 when absent; see
    :func:`record_from_path`); the two kinds may be mixed. flip=True averages the embeddings of the
    image and its horizontal mirror; normalize=True L2-normalises the result. Unreadable images are
    skipped (logged with a count), so the returned arrays may be shorter than ``records``. Returns
    (feats float32 (N, D), pids int64 (N,), camids int64 (N,)), and with ``return_index`` also the
    positions in ``records`` of the N images kept (int64 (N,)). The model is put in eval mode and
    restored to its previous mode afterwards.
    """
    from tqdm import tqdm

    records = as_records(records)

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
    feats = torch.cat(feats).numpy().astype(np.float32)
    if return_index:
        return feats, pids, camids, kept_idx
    return feats, pids, camids
