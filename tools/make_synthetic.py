#!/usr/bin/env python
"""Write the built-in synthetic multi-camera re-ID benchmark in Market-1501 layout.

Identities with procedurally drawn appearance are seen by 2-3 of 6 cameras, each camera with its own
style (colour cast, gamma, contrast, saturation, blur, noise, background). Same seed -> same bytes.
Besides the images it writes ``synthetic_meta.json`` and ``meta.jsonl`` so any image can be
re-rendered in any camera (``reid_stargan.data.synthetic.true_rendering``).

Example::

    python tools/make_synthetic.py --out data/synthetic --preset demo --seed 0
    python tools/make_synthetic.py --out data/syn_tiny --preset tiny --num-cameras 3 --overwrite
"""

import sys

from reid_stargan.cli.make_synthetic import cli

if __name__ == "__main__":
    sys.exit(cli())
