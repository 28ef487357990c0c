"""How much a trained re-ID model's ranking depends on the camera: same- vs cross-camera retrieval.

For each query of a synthetic pipeline run, three galleries: only the query's own camera, only the
other cameras, and the standard protocol (all cameras, same identity + same camera removed). A model
that keys on camera style retrieves well within a camera and ranks same-camera strangers above the
true cross-camera match under the standard protocol.

    python bench/camera_bias.py runs/00006-pipeline-synthetic_cpu
"""

from __future__ import annotations

import numpy as np
import torch

from reid_stargan.data.synthetic import load_dataset
from reid_stargan.eval.evaluator import evaluate
from reid_stargan.eval.features import extract_features
from reid_stargan.reid.checkpoint import load_reid_model

NO_CAMERA = np.array([-5])  # a query camera no gallery image has: the protocol then removes nothing


def restricted(qf, gf, qp, gp, qc, gc, same_camera: bool) -> tuple[float, float]:
    """mAP / rank-1 with each query's gallery cut to its own camera (or to the other cameras)."""
    aps, rank1 = [], []
    for i in range(len(qp)):
        kept = (gc == qc[i]) if same_camera else (gc != qc[i])
        pids = np.where(kept, gp, -1)  # pid -1 = junk: left out of the ranking
        res = evaluate(qf[i:i + 1], gf, qp[i:i + 1], pids, NO_CAMERA, gc, max_rank=1)
        if res["num_valid_queries"]:
            aps.append(res["mAP"])
            rank1.append(res["rank1"])
    return round(float(np.mean(aps)), 2), round(float(np.mean(rank1)), 2)


def main(run: str) -> None:
    torch.set_num_threads(1)
    ds = load_dataset(f"{run}/data/synthetic")
    for arm in ("baseline", "camstyle"):
        model, cfg = load_reid_model(f"{run}/reid/{arm}-s0/checkpoints/model.pt")
        size = (cfg.input.height, cfg.input.width)
        qf, qp, qc = extract_features(model, ds.query, size, progress=False)
        gf, gp, gc = extract_features(model, ds.gallery, size, progress=False)
        standard = evaluate(qf, gf, qp, gp, qc, gc)
        print(f"{arm}: own camera only {restricted(qf, gf, qp, gp, qc, gc, True)}, "
              f"other cameras only {restricted(qf, gf, qp, gp, qc, gc, False)}, "
              f"standard {round(standard['mAP'], 2), round(standard['rank1'], 2)}  (mAP, rank-1)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a synthetic pipeline run folder (runs/NNNNN-pipeline-synthetic_cpu)")
    main(parser.parse_args().run)
