#!/usr/bin/env python
"""Print (and draw) the top-k gallery images of a few query images; exact FAISS search by default.

Example::

    python tools/query_gallery.py --checkpoint model.pt --gallery gallery.npz --images q1.jpg q2.jpg \
        --topk 10 --draw top10.png
"""

import sys

from reid_stargan.cli.query_gallery import cli

if __name__ == "__main__":
    sys.exit(cli())
