"""Command line of `reid_stargan.data.holdout`: a validation split of held-out training identities.

Example::

    python tools/make_holdout_split.py --root ../shared/data/cuhk03_market --out runs/cuhk03_val --num-ids 100
    python tools/train_reid.py --config configs/reid/cuhk03_cpu_baseline.yaml --set data.root=runs/cuhk03_val
"""

from __future__ import annotations

import argparse
import json

from reid_stargan.cli.common import add_debug_flag, run_cli
from reid_stargan.data.holdout import write_holdout_split


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Hold out training identities as a query / gallery split "
                                            "(symbolic links), to tune without the test split.")
    p.add_argument("--root", required=True, help="a Market-layout data set")
    p.add_argument("--out", required=True, help="new folder for the split")
    p.add_argument("--num-ids", type=int, default=100, help="training identities to hold out")
    p.add_argument("--seed", type=int, default=0)
    add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    info = write_holdout_split(args.root, args.out, num_ids=args.num_ids, seed=args.seed)
    print(json.dumps({k: v for k, v in info.items() if k != "held_out_ids"}))
    return info


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)
