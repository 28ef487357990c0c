#!/usr/bin/env python
"""How often a re-ID model's top-1 match comes from the query's own camera, on a Market-layout test split.

Under the standard protocol the true match is never in the query's own camera (same id + same
camera is removed), so a model whose top-1 comes from there far more often than that camera's share
of the gallery keys on camera style rather than on the person.

    python bench/own_camera_top1.py --data-root ../shared/data/cuhk03_market --every 3 \
        runs/exp/base/checkpoints/model.pt runs/exp/camstyle/checkpoints/model.pt
"""

from __future__ import annotations

import argparse

import numpy as np

from reid_stargan.data.datasets import build_dataset
from reid_stargan.eval.features import extract_features
from reid_stargan.reid.checkpoint import load_reid_model


def own_camera_top1(model, size, query, gallery) -> dict:
    qf, qp, qc = extract_features(model, query, image_size=size, batch_size=128, flip=False, progress=False)
    gf, gp, gc = extract_features(model, gallery, image_size=size, batch_size=128, flip=False, progress=False)
    sim = qf @ gf.T  # (Q, G) cosine: the features are L2-normalised
    sim[(qp[:, None] == gp[None]) & (qc[:, None] == gc[None])] = -np.inf  # the protocol's removal
    top = sim.argmax(1)
    return {"own_camera_top1": 100.0 * float(np.mean(gc[top] == qc)),
            "own_camera_gallery_share": 100.0 * float(np.mean([np.mean(gc == c) for c in qc])),
            "rank1_no_flip": 100.0 * float(np.mean(gp[top] == qp)), "queries": len(query)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", help="model.pt files of train_reid runs")
    p.add_argument("--data-root", required=True)
    p.add_argument("--every", type=int, default=1, help="use every N-th query (speed)")
    args = p.parse_args(argv)
    data = build_dataset("market_layout", args.data_root)
    query = data.query[:: args.every]
    for path in args.models:
        model, cfg = load_reid_model(path)
        row = own_camera_top1(model, (cfg.input.height, cfg.input.width), query, data.gallery)
        print(f"{path}: top-1 from the query's own camera {row['own_camera_top1']:.1f} % (that camera holds "
              f"{row['own_camera_gallery_share']:.1f} % of the gallery); rank-1 without flip {row['rank1_no_flip']:.1f} %")


if __name__ == "__main__":
    main()
