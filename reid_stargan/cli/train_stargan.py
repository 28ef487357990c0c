"""Command line of StarGAN training (see `reid_stargan.gan.trainer`).

Examples::

    python tools/train_stargan.py --config configs/stargan/synthetic_cpu.yaml --set data.root=data/synthetic
    python tools/train_stargan.py --config configs/stargan/market.yaml --set data.root=data/market --dry-run
    python tools/train_stargan.py --resume runs/00003-stargan-market
    python tools/train_stargan.py --resume runs/00003-stargan-market --set train.num_iters=300000
    torchrun --nproc_per_node 4 tools/train_stargan.py --config configs/stargan/market.yaml --set data.root=...

A resume runs on the run's saved config. `--set` may change keys that do not define the models or
the data order; each change is printed and appended to the run's `config_changes.jsonl`. A
`--config` given with `--resume` must agree with the saved config except where `--set` says otherwise.
Errors end as one line `error: ...` with exit code 2 (`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reid_stargan.cli.common import add_debug_flag, discard_if_failed, new_run_dir, run_cli
from reid_stargan.config import ConfigError, add_config_args, config_to_dict, dump_config_yaml, load_config
from reid_stargan.data.records import ReidDataset
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.data import check_camera_domains
from reid_stargan.gan.trainer import FROZEN_KEYS, TOOL, train_stargan
from reid_stargan.utils import run as lifecycle
from reid_stargan.utils.distributed import init_distributed
from reid_stargan.utils.io import torch_load
from reid_stargan.utils.rundir import claim_run_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train StarGAN with cameras (or face attributes) as domains.")
    add_config_args(parser, config_required=False)
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the run in this folder exactly, on its saved config (--config not needed)")
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
    total = 0
    for dc in cfg.datasets:
        ds = dc.build(train_only=True)
        if not isinstance(ds, ReidDataset):
            total += len(ds.domain_names)
            continue
        if (note := ds.skipped_note()) is not None:
            print(f"warning: {note}", file=sys.stderr)
        check_camera_domains(ds, dc.root, allow_empty or dc.allow_empty_cameras)
        if allow_empty:
            dc.allow_empty_cameras = True  # the library's own check (trainer, pipeline) sees it too
        total += ds.num_cameras
    return total


def resume_config(run_dir: Path, saved: dict, config: str | None, overrides: list[str]) -> tuple[StarGANConfig, dict]:
    """The config a resume runs on: the run's saved one with the `--set` overrides; -> (cfg, changes).

    Refused: an override of a frozen key (models, data order), and a `--config` whose values differ
    from the saved ones where `--set` does not say so (they would otherwise be taken silently).
    """
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise ValueError(f"{run_dir / 'checkpoints' / 'last.pt'}: no saved config in it; not a train_stargan checkpoint")
    cfg, changes = lifecycle.resume_config(StarGANConfig, saved["config"], None, FROZEN_KEYS,
                                           Path(f"--resume {run_dir}"), overrides)
    if config is not None:
        given = lifecycle.flatten(config_to_dict(load_config(StarGANConfig, config, overrides)))
        new = lifecycle.flatten(config_to_dict(cfg))
        asked = {item.split("=", 1)[0].strip() for item in overrides}
        differ = [f"{k}: run {new.get(k)!r} vs {config} {given.get(k)!r}" for k in sorted(set(given) | set(new))
                  if given.get(k) != new.get(k) and k not in asked and k != "train.seed"]
        if differ:
            raise ValueError(f"--resume {run_dir} runs on the run's saved config, and --config differs from it: "
                             + "; ".join(differ[:6]) + ("; ..." if len(differ) > 6 else "")
                             + ". Change a key on purpose with --set KEY=VALUE, or drop --config")
    return cfg, changes


def check_resume_domains(run_dir: Path, domains: int, saved: dict) -> None:
    """A resume onto data with another camera (domain) count names both counts."""
    before = saved.get("meta", {}).get("d_c_dim") if isinstance(saved, dict) else None
    if before is not None and before != domains:
        raise ValueError(f"{run_dir}: the checkpoint was trained with {before} domains (cameras), the data now has "
                         f"{domains}; resume on the same data, or start a new run")


def main(argv: list[str] | None = None) -> Path | None:
    args = build_parser().parse_args(argv)
    if args.config is None and args.resume is None:
        sys.exit("give --config FILE (or --resume RUN_DIR)")
    saved, changes = None, {}
    is_rank0 = int(os.environ.get("RANK", "0")) == 0
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            sys.exit(f"--resume {run_dir}: no checkpoints/last.pt there")
        claim_run_dir(run_dir, TOOL, write=False)
        saved = torch_load(run_dir / "checkpoints" / "last.pt")
    try:
        if saved is not None:
            cfg, changes = resume_config(run_dir, saved, args.config, args.overrides)
        else:
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
        check_resume_domains(run_dir, domains, saved)
        if is_rank0:  # train_stargan logs and records them in the run folder
            for key, (a, b) in changes.items():
                print(f"resume: {key}: {a!r} -> {b!r}", file=sys.stderr)
    elif args.run_dir:
        run_dir = Path(args.run_dir)
        claim_run_dir(run_dir, TOOL, write=False)
    else:
        run_dir = new_run_dir(init_distributed(cfg.runtime.device), cfg.out_root, cfg.tag)
        created = run_dir if is_rank0 else None  # rank 0 cleans a failed start
    with discard_if_failed(created):
        path = train_stargan(cfg, run_dir, resume=True, progress=not args.no_progress, max_steps=args.max_steps,
                             overrides=args.overrides if args.resume else ())
    if is_rank0:
        print(f"run folder: {run_dir}\ngenerator: {path}")
    return path


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
