"""The main job in one command: data -> StarGAN -> CamStyle -> re-ID baseline / +CamStyle -> report.

Example (the CPU demo on the built-in synthetic set, what `make demo` runs)::

    python tools/run_pipeline.py --config configs/pipeline/synthetic_cpu.yaml
    python tools/run_pipeline.py --config configs/pipeline/synthetic_cpu.yaml --seeds 3
    python tools/run_pipeline.py --config configs/pipeline/synthetic_cpu.yaml --resume runs/00004-pipeline-synthetic_cpu

A stopped run continues with --resume: finished stages are skipped. Each stage records the settings
it ran with (RUN_DIR/stages/<stage>.json); a resume whose config (--config, --set, or an edited tool
config file) gives a started stage other settings is refused, listing the differences, and nothing
is run or rewritten. Worker and thread counts and log intervals may change. With --dry-run, --resume
prints the stage table: each stage, done or to run, and its output:

    python tools/run_pipeline.py --resume runs/00004-pipeline-synthetic_cpu --dry-run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reid_stargan.cli.common import add_debug_flag, discard_if_failed, run_cli
from reid_stargan.config import ConfigError, add_config_args, dump_config_yaml, load_config, replace_config
from reid_stargan.pipeline.config import PipelineConfig
from reid_stargan.pipeline.run import Pipeline, resolve_tool_paths
from reid_stargan.utils.rundir import make_run_dir


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, config_required=False, example="generate.keep_detail=true")
    p.add_argument("--seeds", type=int, default=None,
                   help="repeat the re-ID stages with N seeds (0..N-1) and report mean and std")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue a stopped pipeline run (its config.yaml is used unless --config is given)")
    p.add_argument("--no-progress", action="store_true")
    add_debug_flag(p)
    return p


def format_status(rows: list[dict]) -> str:
    """The stage table: one line per stage, done or to run, and its output."""
    width = max(len(r["stage"]) for r in rows)
    return "\n".join(f"{r['stage']:<{width}}  {'done  ' if r['done'] else 'to run'}  {r['output']}" for r in rows)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.config is None and args.resume is None:
        print("error: give --config FILE (or --resume RUN_DIR)", file=sys.stderr)
        return 2
    config_path = Path(args.config) if args.config else Path(args.resume) / "config.yaml"
    try:
        cfg = load_config(PipelineConfig, config_path, args.overrides)
        if args.seeds is not None:
            cfg = replace_config(cfg, [f"seeds={list(range(args.seeds))}"])
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    # Tool config paths are resolved against the pipeline config's folder once, so the run folder's
    # config.yaml is enough to resume.
    resolved = resolve_tool_paths(cfg, config_path.resolve().parent)
    if args.dry_run:
        print(dump_config_yaml(cfg))
        if args.resume:  # what a resume would do: which stages are done, which would run
            print(format_status(Pipeline(resolved, Path(args.resume), progress=False).status()))
        return 0
    created = None if args.resume else make_run_dir(resolved.out_root, f"pipeline-{resolved.name}")
    run_dir = Path(args.resume) if args.resume else created
    pipeline = Pipeline(resolved, run_dir, progress=not args.no_progress)
    with discard_if_failed(created):
        report = pipeline.run()
    print(report["markdown_table"])
    print(f"\nreport: {run_dir / 'report.md'}")
    return 0


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
