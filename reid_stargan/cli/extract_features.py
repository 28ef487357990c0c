"""Embed images with a trained re-ID model and write the features (.npz).

Examples::

    # query + gallery of a Market-layout folder: the file evaluate_reid --features reads
    python tools/extract_features.py --checkpoint runs/00003-reid/checkpoints/model.pt \
        --data-root ../shared/data/cuhk03_market --out feats.npz
    python tools/evaluate_reid.py --features feats.npz
    # one set of images (a folder, a list file, or one split): a gallery for tools/query_gallery.py
    python tools/extract_features.py --checkpoint model.pt --images my_photos/ --out gallery.npz
    python tools/extract_features.py --checkpoint model.pt --list images.txt --out gallery.npz
    python tools/extract_features.py --checkpoint model.pt --data-root MARKET --split all --out gallery.npz

Sources: --images DIR (its image files; --recursive for sub-folders), --list FILE (one image path a
line; relative paths are taken from the list file's folder; blank lines and lines starting with # are
skipped), or --data-root ROOT, parsed by --dataset (default market_layout) and cut by --split:
``test`` (default) writes query and gallery as q_* and g_* arrays, ``query`` / ``gallery`` / ``train``
/ ``all`` (train + query + gallery) write one set as g_* arrays. --images and --list also write g_*.

Arrays: {q,g}_feats (N, D) float32 L2-normalised, {q,g}_pids and {q,g}_camids int64 (from Market-1501
style names, camid 0-based; -1 where a name carries none), {q,g}_paths (absolute), and image_size,
flip, checkpoint (how the features were made). Unreadable images are skipped and counted. Errors end
as one line ``error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from reid_stargan.cli.common import add_debug_flag, positive_int, run_cli
from reid_stargan.utils.io import atomic_write_bytes

SPLITS = ("test", "query", "gallery", "train", "all")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="re-ID model file (model.pt) or its run folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", metavar="DIR", help="a folder of images")
    source.add_argument("--list", metavar="FILE", help="a text file with one image path a line")
    source.add_argument("--data-root", metavar="ROOT", help="a data set folder (Market-1501 layout by default)")
    parser.add_argument("--dataset", default="market_layout",
                        help="parser of --data-root (a name of reid_stargan.data.datasets.DATASETS)")
    parser.add_argument("--split", choices=SPLITS, default=None,
                        help="with --data-root: test = query + gallery (default), or one set")
    parser.add_argument("--recursive", action="store_true", help="with --images: also the sub-folders")
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--height", type=positive_int, default=None, help="input height (default: the model's)")
    parser.add_argument("--width", type=positive_int, default=None, help="input width (default: the model's)")
    parser.add_argument("--no-flip", action="store_true", help="do not average with mirrored images")
    parser.add_argument("--no-progress", action="store_true")
    add_debug_flag(parser)
    return parser


def folder_images(folder: str, recursive: bool = False) -> list[str]:
    """Image files of `folder` (sorted; with `recursive` of its sub-folders too), as absolute paths."""
    from reid_stargan.data.imageio import IMAGE_SUFFIXES

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"--images: {folder} is not a folder")
    found = root.rglob("*") if recursive else root.iterdir()
    paths = sorted(str(p.resolve()) for p in found if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
    if not paths:
        more = "" if recursive else " (--recursive looks into sub-folders)"
        raise ValueError(f"--images: no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}{more}")
    return paths


def list_file_images(list_file: str) -> list[str]:
    """Paths of a list file, one a line; relative ones from the list file's folder; must exist."""
    path = Path(list_file)
    if not path.is_file():
        raise FileNotFoundError(f"--list: {list_file} not found")
    base = path.resolve().parent
    paths, missing = [], []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        image = base / line  # an absolute line replaces `base`
        (paths if image.is_file() else missing).append(str(image.resolve()))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise FileNotFoundError(f"--list {list_file}: {len(missing)} listed image(s) do not exist: "
                                f"{', '.join(missing[:3])}{more}")
    if not paths:
        raise ValueError(f"--list {list_file}: no image paths in the file")
    return paths


def dataset_sets(root: str, name: str, split: str) -> dict[str, list]:
    """{"q": records, "g": records} (split test) or {"g": records} of the data set at `root`."""
    from reid_stargan.data.datasets import build_dataset

    ds = build_dataset(name, root)
    if not hasattr(ds, "query"):
        raise ValueError(f"--dataset {name} is not a re-ID data set (no query / gallery split)")
    sets = {"test": {"q": ds.query, "g": ds.gallery}, "query": {"g": ds.query}, "gallery": {"g": ds.gallery},
            "train": {"g": ds.train}, "all": {"g": ds.train + ds.query + ds.gallery}}[split]
    for prefix, records in sets.items():
        if not records:
            which = {"q": "query", "g": "gallery"}[prefix] if split == "test" else split
            raise ValueError(f"{root}: the {which} split holds no images")
    return sets


def embed(model, items: list, image_size: tuple[int, int], args) -> dict:
    """feats, pids, camids and (absolute) paths of the readable images of `items` (paths or Records)."""
    from reid_stargan.eval.features import as_records, extract_features

    records = as_records(items)
    feats, pids, camids, kept = extract_features(model, records, image_size, args.batch_size,
                                                 flip=not args.no_flip, device=args.device,
                                                 progress=not args.no_progress, return_index=True)
    paths = np.array([str(Path(records[i].path).resolve()) for i in kept])
    return {"feats": feats, "pids": pids, "camids": camids, "paths": paths, "skipped": len(records) - len(kept)}


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.split is not None and args.data_root is None:
        raise ValueError("--split goes with --data-root")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise ValueError(f"--out {args.out}: the file name must end in .npz")
    if args.images:
        sets = {"g": folder_images(args.images, args.recursive)}
    elif args.list:
        sets = {"g": list_file_images(args.list)}
    else:
        sets = dataset_sets(args.data_root, args.dataset, args.split or "test")

    from reid_stargan.reid.checkpoint import load_reid_model

    ckpt = Path(args.checkpoint)
    model, cfg = load_reid_model(ckpt, device=args.device)
    size = (args.height or cfg.input.height, args.width or cfg.input.width)
    arrays: dict[str, np.ndarray] = {}
    summary = {"out": str(out), "image_size": list(size), "flip": not args.no_flip}
    for prefix, items in sets.items():
        part = embed(model, items, size, args)
        arrays.update({f"{prefix}_{key}": part[key] for key in ("feats", "pids", "camids", "paths")})
        summary[{"q": "query", "g": "gallery"}[prefix]] = {"images": len(part["feats"]), "skipped": part["skipped"],
                                                            "dim": int(part["feats"].shape[1])}
    arrays.update(image_size=np.array(size, dtype=np.int64), flip=np.array(not args.no_flip),
                  checkpoint=np.array(str(ckpt.resolve())))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(out, buffer.getvalue())
    print(json.dumps(summary))
    return summary


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
