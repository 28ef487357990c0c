#!/usr/bin/env python
"""Evaluate re-ID features or a trained model: mAP, CMC rank-1/5/10/20, mINP -> metrics.json.

Example::

    python tools/evaluate_reid.py --features feats.npz --out runs/eval
    python tools/evaluate_reid.py --features feats.npz --rerank --metric euclidean   # mAP and mAP_trapezoid both
    python tools/evaluate_reid.py --checkpoint model.pt --set data.name=market1501 data.root=/data/market1501 --visualize 10

The npz holds q_feats, g_feats, q_pids, g_pids, q_camids, g_camids (and optional q_paths, g_paths).
"""

import sys

from reid_stargan.cli.evaluate_reid import cli

if __name__ == "__main__":
    sys.exit(cli())
