#!/usr/bin/env python
"""Embed images with a trained re-ID model and write features (.npz) for evaluate_reid / query_gallery.

Example::

    python tools/extract_features.py --checkpoint runs/00003-reid/checkpoints/model.pt \
        --data-root ../shared/data/cuhk03_market --out feats.npz
    python tools/extract_features.py --checkpoint model.pt --images my_photos/ --out gallery.npz
"""

import sys

from reid_stargan.cli.extract_features import cli

if __name__ == "__main__":
    sys.exit(cli())
