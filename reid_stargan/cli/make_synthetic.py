"""Command line of the synthetic multi-camera re-ID benchmark (see ``reid_stargan.data.synthetic``).

Example::

    python tools/make_synthetic.py --out data/synthetic --preset demo
"""

from __future__ import annotations

import argparse
import json
import sys

from reid_stargan.cli.common import add_debug_flag, run_cli
from reid_stargan.data.synthetic import PRESETS, make_synthetic

# Flag -> make_synthetic keyword; None defaults mean "take the preset's (or the library's) value".
_SIZE_FLAGS = ("num_train_ids", "num_test_ids", "num_cameras", "images_per_id_cam",
               "min_cameras_per_id", "max_cameras_per_id", "height", "width")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write the synthetic multi-camera re-ID set (Market-1501 layout).")
    parser.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                        help="size preset; the size flags below override single values of it")
    parser.add_argument("--seed", type=int, default=0)
    for name in _SIZE_FLAGS:
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    parser.add_argument("--supersample", type=int, default=2, help="anti-aliasing factor of the renderer")
    parser.add_argument("--jpeg-quality", type=int, default=95)
    parser.add_argument("--style-strength", type=float, default=1.0,
                        help="scale of the cameras' photometric styles (0 = neutral cameras, 1 = default)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing synthetic set")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_debug_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    sizes = dict(PRESETS[args.preset])
    sizes.update({k: getattr(args, k) for k in _SIZE_FLAGS if getattr(args, k) is not None})
    summary = make_synthetic(args.out, seed=args.seed, supersample=args.supersample, jpeg_quality=args.jpeg_quality,
                             style_strength=args.style_strength, overwrite=args.overwrite, **sizes)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"synthetic set written to {summary['root']} in {summary['seconds']:.1f} s")
        print(f"  images {summary['height']}x{summary['width']} (HxW), {summary['num_cameras']} cameras, "
              f"{summary['min_cameras_per_id']}-{summary['max_cameras_per_id']} cameras per identity, "
              f"style strength {summary['style_strength']}, seed {summary['seed']}")
        print(f"  train: {summary['num_train_ids']} ids, {summary['num_train']} images")
        print(f"  test:  {summary['num_test_ids']} ids, query {summary['num_query']}, "
              f"gallery {summary['num_gallery']} images")
    return summary


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
