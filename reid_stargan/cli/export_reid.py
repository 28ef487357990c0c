"""Export a trained re-ID model to ONNX or TorchScript and check the file against PyTorch.

Examples::

    python tools/export_reid.py --checkpoint runs/00003-reid/checkpoints/model.pt --format onnx
    python tools/export_reid.py --checkpoint runs/00003-reid --format torchscript --out deploy/reid.pt
    python tools/export_reid.py --checkpoint model.pt --format onnx --height 256 --width 128 --out reid.onnx

The file maps ImageNet-normalised RGB images (B, 3, H, W) float32 to (B, D) L2-normalised features,
as ``model.eval()(images)`` does; the batch axis is dynamic (ONNX: H and W are fixed at --height /
--width, default the model's training size; TorchScript takes any size). Without --out the file goes
beside the checkpoint (model.onnx / model.torchscript.pt). After writing, the tool runs the file
(onnxruntime / torch.jit) on two batch sizes of random inputs and refuses a result further than
--atol from PyTorch (--no-verify skips this). ONNX needs ``pip install -e '.[export]'``.
Errors end as one line ``error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from reid_stargan.cli.common import add_debug_flag, run_cli
from reid_stargan.eval.export import FORMATS, export_metadata, export_model, max_export_difference

SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
VERIFY_BATCHES = (1, 3)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="re-ID model file (model.pt) or its run folder")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", default=None, help="output file (default: beside the checkpoint)")
    parser.add_argument("--height", type=int, default=None, help="input height (default: the model's training size)")
    parser.add_argument("--width", type=int, default=None, help="input width (default: the model's training size)")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest feature difference accepted by the check")
    parser.add_argument("--no-verify", action="store_true", help="do not run the exported file against PyTorch")
    add_debug_flag(parser)
    return parser


def checkpoint_file(path: str) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (give a train_reid model.pt or its run folder)")
    return path


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    from reid_stargan.reid.checkpoint import load_reid_model
    from reid_stargan.reid.config import BACKBONE_STRIDES

    ckpt = checkpoint_file(args.checkpoint)
    model, cfg = load_reid_model(ckpt)
    height = args.height or cfg.input.height
    width = args.width or cfg.input.width
    stride = BACKBONE_STRIDES.get(cfg.model.backbone, 1) // (2 if cfg.model.last_stride == 1 else 1)
    if min(height, width) < stride:
        raise ValueError(f"--height/--width {height}x{width} is too small for backbone {cfg.model.backbone} "
                         f"(total stride {stride})")
    out = Path(args.out) if args.out else ckpt.with_name(ckpt.stem + SUFFIX[args.format])
    meta = export_metadata(model, height, width, backbone=cfg.model.backbone, checkpoint=str(ckpt.resolve()))
    try:
        export_model(model, out, args.format, height, width, metadata=meta)
    except ImportError as exc:  # onnx / onnxruntime absent: an install step, not a bug
        raise SystemExit(str(exc)) from exc
    result = {"out": str(out), "format": args.format, "height": height, "width": width,
              "feature_dim": meta["feature_dim"]}
    if not args.no_verify:
        rng = np.random.default_rng(0)
        diffs = [max_export_difference(model, out, args.format,
                                       rng.standard_normal((b, 3, height, width), dtype=np.float32))
                 for b in VERIFY_BATCHES]
        result["max_abs_diff"] = max(diffs)
        if not result["max_abs_diff"] <= args.atol:
            raise ValueError(f"{out}: exported features differ from PyTorch by {result['max_abs_diff']:.3g} "
                             f"(> --atol {args.atol:g}); the file is kept for inspection")
    print(json.dumps(result))
    return result


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
