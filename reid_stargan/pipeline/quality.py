"""How good a camera-style translation is, measured three ways (all plain functions, CPU friendly).

1. **Target-camera accuracy** -- a small CNN camera classifier trained only on *real* training
   images (never on generated ones, and not the GAN's own discriminator, which was trained against
   the generator) judges whether each generated image looks like its target camera. Its accuracy on
   held-out real images (query + gallery) is the reference that says how far to trust it.
2. **Identity preservation** -- generated images used as queries against the real training images:
   does the translated image still retrieve its own identity? Features come from any callable
   ``features(paths) -> (N, D) array`` (the pipeline passes the trained re-ID baseline's extractor).
3. **Synthetic fidelity** -- on the synthetic set the true rendering of the same person and pose in
   the target camera is known, so L1 / PSNR against it, inside the person mask, say whether the GAN
   moved the image towards the target camera (compared with leaving the source image untouched).

Example (synthetic demo set, oracle "generator" = the true renderings)::

    from reid_stargan.camstyle.naming import read_camstyle
    from reid_stargan.data.synthetic import PRESETS, load_dataset, make_synthetic
    from reid_stargan.pipeline import quality
    from reid_stargan.camstyle.oracle import write_oracle_camstyle

    make_synthetic("runs/syn", **PRESETS["tiny"])
    write_oracle_camstyle("runs/syn", "runs/syn/camstyle")
    data, fake = load_dataset("runs/syn"), read_camstyle("runs/syn/camstyle")
    clf = quality.train_camera_classifier(data.train, data.num_cameras)
    print(quality.camera_style_scores(clf, fake, data.query + data.gallery))
    print(quality.synthetic_fidelity("runs/syn", fake)["generated"])
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reid_stargan.camstyle.naming import CamStyleRecord, source_stem
from reid_stargan.data.preprocess import load_resized, to_gan_range
from reid_stargan.data.records import Record

FeatureFn = Callable[[Sequence[str]], np.ndarray]


# ----------------------------------------------------------------------------------------------------
# Images -> tensors


def load_images(paths: Sequence[str], image_size: tuple[int, int]) -> torch.Tensor:
    """Decode `paths`, resize to ``image_size`` = (H, W) (bilinear), return uint8 (N, 3, H, W).

    uint8 keeps a few thousand small images in memory cheaply; callers convert per batch.
    """
    out = torch.empty((len(paths), 3, *image_size), dtype=torch.uint8)
    for i, path in enumerate(paths):
        out[i] = torch.from_numpy(np.array(load_resized(path, image_size))).permute(2, 0, 1)  # (3, H, W)
    return out


# ----------------------------------------------------------------------------------------------------
# 1. Camera classifier


class CameraClassifier(nn.Module):
    """Four conv blocks + global average pool + linear: enough to tell camera styles apart.

    Inputs are plainly scaled to [-1, 1] (`to_gan_range`), not normalised per image: the colour cast IS
    the camera signal.
    """

    def __init__(self, num_cameras: int, image_size: tuple[int, int] = (64, 32), width: int = 16):
        super().__init__()
        self.num_cameras, self.image_size = int(num_cameras), tuple(int(s) for s in image_size)

        def block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                                 nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(3, width), block(width, 2 * width), block(2 * width, 4 * width),
                                      block(4 * width, 4 * width))
        self.head = nn.Linear(4 * width, self.num_cameras)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 3, f"expected (B, 3, H, W), got {tuple(x.shape)}"
        f = self.features(x).mean(dim=(2, 3))  # (B, 4w)
        return self.head(f)  # (B, num_cameras)


def _augment(x: torch.Tensor, gen: torch.Generator, max_shift: int = 3) -> torch.Tensor:
    """Random horizontal flip per image and one random shift per batch (replicate padding).

    Pose and position must not carry the camera label; colour, contrast and background do.
    """
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    h, w = x.shape[2:]
    padded = nn.functional.pad(x, (max_shift,) * 4, mode="replicate")
    dy, dx = (int(v) for v in torch.randint(0, 2 * max_shift + 1, (2,), generator=gen))
    return padded[:, :, dy : dy + h, dx : dx + w]


def train_camera_classifier(records: Sequence[Record], num_cameras: int, image_size: tuple[int, int] = (64, 32),
                            epochs: int = 6, seed: int = 0, device: str = "cpu", batch_size: int = 64,
                            lr: float = 2e-3, width: int = 16, max_images: int | None = 3000) -> CameraClassifier:
    """Train a :class:`CameraClassifier` on REAL images ``records`` (Record(path, pid, camid)) only.

    ``image_size`` is (H, W); ``max_images`` caps the training set (a seeded random subset) so the
    cost stays bounded on large sets; ``batch_size`` shrinks on small sets so an epoch has at least
    8 steps. Deterministic for a given seed on CPU; the global torch RNG
    is left untouched. Returns the model in eval mode on ``device``; it remembers its image size.
    """
    if not records:
        raise ValueError("train_camera_classifier: no training records")
    cams = np.array([r.camid for r in records])
    if cams.min() < 0 or cams.max() >= num_cameras:
        raise ValueError(f"camera ids must lie in 0..{num_cameras - 1}, got {cams.min()}..{cams.max()}")
    chosen = _subset(records, max_images, seed)
    images = load_images([r.path for r in chosen], image_size)  # (N, 3, H, W) uint8
    labels = torch.as_tensor([r.camid for r in chosen], dtype=torch.long)
    # Small sets get smaller batches (>= 8 steps per epoch), so a tiny test set still trains.
    batch_size = max(2, min(batch_size, len(images) // 8))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CameraClassifier(num_cameras, image_size, width).to(device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * math.ceil(len(images) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), batch_size):
            idx = perm[start : start + batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            x = _augment(to_gan_range(images[idx]), gen).to(device)  # (B, 3, H, W)
            loss = loss_fn(model(x), labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.inference_mode()
def predict_cameras(model: CameraClassifier, paths: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """Predicted 0-based camera of each image in ``paths`` (int64 array, same order), at the model's size."""
    device = next(model.parameters()).device
    model.eval()
    preds = []
    for start in range(0, len(paths), batch_size):
        x = to_gan_range(load_images(paths[start : start + batch_size], model.image_size)).to(device)
        preds.append(model(x).argmax(1).cpu().numpy())
    return np.concatenate(preds) if preds else np.zeros(0, np.int64)


def camera_accuracy(model: CameraClassifier, items: Sequence[tuple[str, int]]) -> float:
    """Percent of ``items`` = [(path, camid 0-based), ...] classified as their camera."""
    if not items:
        raise ValueError("camera_accuracy: no items")
    pred = predict_cameras(model, [p for p, _ in items])
    return 100.0 * float(np.mean(pred == np.array([c for _, c in items])))


def camera_style_scores(model: CameraClassifier, generated: Sequence[CamStyleRecord],
                        heldout_real: Sequence[Record], max_images: int | None = 3000, seed: int = 0) -> dict:
    """Target-camera accuracy of ``generated`` images next to the classifier's held-out real accuracy.

    Returns percent values: ``generated_target_acc`` (predicted camera == target camera),
    ``generated_source_acc`` (still looks like the source camera: the generator did too little),
    ``real_heldout_acc`` (reference: real query/gallery images in their own camera), ``chance``,
    and the image counts. ``max_images`` (None: all) evaluates a seeded random subset of ``generated``
    and of ``heldout_real``, so the cost stays bounded on large sets.
    """
    generated = _subset(generated, max_images, seed)
    heldout_real = _subset(heldout_real, max_images, seed)
    pred = predict_cameras(model, [g.path for g in generated])
    dst = np.array([g.dst_camid for g in generated])
    src = np.array([g.src_camid for g in generated])
    return {
        "generated_target_acc": 100.0 * float(np.mean(pred == dst)),
        "generated_source_acc": 100.0 * float(np.mean(pred == src)),
        "real_heldout_acc": camera_accuracy(model, [(r.path, r.camid) for r in heldout_real]),
        "chance": 100.0 / model.num_cameras,
        "num_generated": len(generated),
        "num_real_heldout": len(heldout_real),
    }


def _subset(items: Sequence, max_items: int | None, seed: int) -> list:
    items = list(items)
    if max_items is None or len(items) <= max_items:
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=max_items, replace=False))
    return [items[i] for i in keep]


# ----------------------------------------------------------------------------------------------------
# 2. Identity preservation


def model_features(model: nn.Module, image_size: tuple[int, int] = (256, 128), batch_size: int = 128,
                   device: str = "cpu", flip: bool = True) -> FeatureFn:
    """Wrap a re-ID model as ``features(paths) -> (N, D)`` via :func:`reid_stargan.eval.features.extract_features`
    (L2-normalised, flip-averaged). Raises if an image cannot be read: rows must match paths."""
    from reid_stargan.eval.features import extract_features

    def features(paths: Sequence[str]) -> np.ndarray:
        records = [Record(str(p), 0, 0) for p in paths]
        feats = extract_features(model, records, image_size=image_size, batch_size=batch_size, flip=flip,
                                 device=device, progress=False)[0]
        if len(feats) != len(records):
            raise ValueError(f"{len(records) - len(feats)} of {len(records)} images could not be read")
        return np.asarray(feats, dtype=np.float32)

    return features


def identity_preservation(features: FeatureFn, generated: Sequence[CamStyleRecord], gallery: Sequence[Record],
                          metric: str = "cosine", max_queries: int | None = 2000, seed: int = 0) -> dict:
    """Rank-1 / mAP of generated images as queries against the REAL training images.

    Why this gallery: generated images come from training identities, which the test gallery does
    not contain, so the gallery is the real training set (``gallery``, usually ``dataset.train``).

    Protocol (the standard one of :func:`reid_stargan.eval.evaluator.evaluate`, which drops gallery
    items with the query's pid AND camera): a query carries its SOURCE camera id. That removes the
    source image itself and its same-camera siblings (near duplicates in real data), so a hit must
    be a real image of the same person from another camera -- including the target camera, the one
    the translation should make easier. (Giving the query its target camera instead would keep the
    source image, an almost certain trivial rank-1, and drop the real target-camera images.)

    Returns ``{"generated": metrics, "source": metrics, ...}`` where ``source`` is the same protocol
    with the untranslated source images as queries (the reference: identity kept perfectly), metrics
    hold ``mAP``, ``rank1``, ``rank5``, ``rank10`` (percent) and query counts. Generated images whose
    source is not in ``gallery`` are counted as ``num_orphans`` and left out; ``max_queries`` (None: all)
    keeps a seeded random subset of the rest, bounding the feature-extraction cost.
    """
    from reid_stargan.eval.evaluator import evaluate

    by_stem = {Path(r.path).stem: i for i, r in enumerate(gallery)}
    usable = [g for g in generated if source_stem(g) in by_stem]
    orphans = len(generated) - len(usable)
    usable = _subset(usable, max_queries, seed)
    if not usable:
        raise ValueError(f"identity_preservation: none of {len(generated)} generated images has its source "
                         "image in the gallery")
    g_feats = np.asarray(features([r.path for r in gallery]), dtype=np.float32)  # (G, D)
    q_feats = np.asarray(features([g.path for g in usable]), dtype=np.float32)  # (Q, D)
    if g_feats.shape[0] != len(gallery) or q_feats.shape[0] != len(usable):
        raise ValueError(f"features() returned {g_feats.shape[0]}/{q_feats.shape[0]} rows for "
                         f"{len(gallery)}/{len(usable)} images")
    g_pids = np.array([r.pid for r in gallery])
    g_cams = np.array([r.camid for r in gallery])
    max_rank = min(50, len(gallery))

    def run(q, q_pids, q_cams):
        m = evaluate(q, g_feats, q_pids, g_pids, q_cams, g_cams, metric=metric, max_rank=max_rank)
        return {k: m[k] for k in ("mAP", "rank1", "rank5", "rank10", "num_valid_queries", "num_skipped_queries")}

    src_idx = sorted({by_stem[source_stem(g)] for g in usable})
    return {
        "generated": run(q_feats, np.array([g.pid for g in usable]), np.array([g.src_camid for g in usable])),
        "source": run(g_feats[src_idx], g_pids[src_idx], g_cams[src_idx]),
        "num_queries": len(usable),
        "num_orphans": orphans,
        "num_gallery": len(gallery),
        "protocol": "query camid = source camera (drops the source image and its same-camera siblings)",
    }


# ----------------------------------------------------------------------------------------------------
# 3. Synthetic fidelity


def _masked_errors(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> tuple[float, float, float, float]:
    """(L1 masked, PSNR masked, L1 full, PSNR full); images uint8 (H, W, 3), values in [0, 1] units."""
    diff = pred.astype(np.float64) / 255.0 - truth.astype(np.float64) / 255.0  # (H, W, 3)
    inside = diff[mask]  # (M, 3)
    return (float(np.abs(inside).mean()), _psnr(float(np.square(inside).mean())),
            float(np.abs(diff).mean()), _psnr(float(np.square(diff).mean())))


def _psnr(mse: float) -> float:
    return 10.0 * math.log10(1.0 / max(mse, 1e-10))  # floor: identical images score 100 dB, not inf


def synthetic_fidelity(data_root: str | os.PathLike, camstyle_records: Sequence[CamStyleRecord],
                       max_images: int | None = 1000, seed: int = 0) -> dict:
    """L1 and PSNR of generated images against the true target-camera rendering (synthetic set only).

    For each record (from :func:`reid_stargan.camstyle.naming.read_camstyle`) the truth is
    ``true_rendering(data_root, source, dst_camid)`` (noise-free); the generated image is resized
    (bilinear) to the truth's size. Errors are in [0, 1] units per channel: L1 = mean |pred - truth|,
    PSNR = 10 log10(1 / MSE) dB (peak 1.0, MSE floored at 1e-10), averaged over images. ``*_masked``
    uses the person mask only (the identity-bearing pixels); ``*_full`` the whole image.

    Returns ``{"generated": {...}, "identity": {...}, "improved_fraction", "num_images", "num_skipped",
    "units"}``; ``identity`` scores the untranslated source image against the same truth (what a
    generator that does nothing gets), ``improved_fraction`` is the share of images whose masked L1
    is lower than that baseline. ``max_images`` (None: all) scores a seeded random subset (the
    renderer costs ~5 ms per image). Records whose source is not in the set, or whose mask is empty, are
    skipped and counted.
    """
    from reid_stargan.data.synthetic import read_image_meta, true_rendering

    root = Path(data_root)
    meta = read_image_meta(root)
    by_stem = {Path(name).stem: rec for name, rec in meta.items()}
    rows_gen, rows_id, skipped = [], [], 0
    for g in _subset(camstyle_records, max_images, seed):
        rec = by_stem.get(source_stem(g))
        if rec is None:
            skipped += 1
            continue
        truth, mask = true_rendering(root, Path(rec["file"]).name, g.dst_camid)  # (H, W, 3), (H, W)
        if not mask.any():
            skipped += 1
            continue
        size = truth.shape[:2]  # (H, W)
        rows_gen.append(_masked_errors(np.asarray(load_resized(g.path, size)), truth, mask))
        rows_id.append(_masked_errors(np.asarray(load_resized(root / rec["file"], size)), truth, mask))
    if not rows_gen:
        raise ValueError(f"synthetic_fidelity: none of {len(camstyle_records)} records could be scored "
                         f"against {root} (sources not in the set?)")
    gen, ident = np.array(rows_gen), np.array(rows_id)  # (N, 4) each

    def summary(a):
        return {"l1_masked": float(a[:, 0].mean()), "psnr_masked": float(a[:, 1].mean()),
                "l1_full": float(a[:, 2].mean()), "psnr_full": float(a[:, 3].mean())}

    return {
        "generated": summary(gen),
        "identity": summary(ident),
        "improved_fraction": float(np.mean(gen[:, 0] < ident[:, 0])),
        "num_images": len(rows_gen),
        "num_skipped": skipped,
        "units": "L1: mean absolute error, pixel values in [0, 1]; PSNR: dB with peak 1.0, mean over images",
    }
