#!/usr/bin/env python
"""A CamStyle control without a GAN: each camera's colour statistics moved onto the person, nothing else.

Every training image is rendered into its target cameras by one per-channel affine map of RGB:
its own camera's mean and standard deviation (over all of that camera's training pixels) are
replaced by the target camera's. That is a camera's exposure, contrast and white balance, and the
person's shape, texture and relative colours are kept exactly, i.e. identity preservation by
construction. Trained as CamStyle images, the set tells what a translator that changes only the
camera-wide colour could add, and so whether StarGAN's loss of the person is the only obstacle.

The folder has the layout of tools/generate_camstyle.py (names, manifest.jsonl), so train_reid
reads it with --camstyle. Targets as `generate.targets=linked`: the cameras sharing identities
with the image's own (CUHK03: its partner camera), at most --targets-per-image of them.

    python bench/colour_camstyle.py --data-root runs/cuhk03_val --out runs/s6/val_camstyle_colour
    python tools/train_reid.py --config configs/reid/cuhk03_cpu_camstyle.yaml --camstyle runs/s6/val_camstyle_colour \
        --set data.root=runs/cuhk03_val
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from reid_stargan.camstyle.generate import encode_image
from reid_stargan.camstyle.naming import manifest_entry, output_name, write_manifest
from reid_stargan.data.datasets import build_dataset
from reid_stargan.data.imageio import load_rgb
from reid_stargan.data.records import camera_links
from reid_stargan.utils.io import atomic_write_bytes


def camera_statistics(records) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """camid -> (mean, std) of R, G, B over every pixel of the camera's training images."""
    sums: dict[int, np.ndarray] = {}
    for r in records:
        x = np.asarray(load_rgb(r.path), dtype=np.float64).reshape(-1, 3)
        acc = sums.setdefault(r.camid, np.zeros(7))
        acc[:3] += x.sum(0)
        acc[3:6] += (x * x).sum(0)
        acc[6] += len(x)
    stats = {}
    for cam, acc in sums.items():
        mean = acc[:3] / acc[6]
        stats[cam] = (mean, np.sqrt(np.maximum(acc[3:6] / acc[6] - mean * mean, 1e-6)))
    return stats


def restyled(image: Image.Image, own: tuple[np.ndarray, np.ndarray], target: tuple[np.ndarray, np.ndarray]) -> Image.Image:
    x = np.asarray(image.convert("RGB"), dtype=np.float64)
    y = (x - own[0]) / own[1] * target[1] + target[0]
    return Image.fromarray(np.clip(np.rint(y), 0, 255).astype(np.uint8))


def _figure(entries: list[dict], out: Path, path: Path) -> None:
    """Sources over their renderings, the first image of each source camera, camera order."""
    first = {}
    for e in entries:
        first.setdefault(e["src_cam"], e)
    cols = [first[c] for c in sorted(first)]
    size = load_rgb(cols[0]["source"]).size
    sheet = Image.new("RGB", (size[0] * len(cols), size[1] * 2), "white")
    for i, e in enumerate(cols):
        sheet.paste(load_rgb(e["source"]).resize(size), (i * size[0], 0))
        sheet.paste(load_rgb(out / e["output"]).resize(size), (i * size[0], size[1]))
    sheet.save(path)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", required=True, help="Market-layout set (its training split is rendered)")
    p.add_argument("--out", required=True, help="output folder (CamStyle layout)")
    p.add_argument("--targets-per-image", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="which linked cameras an image gets, when it has more")
    p.add_argument("--figure", help="also write a PNG: one source per camera (top) over its first rendering")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    train = build_dataset("market_layout", args.data_root).train
    stats, links = camera_statistics(train), camera_links(train)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    entries = []
    for r in train:
        others = sorted(links[r.camid] - {r.camid})
        chosen = rng.permutation(others)[:args.targets_per_image] if len(others) > args.targets_per_image else others
        im = load_rgb(r.path)
        for dst in sorted(int(c) for c in chosen):
            name = output_name(Path(r.path).name, r.camid, dst)
            atomic_write_bytes(out / name, encode_image(restyled(im, stats[r.camid], stats[dst]), "jpg", 95))
            entries.append(manifest_entry(r.path, r.pid, r.camid, dst, name))
    write_manifest(out, entries)
    if args.figure:
        _figure(entries, out, Path(args.figure))
    summary = {"images": len(entries), "sources": len(train), "seconds": round(time.perf_counter() - t0, 1),
               "camera_means": {int(c + 1): [round(float(v), 1) for v in s[0]] for c, s in sorted(stats.items())}}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
