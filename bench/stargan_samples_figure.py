#!/usr/bin/env python
"""One picture of a StarGAN run's progress and of its CamStyle outputs, for docs/RESULTS.md.

* `--steps`: the first `--rows` rows of the run's sample grids (input, then every camera) at the
  given iterations, stacked, each block labelled with its iteration;
* `--camstyle DIR [DIR ...]`: for a few training images, the source beside its translations from
  each CamStyle folder (e.g. plain and keep_detail outputs of the same generator).

    python bench/stargan_samples_figure.py --run runs/exp/stargan --steps 1000 3000 5000 7000 10000 \
        --out docs/img/cuhk03_samples_by_iteration.png
    python bench/stargan_samples_figure.py --camstyle runs/exp/camstyle_plain runs/exp/camstyle_detail \
        --images 8 --out docs/img/cuhk03_plain_vs_detail.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw


def progress_figure(run: Path, steps: list[int], rows: int) -> Image.Image:
    blocks = []
    for step in steps:
        grid = Image.open(run / "samples" / f"{step:06d}.png").convert("RGB")
        row_h = grid.height // 8 if grid.height % 8 == 0 else grid.height
        block = grid.crop((0, 0, grid.width, min(rows * row_h, grid.height)))
        label = Image.new("RGB", (56, block.height), "white")
        ImageDraw.Draw(label).text((4, block.height // 2 - 6), f"{step // 1000}k" if step >= 1000 else str(step), fill="black")
        joined = Image.new("RGB", (label.width + block.width, block.height), "white")
        joined.paste(label, (0, 0))
        joined.paste(block, (label.width, 0))
        blocks.append(joined)
    out = Image.new("RGB", (blocks[0].width, sum(b.height + 4 for b in blocks)), "white")
    y = 0
    for b in blocks:
        out.paste(b, (0, y))
        y += b.height + 4
    return out


def camstyle_figure(folders: list[Path], images: int, size=(48, 96)) -> Image.Image:
    manifests = [[json.loads(line) for line in (f / "manifest.jsonl").read_text().splitlines() if line.strip()]
                 for f in folders]
    first = manifests[0][:: max(1, len(manifests[0]) // images)][:images]
    w, h = size
    out = Image.new("RGB", ((1 + len(folders)) * (w + 2) + 2, images * (h + 2) + 16), "white")
    draw = ImageDraw.Draw(out)
    draw.text((4, 2), "source", fill="black")
    for k, f in enumerate(folders):
        draw.text((4 + (k + 1) * (w + 2), 2), f.name.removeprefix("camstyle_")[:8], fill="black")
    for r, entry in enumerate(first):
        y = 16 + r * (h + 2)
        out.paste(Image.open(entry["source"]).convert("RGB").resize(size, Image.BILINEAR), (2, y))
        for k, f in enumerate(folders):
            out.paste(Image.open(f / entry["output"]).convert("RGB").resize(size, Image.BILINEAR), (2 + (k + 1) * (w + 2), y))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path)
    p.add_argument("--steps", type=int, nargs="+")
    p.add_argument("--rows", type=int, default=3)
    p.add_argument("--camstyle", type=Path, nargs="+")
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    figure = (progress_figure(args.run, args.steps, args.rows) if args.steps
              else camstyle_figure(args.camstyle, args.images))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.out, optimize=True)
    print(f"{args.out}: {figure.size[0]}x{figure.size[1]}")


if __name__ == "__main__":
    main()
