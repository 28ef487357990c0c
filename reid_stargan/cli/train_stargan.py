"""Command line of StarGAN training (see `reid_stargan.gan.trainer`).

Examples::

    python tools/train_stargan.py --config configs/stargan/synthetic_cpu.yaml --set data.root=data/synthetic
    python tools/train_stargan.py --config configs/stargan/market.yaml --set data.root=data/market --dry-run
    python tools/train_stargan.py --config configs/stargan/market.yaml --resume runs/00003-stargan-market
    torchrun --nproc_per_node 4 tools/train_stargan.py --config configs/stargan/market.yaml --set data.root=...

Errors end as one line `error: ...` with exit code 2 (`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reid_stargan.cli.common import add_debug_flag, run_cli
from reid_stargan.config import ConfigError, add_config_args, dump_config_yaml, load_config
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.trainer import TOOL, train_stargan
from reid_stargan.utils.rundir import claim_run_dir, discard_unstarted_run, make_run_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train StarGAN with cameras (or face attributes) as domains.")
    add_config_args(parser)
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in this folder exactly")
    parser.add_argument("--run-dir", metavar="DIR", help="train into this folder (default: a new numbered one)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many iterations")
    parser.add_argument("--allow-empty-cameras", action="store_true",
                        help="train although some cameras of data.num_cameras have no training image")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar / log echo")
    add_debug_flag(parser)
    return parser


def check_domains(cfg: StarGANConfig, allow_empty: bool) -> int:
    """Parse the data sets' file names (no pixels) and refuse what StarGAN cannot train on.

    A re-ID set needs at least two cameras with training images (one domain: nothing to translate);
    a camera with no training image is an empty domain, refused unless `allow_empty`. Unmatched file
    names are reported. Returns the discriminator's domain count over all data sets.
    """
    from reid_stargan.data.datasets import DatasetError, build_dataset
    from reid_stargan.data.records import ReidDataset

    total = 0
    for dc in cfg.datasets:
        if not dc.root:
            raise ConfigError(f"data set '{dc.name}' has an empty root: set it with --set data.root=PATH")
        ds = build_dataset(dc.name, dc.root, num_cameras=dc.num_cameras, bad_names=dc.bad_names,
                           with_distractors=False, use_val=dc.use_val, attrs=dc.attrs,
                           num_test=cfg.augment.celeba_num_test)
        if not isinstance(ds, ReidDataset):
            total += len(ds.domain_names)
            continue
        if (note := ds.skipped_note()) is not None:
            print(f"warning: {note}", file=sys.stderr)
        present = sorted({r.camid for r in ds.train})
        if len(present) < 2:
            raise DatasetError(f"{dc.root}: the training split has images of {len(present)} camera(s) "
                               f"({', '.join(f'c{c + 1}' for c in present)}); StarGAN needs two or more "
                               "cameras to translate between")
        empty = ds.cameras_without_training_images()
        if empty and not allow_empty:
            raise DatasetError(f"{dc.root}: camera(s) {', '.join(f'c{c + 1}' for c in empty)} of c1..c{ds.num_cameras} "
                               "have no training image (empty StarGAN domains); fix data.num_cameras or the files, "
                               "or pass --allow-empty-cameras")
        total += ds.num_cameras
    return total


def check_resume_domains(run_dir: Path, domains: int) -> None:
    """A resume onto data with another camera (domain) count names both counts."""
    from reid_stargan.utils.io import torch_load

    saved = torch_load(run_dir / "checkpoints" / "last.pt")
    meta = saved.get("meta", {}) if isinstance(saved, dict) else {}
    before = meta.get("d_c_dim")
    if before is not None and before != domains:
        raise ValueError(f"{run_dir}: the checkpoint was trained with {before} domains (cameras), the data now has "
                         f"{domains}; resume on the same data, or start a new run")


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
    domains = check_domains(cfg, args.allow_empty_cameras)  # before any folder is made
    created = None
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            sys.exit(f"--resume {run_dir}: no checkpoints/last.pt there")
        claim_run_dir(run_dir, TOOL, write=False)
        check_resume_domains(run_dir, domains)
    elif args.run_dir:
        run_dir = Path(args.run_dir)
        claim_run_dir(run_dir, TOOL, write=False)
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.exit("under torchrun pass --run-dir (all ranks must write to the same folder)")
    else:
        run_dir = created = make_run_dir(cfg.out_root, cfg.tag)
    try:
        path = train_stargan(cfg, run_dir, resume=True, progress=not args.no_progress, max_steps=args.max_steps)
    except BaseException:
        if created is not None:
            discard_unstarted_run(created)  # a failed start leaves no empty numbered folder behind
        raise
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run folder: {run_dir}\ngenerator: {path}")
    return path


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
