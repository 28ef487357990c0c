"""Command line of StarGAN training (see `reid_stargan.gan.trainer`).

Examples::

    python tools/train_stargan.py --config configs/stargan/synthetic_cpu.yaml --set data.root=data/synthetic
    python tools/train_stargan.py --config configs/stargan/market.yaml --set data.root=data/market --dry-run
    python tools/train_stargan.py --config configs/stargan/market.yaml --resume runs/00003-stargan-market
    torchrun --nproc_per_node 4 tools/train_stargan.py --config configs/stargan/market.yaml --set data.root=...
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reid_stargan.config import ConfigError, add_config_args, dump_config_yaml, load_config
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.trainer import NonFiniteLossError, train_stargan
from reid_stargan.utils.rundir import make_run_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train StarGAN with cameras (or face attributes) as domains.")
    add_config_args(parser)
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in this folder exactly")
    parser.add_argument("--run-dir", metavar="DIR", help="train into this folder (default: a new numbered one)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many iterations")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar / log echo")
    return parser


def main(argv: list[str] | None = None) -> Path | None:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(StarGANConfig, args.config, args.overrides)
        cfg.validate()
    except (ConfigError, ValueError) as exc:
        sys.exit(f"config error: {exc}")
    if args.dry_run:
        print(dump_config_yaml(cfg), end="")
        return None
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            sys.exit(f"--resume {run_dir}: no checkpoints/last.pt there")
    elif args.run_dir:
        run_dir = Path(args.run_dir)
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.exit("under torchrun pass --run-dir (all ranks must write to the same folder)")
    else:
        run_dir = make_run_dir(cfg.out_root, cfg.tag)
    try:
        path = train_stargan(cfg, run_dir, resume=True, progress=not args.no_progress, max_steps=args.max_steps)
    except NonFiniteLossError as exc:
        sys.exit(str(exc))
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run folder: {run_dir}\ngenerator: {path}")
    return path


if __name__ == "__main__":
    main()
