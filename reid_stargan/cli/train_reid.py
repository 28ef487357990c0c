"""Command line of re-ID training (baseline / CamStyle / HHL); see `reid_stargan.reid.trainer`.

Example::

    python tools/train_reid.py --config configs/reid/synthetic_cpu_baseline.yaml --set data.root=data/synthetic

Errors end as one line `error: ...` with exit code 2 (`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reid_stargan.cli.common import add_debug_flag, discard_if_failed, new_run_dir, run_cli
from reid_stargan.config import ConfigError, add_config_args, dump_config_yaml, load_config
from reid_stargan.reid.config import ReidConfig
from reid_stargan.utils.distributed import cleanup, init_distributed, is_main_process
from reid_stargan.utils.rundir import claim_run_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a re-ID model: baseline, +CamStyle or HHL.")
    add_config_args(parser, example="optim.lr=3.5e-4 train.seed=1")
    parser.add_argument("--camstyle", default=None, metavar="DIR_OR_MANIFEST",
                        help="generated CamStyle images (overrides camstyle.root / hhl.camstyle_root)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue this run folder from checkpoints/last.pt on its saved config; --set may "
                             "change keys that do not define the model or the batches (recorded in "
                             "config_changes.jsonl)")
    parser.add_argument("--run-dir", default=None, help="train into this folder instead of a new numbered one")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars or console log")
    add_debug_flag(parser)
    return parser


def check_resume_folder(run_dir: Path) -> None:
    """--resume needs a run that can be continued (or is finished): never start from scratch silently."""
    from reid_stargan.reid.trainer import METRICS, TOOL

    if not run_dir.is_dir():
        raise FileNotFoundError(f"--resume {run_dir}: no such folder (to start a new run, drop --resume)")
    claim_run_dir(run_dir, TOOL, write=False)
    if not (run_dir / "checkpoints" / "last.pt").is_file() and not (run_dir / METRICS).is_file():
        raise FileNotFoundError(f"--resume {run_dir}: no checkpoints/last.pt there (nothing to resume; to start "
                                "a new run in it, use --run-dir)")


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(ReidConfig, args.config, args.overrides)
    except (ConfigError, ValueError) as exc:
        sys.exit(f"config error: {exc}")
    if args.dry_run:
        sys.stdout.write(dump_config_yaml(cfg))
        return {}
    from reid_stargan.reid.trainer import TOOL, train_reid

    if args.resume:
        check_resume_folder(Path(args.resume))
    elif args.run_dir:
        claim_run_dir(args.run_dir, TOOL, write=False)
    info = init_distributed(cfg.train.device)
    run_dir, created = args.resume or args.run_dir, None
    if run_dir is None:
        run_dir = new_run_dir(info, cfg.out_root,
                              cfg.tag or f"{Path(cfg.data.root).name or cfg.data.name}-{cfg.train.mode}")
        created = run_dir if info.is_main else None
    with discard_if_failed(created):
        # A resume runs on the run's saved config; only the keys --set names change (and are recorded).
        metrics = train_reid(cfg, run_dir, camstyle=args.camstyle, resume=True, progress=not args.no_progress,
                             overrides=args.overrides if args.resume else ())
    if is_main_process():
        shown = {k: round(metrics[k], 2) for k in ("mAP", "rank1", "rank5", "rank10", "mINP") if k in metrics}
        print(json.dumps({"run_dir": str(run_dir), **shown}))
    cleanup()
    return metrics


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
