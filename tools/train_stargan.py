#!/usr/bin/env python
"""Train StarGAN (Choi et al., CVPR 2018) with each camera of a re-ID data set as one domain, or the
paper's face settings (CelebA attributes, RaFD expressions, both with the mask vector).

Writes a numbered run folder under `out_root` (config.yaml, log.txt, stats.jsonl, tb/, samples/,
checkpoints/{last,generator,discriminator}.pt, summary.json).

Example::

    python tools/make_synthetic.py --out data/synthetic --preset demo
    python tools/train_stargan.py --config configs/stargan/synthetic_cpu.yaml --set data.root=data/synthetic
    python tools/train_stargan.py --config configs/stargan/market.yaml --set data.root=data/Market-1501 --dry-run
"""

import sys

from reid_stargan.cli.train_stargan import cli

if __name__ == "__main__":
    sys.exit(cli())
