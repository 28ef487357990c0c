"""Command line of re-ID training (baseline / CamStyle / HHL); see `reid_stargan.reid.trainer`.

Example::

    python tools/train_reid.py --config configs/reid/synthetic_cpu_baseline.yaml --set data.root=data/synthetic
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reid_stargan.config import ConfigError, add_config_args, dump_config_yaml, load_config
from reid_stargan.reid.config import ReidConfig
from reid_stargan.utils.distributed import init_distributed, is_main_process


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a re-ID model: baseline, +CamStyle or HHL.")
    add_config_args(parser)
    parser.add_argument("--camstyle", default=None, metavar="DIR_OR_MANIFEST",
                        help="generated CamStyle images (overrides camstyle.root / hhl.camstyle_root)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue this run folder from checkpoints/last.pt (its saved config is used)")
    parser.add_argument("--run-dir", default=None, help="train into this folder instead of a new numbered one")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars or console log")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(ReidConfig, args.config, args.overrides)
    except (ConfigError, ValueError) as exc:
        sys.exit(f"config error: {exc}")
    if args.dry_run:
        sys.stdout.write(dump_config_yaml(cfg))
        return {}
    from reid_stargan.reid.trainer import train_reid
    from reid_stargan.utils.rundir import make_run_dir

    info = init_distributed(cfg.train.device)
    run_dir = args.resume or args.run_dir
    if run_dir is None:
        # Rank 0 names the folder; the others learn it (torchrun ranks must share one folder).
        if info.is_main:
            run_dir = str(make_run_dir(cfg.out_root, cfg.tag or f"{Path(cfg.data.root).name or cfg.data.name}-{cfg.train.mode}"))
        if info.distributed:
            import torch.distributed as dist

            box = [run_dir]
            dist.broadcast_object_list(box, src=0)
            run_dir = box[0]
    from reid_stargan.data.datasets import DatasetError
    from reid_stargan.reid.camstyle_set import CamStyleMismatchError

    try:
        metrics = train_reid(cfg, run_dir, camstyle=args.camstyle, resume=True, progress=not args.no_progress)
    except (DatasetError, CamStyleMismatchError, FileNotFoundError) as exc:
        sys.exit(f"error: {exc}")
    if is_main_process():
        shown = {k: round(metrics[k], 2) for k in ("mAP", "rank1", "rank5", "rank10", "mINP") if k in metrics}
        print(json.dumps({"run_dir": str(run_dir), **shown}))
    from reid_stargan.utils.distributed import cleanup

    cleanup()
    return metrics


if __name__ == "__main__":
    main()
