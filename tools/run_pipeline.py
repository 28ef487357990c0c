#!/usr/bin/env python
"""The main job: synthetic data (when asked) -> StarGAN -> CamStyle set -> re-ID baseline and
+CamStyle -> evaluation -> report (report.md, report.json, PNGs in the run folder).

Example::

    python tools/run_pipeline.py --config configs/pipeline/synthetic_cpu.yaml --seeds 3

See `reid_stargan/cli/run_pipeline.py` for every option.
"""

import sys

from reid_stargan.cli.run_pipeline import cli

if __name__ == "__main__":
    sys.exit(cli())
