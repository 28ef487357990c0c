#!/usr/bin/env python
"""Hold out training identities of a Market-layout set as query / gallery: tune on training data, not the test split.

Example::

    python tools/make_holdout_split.py --root ../shared/data/cuhk03_market --out runs/cuhk03_val --num-ids 100
"""

import sys

from reid_stargan.cli.make_holdout_split import cli

if __name__ == "__main__":
    sys.exit(cli())
