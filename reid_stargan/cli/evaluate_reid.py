"""Re-ID evaluation tool: saved features (.npz) or a trained model + data config -> metrics.json.

Examples::

    python tools/evaluate_reid.py --features feats.npz --out runs/eval            # mAP / CMC / mINP
    python tools/evaluate_reid.py --features feats.npz --rerank --metric euclidean   # mAP and mAP_trapezoid both
    python tools/evaluate_reid.py --checkpoint runs/00003-reid/checkpoints/model.pt \
        --visualize 10 --out runs/eval                                             # 10 worst queries
    python tools/evaluate_reid.py --features feats.npz --rerank --visualize 8 --vis-select random --vis-seed 1
    python tools/evaluate_reid.py --features feats.npz --vis-query 0001_c1s1_001051_00.jpg 0003_c3s1_000301_00.jpg

The .npz holds q_feats (Q, D), g_feats (G, D), q_pids, g_pids, q_camids, g_camids and optionally
q_paths / g_paths (needed by --visualize / --vis-query in that mode).

Writes metrics.json, cmc.png (the CMC curve, mAP in the legend) and, when asked, ranked_lists/<query
file stem>.png: the ranking that was evaluated (the re-ranked one with --rerank), same-id same-camera
and junk gallery images skipped as the protocol skips them, true matches framed green, wrong ones red.

Without --out the results go to a new numbered folder `runs/NNNNN-eval/`; an --out folder that holds a
metrics.json this tool did not write (a training run's own) is refused. Errors end as one line
`error: ...` with exit code 2 (`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from reid_stargan.cli.checkpoint_paths import resolve_data_root
from reid_stargan.cli.common import add_debug_flag, non_negative_int, positive_int, run_cli
from reid_stargan.eval.evaluator import BACKENDS, REPORTED_RANKS, evaluate
from reid_stargan.eval.retrieval import METRICS
from reid_stargan.eval.visualize import SELECTIONS
from reid_stargan.utils.io import atomic_write_json, torch_load
from reid_stargan.utils.rundir import make_run_dir

NPZ_KEYS = ("q_feats", "g_feats", "q_pids", "g_pids", "q_camids", "g_camids")
TOOL = "evaluate_reid"
DEFAULT_OUT_ROOT = "runs"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", help="npz with q_feats, g_feats, q_pids, g_pids, q_camids, g_camids")
    source.add_argument("--checkpoint", help="re-ID model file (model.pt) or its run folder")
    parser.add_argument("--config", help="YAML with a data: section (default with --checkpoint: the model's own data)")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="dotted overrides of the data config, e.g. --set data.root=/path")
    parser.add_argument("--out", default=None,
                        help="folder for metrics.json and the --visualize PNGs (default: a new runs/NNNNN-eval/)")
    parser.add_argument("--metric", choices=METRICS, default="cosine")
    parser.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (k1 20, k2 6, lambda 0.3)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--max-rank", type=positive_int, default=50)
    parser.add_argument("--visualize", type=non_negative_int, default=0, metavar="N",
                        help="ranked-list PNGs of N queries (chosen by --vis-select) in ranked_lists/")
    parser.add_argument("--vis-select", choices=SELECTIONS, default="worst",
                        help="which N queries: worst = lowest AP first (default, as fast-reid), best, random")
    parser.add_argument("--vis-seed", type=int, default=0, help="seed of --vis-select random")
    parser.add_argument("--vis-query", nargs="+", action="extend", default=[], metavar="NAME",
                        help="draw these queries (file names, stems or paths) instead of --vis-select's")
    parser.add_argument("--vis-topk", type=positive_int, default=10, metavar="K", help="gallery images per query")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="input size (default: the model's training size)")
    parser.add_argument("--no-flip", action="store_true", help="do not average with mirrored images")
    add_debug_flag(parser)
    return parser


def load_feature_file(path: str | os.PathLike) -> dict:
    """Read the npz (no pickles): the six arrays, plus q_paths / g_paths when present.

    Anything else (a text file, a single .npy array, object or string arrays where numbers belong)
    raises ValueError naming the file and the array.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(6)
    if head[:4] != b"PK\x03\x04":
        kind = "a single .npy array" if head == b"\x93NUMPY" else f"not a numpy archive (it starts with {head!r})"
        raise ValueError(f"{path}: {kind}; expected an .npz (np.savez) with arrays {', '.join(NPZ_KEYS)}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz archive (truncated or corrupt: {exc})") from exc
    with data:
        if missing := [k for k in NPZ_KEYS if k not in data]:
            raise ValueError(f"{path}: missing arrays {missing}; expected {list(NPZ_KEYS)}")
        out = {}
        for key in (*NPZ_KEYS, "q_paths", "g_paths"):
            if key not in data:
                continue
            try:
                out[key] = data[key]
            except ValueError as exc:  # object arrays need pickles, which are never loaded
                raise ValueError(f"{path}: array {key} holds Python objects (pickled), which are refused; "
                                 f"save it as a numeric array") from exc
            except (OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
                raise ValueError(f"{path}: array {key} cannot be read (truncated or corrupt archive: {exc})") from exc
    for key in NPZ_KEYS:
        arr = out[key]
        if arr.dtype.kind in "US":  # object arrays (kind "O") were refused on reading: they need pickles
            need = "numbers" if key.endswith("feats") else "integers"
            raise ValueError(f"{path}: {key} holds strings (dtype {arr.dtype}); {key} must be {need}")
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{path}: {key} has dtype {arr.dtype}; expected numbers")
        if not key.endswith("feats") and arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
            raise ValueError(f"{path}: {key} holds non-integer values; pids and camids must be integers")
    for key in ("q_paths", "g_paths"):
        if key in out:
            out[key] = [str(p) for p in out[key]]
    return out


def check_checkpoint_kind(path: str | os.PathLike) -> None:
    """Refuse a file that is not a re-ID model, saying what it is (e.g. a StarGAN generator)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "model.pt"
    blob = torch_load(path)
    if not isinstance(blob, dict):
        raise ValueError(f"{path}: holds a {type(blob).__name__}, not a re-ID model written by train_reid")
    if blob.get("format") == "reid_stargan":
        raise ValueError(f"{path} is a StarGAN {blob.get('kind', 'generator')} file, not a re-ID model; give "
                         "--checkpoint a train_reid model.pt (or its run folder)")
    if "G" in blob and "D" in blob:
        raise ValueError(f"{path} is a StarGAN training state (last.pt of train_stargan), not a re-ID model")
    if blob and "config" not in blob and all(hasattr(v, "shape") for v in blob.values()):
        raise ValueError(f"{path} is a bare state dict (e.g. an official StarGAN *-G.ckpt), not a re-ID model "
                         "written by train_reid")
    if ("state_dict" not in blob and "model" not in blob) or "config" not in blob:
        raise ValueError(f"{path}: not a re-ID model written by train_reid (keys: {', '.join(list(blob)[:6])})")


def resolve_out_dir(out: str | None) -> Path | None:
    """The --out folder, refused when it holds a metrics.json another tool wrote; None: make one later."""
    if out is None:
        return None
    out_dir = Path(out)
    metrics = out_dir / "metrics.json"
    if metrics.is_file():
        try:
            owner = json.loads(metrics.read_text()).get("tool")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            owner = None
        if owner != TOOL:
            raise FileExistsError(f"{metrics} exists and was not written by evaluate_reid (a training run's "
                                  "results?); it is kept: choose another --out, or leave --out out for a new "
                                  "runs/NNNNN-eval/ folder")
    return out_dir


def features_from_checkpoint(args) -> dict:
    """Embed the query and gallery of the --config data set (default: the model's own) with --checkpoint."""
    from reid_stargan.config import apply_overrides, config_to_dict, from_dict, load_yaml_tree
    from reid_stargan.data.config import DataConfig
    from reid_stargan.eval.features import extract_features
    from reid_stargan.reid.checkpoint import load_reid_model

    check_checkpoint_kind(args.checkpoint)
    model, model_cfg = load_reid_model(args.checkpoint, device=args.device)
    tree = load_yaml_tree(args.config) if args.config else {"data": config_to_dict(model_cfg.data)}
    if not args.config and not any(o.split("=", 1)[0].strip() == "data.root" for o in args.overrides):
        # The model's own data.root may be relative to where training ran: find it from here.
        tree["data"]["root"] = resolve_data_root(tree["data"]["root"], args.checkpoint, model_cfg.out_root)
    tree = apply_overrides(tree, args.overrides)
    if "data" not in tree:
        raise ValueError(f"{args.config}: no 'data:' section")
    dataset = from_dict(DataConfig, tree["data"], "data").build()
    size = tuple(args.image_size) if args.image_size else (model_cfg.input.height, model_cfg.input.width)
    out = {}
    for split, records in (("q", dataset.query), ("g", dataset.gallery)):
        feats, pids, camids = extract_features(model, records, size, args.batch_size,
                                               flip=not args.no_flip, device=args.device)
        out.update({f"{split}_feats": feats, f"{split}_pids": pids, f"{split}_camids": camids})
    # extract_features may skip unreadable images; paths only line up when nothing was skipped.
    if len(out["q_pids"]) == len(dataset.query) and len(out["g_pids"]) == len(dataset.gallery):
        out["q_paths"] = [r.path for r in dataset.query]
        out["g_paths"] = [r.path for r in dataset.gallery]
    return out


def format_table(metrics: dict) -> str:
    keys = ["mAP", "mAP_trapezoid", *(f"rank{k}" for k in REPORTED_RANKS), "mINP"]
    head = " | ".join(f"{k:>{max(7, len(k))}}" for k in keys)
    row = " | ".join(f"{metrics[k]:{max(7, len(k))}.2f}" for k in keys)
    tail = (f"valid queries {metrics['num_valid_queries']} (skipped {metrics['num_skipped_queries']}), "
            f"gallery {metrics['num_gallery']}, metric {metrics['metric']}, rerank {metrics['rerank']}\n"
            "mAP: finite-sum AP (torchreid / fast-reid); mAP_trapezoid: Market-1501 MATLAB / open-reid AP "
            "(CamStyle, HHL)")
    return f"{head}\n{'-' * len(head)}\n{row}\n{tail}"


def write_cmc(metrics: dict, out_png: Path) -> None:
    """The CMC curve to rank 20 (the report's cut), mAP and rank-1 in the legend."""
    from reid_stargan.pipeline.plots import cmc_plot

    label = metrics["metric"] + (" + re-ranking" if metrics["rerank"] else "")
    cmc_plot({label: metrics["cmc"]}, out_png, max_rank=min(20, len(metrics["cmc"])),
             maps={label: metrics["mAP"]}, title=f"CMC: {Path(str(metrics['source'])).name}")


def _distance_chunks(data: dict, args):
    """The distances evaluate() ranked, again: the re-ranked ones with --rerank (same k1, k2, lambda)."""
    q, g = data["q_feats"], data["g_feats"]
    if args.rerank:
        from reid_stargan.eval.rerank import rerank_distance_chunks

        return rerank_distance_chunks(q, g, metric=args.metric, device=args.device)
    from reid_stargan.eval.retrieval import iter_distance_chunks

    return iter_distance_chunks(q, g, args.metric, device=args.device)


def write_ranked_lists(data: dict, args, out_dir: Path) -> list[Path]:
    """Ranked-list PNGs of the queries --vis-query / --vis-select choose, from the evaluated distances."""
    if "q_paths" not in data or "g_paths" not in data:
        raise SystemExit("--visualize / --vis-query need image paths: q_paths/g_paths in the npz, or --checkpoint")
    from reid_stargan.eval.visualize import rank_gallery, save_ranked_lists, select_queries

    ranking = rank_gallery(_distance_chunks(data, args), data["q_pids"], data["g_pids"], data["q_camids"],
                           data["g_camids"], topk=args.vis_topk)
    chosen = select_queries(ranking, data["q_paths"], args.vis_select, args.visualize, args.vis_seed,
                            names=args.vis_query)
    note = f"{args.metric} distance" + (", k-reciprocal re-ranked" if args.rerank else "")
    return save_ranked_lists(ranking, chosen, data["q_paths"], data["g_paths"], out_dir, note=note)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out_dir = resolve_out_dir(args.out)  # before any work: a refused folder costs nothing
    data = load_feature_file(args.features) if args.features else features_from_checkpoint(args)

    metrics = evaluate(*(data[k] for k in NPZ_KEYS), metric=args.metric, rerank=args.rerank,
                       backend=args.backend, max_rank=args.max_rank, device=args.device)
    metrics.update(source=args.features or args.checkpoint, tool=TOOL)
    if out_dir is None:
        out_dir = make_run_dir(DEFAULT_OUT_ROOT, "eval", subdirs=())
    atomic_write_json(out_dir / "metrics.json", metrics)
    print(format_table(metrics))

    write_cmc(metrics, out_dir / "cmc.png")
    print(f"CMC curve: {out_dir / 'cmc.png'}")
    if args.visualize > 0 or args.vis_query:
        written = write_ranked_lists(data, args, out_dir / "ranked_lists")
        print(f"wrote {len(written)} ranked-list images to {out_dir / 'ranked_lists'}")
    print(f"metrics: {out_dir / 'metrics.json'}")
    return metrics


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
