#!/usr/bin/env python
"""Which image change costs a re-ID judge the identity: controls beside the StarGAN translations.

The pipeline's identity-preservation measure (``pipeline/quality.py``) scores translated training
images as queries against the real training images, judged by the real-images-only baseline. This
script scores hand-made changes of the same source images under the same protocol (query camera =
source camera), so a low score of the translations can be put down to a cause:

* ``source``: the images as they are (the reference);
* ``gan_size``: down to the GAN's size and back up (what the resolution alone costs);
* ``darker`` / ``brighter``: a global light change (a camera's exposure);
* ``warm``: a colour cast (red up, blue down: a camera's white balance);
* ``hue``: the hue turned by 60 degrees (clothing colours change: what a translation must not do);
* ``camstyle`` (with ``--camstyle``): the generator's translations of the same sources.

    python bench/identity_controls.py --data-root ../shared/data/cuhk03_market \
        --reid-model runs/s4/pipe_cuhk03/reid/baseline-s0 --gan-size 64 32 --camstyle runs/s4/pipe_cuhk03/camstyle
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from reid_stargan.camstyle.naming import read_camstyle, source_stem
from reid_stargan.data.datasets import build_dataset
from reid_stargan.eval.evaluator import evaluate
from reid_stargan.pipeline.quality import model_features
from reid_stargan.reid.checkpoint import load_reid_model


def hue_turned(im: Image.Image, degrees: float) -> Image.Image:
    h, s, v = im.convert("HSV").split()
    h = h.point(lambda x: int(x + degrees * 256 / 360) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def warm(im: Image.Image) -> Image.Image:
    a = np.asarray(im, dtype=np.float32) * np.array([1.15, 1.0, 0.8], dtype=np.float32)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def controls(gan_size_hw: tuple[int, int]):
    h, w = gan_size_hw
    return {
        "source": lambda im: im,
        "gan_size": lambda im: im.resize((w, h), Image.BILINEAR).resize(im.size, Image.BILINEAR),
        "darker": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
        "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.4),
        "warm": warm,
        "hue": lambda im: hue_turned(im, 60),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--reid-model", required=True, type=Path, help="baseline run folder or model.pt (real images only)")
    p.add_argument("--gan-size", type=int, nargs=2, default=(64, 32), metavar=("H", "W"))
    p.add_argument("--camstyle", type=Path, help="a CamStyle folder of the same set: scores its translations too")
    p.add_argument("--images", type=int, default=600, help="seeded subset of training images used as queries")
    p.add_argument("--json", type=Path, help="write the rows here")
    args = p.parse_args()

    start = time.time()
    train = build_dataset("market_layout", args.data_root).train
    model, cfg = load_reid_model(args.reid_model)
    features = model_features(model, image_size=(cfg.input.height, cfg.input.width))
    g_feats = features([r.path for r in train])
    g_pids, g_cams = np.array([r.pid for r in train]), np.array([r.camid for r in train])
    picked = np.random.default_rng(0).choice(len(train), min(args.images, len(train)), replace=False)
    queries = [train[i] for i in picked]

    def score(name: str, q_feats: np.ndarray, pids, cams) -> dict:
        m = evaluate(q_feats, g_feats, np.asarray(pids), g_pids, np.asarray(cams), g_cams, max_rank=20)
        row = {"variant": name, "rank1": round(m["rank1"], 2), "mAP": round(m["mAP"], 2),
               "queries": m["num_valid_queries"]}
        print(json.dumps(row), flush=True)
        return row

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, change in controls(tuple(args.gan_size)).items():
            paths = []
            for r in queries:
                with Image.open(r.path) as im:
                    out = Path(tmp) / f"{name}_{Path(r.path).name}"
                    change(im.convert("RGB")).save(out)
                paths.append(str(out))
            rows.append(score(name, features(paths), [r.pid for r in queries], [r.camid for r in queries]))
    if args.camstyle:
        chosen = {Path(r.path).stem for r in queries}
        fakes = [f for f in read_camstyle(args.camstyle) if source_stem(f) in chosen]
        fakes = [fakes[i] for i in sorted(np.random.default_rng(0).choice(len(fakes), min(len(fakes), len(queries)),
                                                                          replace=False))]
        rows.append(score("camstyle", features([f.path for f in fakes]), [f.pid for f in fakes],
                          [f.src_camid for f in fakes]))
    print(f"{len(rows)} rows in {time.time() - start:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))


if __name__ == "__main__":
    main()
