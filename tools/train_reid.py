#!/usr/bin/env python
"""Train a re-ID model (ResNet-50 triplet baseline, +CamStyle, or HHL) and report mAP / CMC.

Writes a numbered run folder under `out_root` (config.yaml, log.txt, stats.jsonl, TensorBoard,
checkpoints/last.pt + model.pt, metrics.json). A stopped run continues with --resume RUN_DIR.
Multi-GPU: launch with torchrun; the P x K batch is per process.

Example::

    python tools/make_synthetic.py --out data/synthetic --preset demo
    python tools/train_reid.py --config configs/reid/synthetic_cpu_baseline.yaml
    python tools/train_reid.py --config configs/reid/synthetic_cpu_camstyle.yaml --camstyle runs/00001-camstyle/images
    torchrun --nproc_per_node 4 tools/train_reid.py --config configs/reid/market_camstyle.yaml --camstyle CAMSTYLE_DIR
"""

import sys

from reid_stargan.cli.train_reid import cli

if __name__ == "__main__":
    sys.exit(cli())
