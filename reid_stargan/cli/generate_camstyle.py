"""Render every training image in every camera's style with a trained StarGAN generator.

Examples (after tools/train_stargan.py on the synthetic set)::

    python tools/generate_camstyle.py --checkpoint runs/00000-stargan-synthetic/checkpoints/generator.pt \\
        --data-root data/synthetic --naming camstyle
    python tools/generate_camstyle.py --checkpoint ... --config configs/pipeline/cuhk03_cpu.yaml \\
        --set generate.keep_detail=true --dry-run

Options come from the config's `generate:` section (GenerateOptions, as the pipeline reads it),
then the flags given, then --set; the resolved options are written to the output folder's config.yaml.

Writes `<data-root>/bounding_box_train_camstyle/` (or --out) with the images, `manifest.jsonl`,
`camstyle_info.json` and `summary.json`. Under torchrun each rank takes its own shard. An --out inside a
data split, a folder of foreign images, or cameras without training images are refused; errors end
as one line `error: ...` with exit code 2 (`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle
from reid_stargan.cli.common import add_debug_flag, int_at_least, run_cli
from reid_stargan.config import apply_overrides, dump_config_yaml, from_dict, load_yaml_tree
from reid_stargan.data.config import DataConfig
from reid_stargan.data.datasets import DatasetError


@dataclass
class GenerateJob:
    """What one generate_camstyle call reads: a data section and the generation options."""

    data: DataConfig = field(default_factory=DataConfig)
    generate: GenerateOptions = field(default_factory=GenerateOptions)


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--shard must look like i/n (e.g. 0/4), got '{text}'") from exc
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= i < n")
    return index, count


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="generator file: this toolkit's generator.pt / last.pt, or an official *-G.ckpt")
    p.add_argument("--data-root", help="a data set folder in Market-1501 layout (sets data.root)")
    p.add_argument("--config", help="a YAML file with a `data:` section (or a data section at top level) and an "
                                    "optional `generate:` section (GenerateOptions; a pipeline config works)")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="dotted overrides of the data / generate sections, e.g. --set generate.keep_detail=true")
    p.add_argument("--dry-run", action="store_true", help="print the resolved data and generate sections and exit")
    p.add_argument("--out", help="output folder (default: bounding_box_train_camstyle beside the train folder)")
    # The flags below set generate.<dest> (a GenerateOptions field); unset, the config's value (or the default) holds.
    flag = dict(default=argparse.SUPPRESS)
    p.add_argument("--naming", choices=["camstyle", "hhl"], **flag)
    p.add_argument("--include-own", action="store_true", help="also render each image in its own camera", **flag)
    p.add_argument("--targets-per-image", type=int_at_least(0), metavar="K", **flag,
                   help="render each image in K target cameras (chosen from its file name) instead of all")
    p.add_argument("--resize-back", action="store_true", help="write outputs at the source image's size", **flag)
    p.add_argument("--keep-detail", action="store_true", **flag,
                   help="write source + upsampled (G(x) - x) at the source's size: the style change on the "
                        "source's own detail (for generators trained below the source resolution)")
    p.add_argument("--format", dest="image_format", choices=["jpg", "png"], **flag)
    p.add_argument("--jpeg-quality", type=int_at_least(1, 100), **flag)
    p.add_argument("--batch-size", type=int_at_least(1), help="source images per forward pass", **flag)
    p.add_argument("--workers", type=int_at_least(1), help="decode / encode threads", **flag)
    p.add_argument("--shard", type=parse_shard, default=None, metavar="I/N",
                   help="process shard I of N (torchrun ranks shard automatically)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), **flag,
                   help="generator input size, only needed for official *-G.ckpt files without their *-D.ckpt")
    p.add_argument("--device", **flag)
    p.add_argument("--no-amp", dest="amp", action="store_false", help="fp32 on CUDA too", **flag)
    p.add_argument("--cpu-bf16", action="store_true", **flag,
                   help="bf16 on CPU (faster on CPUs with AVX512-BF16/AMX; pixels differ slightly from fp32)")
    p.add_argument("--overwrite", action="store_true", **flag,
                   help="regenerate every output, also in a folder written by another checkpoint")
    p.add_argument("--no-judge", dest="judge", action="store_false", **flag,
                   help="skip the discriminator's accuracy on the outputs")
    p.add_argument("--allow-empty-cameras", action="store_true",
                   help="render into cameras that have no training image (refused by default)")
    p.add_argument("--no-progress", dest="progress", action="store_false", **flag)
    add_debug_flag(p)
    return p


def resolve_job(args) -> GenerateJob:
    """The data and generate sections: the config's, then the flags given, then --set (later wins)."""
    if not args.config and not args.data_root:
        raise ValueError("give --data-root DIR or --config FILE (with a data: section)")
    tree = load_yaml_tree(args.config) if args.config else {}
    data = dict(tree.get("data", {k: v for k, v in tree.items() if k != "generate"}))
    if args.data_root:
        data = {**data, "root": args.data_root, "name": data.get("name", "market_layout")}
    generate = dict(tree.get("generate") or {})
    generate.update({f.name: getattr(args, f.name) for f in fields(GenerateOptions) if hasattr(args, f.name)})
    return from_dict(GenerateJob, apply_overrides({"data": data, "generate": generate}, args.overrides))


def check_cameras(dataset, allow_empty: bool) -> None:
    """Name unmatched file names; refuse target cameras that have no training image unless asked."""
    if (note := dataset.skipped_note()) is not None:
        print(f"warning: {note}", file=sys.stderr)
    empty = dataset.cameras_without_training_images()
    if empty and not allow_empty:
        raise DatasetError(f"{dataset.name}: camera(s) {', '.join(f'c{c + 1}' for c in empty)} of "
                           f"c1..c{dataset.num_cameras} have no training image, so the generator has no such "
                           "domain to render into; fix data.num_cameras or the files, or pass --allow-empty-cameras")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    job = resolve_job(args)
    shard = args.shard or (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))
    options = replace(job.generate, shard_index=shard[0], num_shards=shard[1],
                      progress=job.generate.progress and shard[0] == 0)
    if args.dry_run:
        print(dump_config_yaml(replace(job, generate=options)), end="")
        return 0
    dataset = job.data.build()
    check_cameras(dataset, args.allow_empty_cameras)
    out = Path(args.out) if args.out else Path(job.data.root) / "bounding_box_train_camstyle"
    test_dirs = {str(Path(r.path).parent) for r in (*dataset.query, *dataset.gallery)}
    summary = generate_camstyle(args.checkpoint, dataset.train, out, dataset.num_cameras, options,
                                protected_dirs=sorted(test_dirs), unparsed_names=dataset.num_skipped_names())
    shown = {k: v for k, v in summary.items() if k not in ("options", "failed_files")}
    print(json.dumps(shown, indent=2))
    for bad in summary["failed_files"][:5]:
        print(f"skipped unreadable source: {bad['path']} ({bad['reason']})", file=sys.stderr)
    print(f"CamStyle images in {out}", file=sys.stderr)
    return 0


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
