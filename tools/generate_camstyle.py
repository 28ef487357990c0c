#!/usr/bin/env python
"""Render every training image in every camera's style (the CamStyle augmentation set).

Example::

    python tools/generate_camstyle.py --checkpoint runs/00000-stargan-synthetic/checkpoints/generator.pt \\
        --data-root data/synthetic

Multi-GPU: `torchrun --nproc_per_node 4 tools/generate_camstyle.py ...` (each rank takes a shard);
several machines: `--shard i/n`. See `reid_stargan/cli/generate_camstyle.py` for every option.
"""

import sys

from reid_stargan.cli.generate_camstyle import cli

if __name__ == "__main__":
    sys.exit(cli())
