"""How much a trained re-ID model's ranking depends on the camera: same-camera vs cross-camera retrieval.

For each query of a synthetic pipeline run, three galleries: only the query's own camera, only the
other cameras, and the standard protocol (all cameras, same identity + same camera removed). A model
that keys on camera style retrieves well within a camera and ranks same-camera strangers above the
true cross-camera match under the standard protocol.

    python bench/camera_bias.py runs/00006-pipeline-synthetic_cpu
"""
import sys

import numpy as np
import torch

torch.set_num_threads(1)
from reid_stargan.data.synthetic import load_dataset
from reid_stargan.eval.evaluator import evaluate
from reid_stargan.eval.features import extract_features
from reid_stargan.reid.checkpoint import load_reid_model

run = sys.argv[1]
ds = load_dataset(f"{run}/data/synthetic")
for arm in ("baseline", "camstyle"):
    model, cfg = load_reid_model(f"{run}/reid/{arm}-s0/checkpoints/model.pt")
    size = (cfg.input.height, cfg.input.width)
    qf, qp, qc = extract_features(model, ds.query, size, progress=False)
    gf, gp, gc = extract_features(model, ds.gallery, size, progress=False)
    cross = evaluate(qf, gf, qp, gp, qc, gc)
    # Same camera: a query may only match gallery images of its own camera (relabel others' cameras so the
    # protocol keeps them, and drop them by giving them junk pid -1).
    out = {}
    for name, keep in (("same-camera", lambda q: gc == q), ("cross-camera", lambda q: gc != q)):
        aps, r1 = [], []
        for i in range(len(qp)):
            m = keep(qc[i])
            g_p = np.where(m, gp, -1)
            res = evaluate(qf[i:i+1], gf, qp[i:i+1], g_p, np.array([-5]), gc, max_rank=1)
            if res["num_valid_queries"]:
                aps.append(res["mAP"]); r1.append(res["rank1"])
        out[name] = (round(float(np.mean(aps)), 2), round(float(np.mean(r1)), 2), len(aps))
    print(arm, "standard", round(cross["mAP"], 2), round(cross["rank1"], 2), out)
