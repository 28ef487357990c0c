"""Find the gallery images nearest to a few query images: print (and draw) the top k.

Example::

    python tools/extract_features.py --checkpoint model.pt --images gallery_photos/ --out gallery.npz
    python tools/query_gallery.py --checkpoint model.pt --gallery gallery.npz --images q1.jpg q2.jpg \
        --topk 10 --draw top10.png

The queries are embedded with --checkpoint at the gallery's image size and flip setting (recorded in
the .npz by extract_features); use the model that made the gallery. Ranking: cosine distance
(1 - cosine similarity, smaller = nearer) by exact FAISS search (IndexFlatIP on L2-normalised
features; --backend numpy is the brute-force reference). --draw writes one PNG, a row per query with
its top k, rank and distance (frames green / red where the file names carry identities). Errors end
as one line ``error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reid_stargan.cli.common import add_debug_flag, positive_int, run_cli
from reid_stargan.eval.query import QUERY_BACKENDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="re-ID model file (model.pt) or its run folder")
    parser.add_argument("--gallery", required=True, help=".npz with g_feats / g_paths (tools/extract_features.py)")
    parser.add_argument("--images", nargs="+", required=True, metavar="IMAGE", help="query image files")
    parser.add_argument("--topk", type=positive_int, default=10)
    parser.add_argument("--backend", choices=QUERY_BACKENDS, default="faiss")
    parser.add_argument("--draw", default=None, metavar="PNG", help="write a picture of each query and its top k")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object instead")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    add_debug_flag(parser)
    return parser


def format_results(results: list[dict]) -> str:
    lines = []
    for res in results:
        lines.append(f"query {res['query']}")
        lines.append(f"  {'rank':>4}  {'distance':>8}  {'pid':>5}  {'cam':>4}  gallery image")
        for hit in res["top"]:
            cam = f"c{hit['camid'] + 1}" if hit["camid"] >= 0 else "-"
            pid = str(hit["pid"]) if hit["pid"] >= 0 else "-"
            lines.append(f"  {hit['rank']:>4}  {hit['distance']:8.4f}  {pid:>5}  {cam:>4}  {hit['name']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    from reid_stargan.eval.features import extract_features
    from reid_stargan.eval.query import draw_ranking, load_gallery, rank_gallery
    from reid_stargan.reid.checkpoint import load_reid_model

    gallery = load_gallery(args.gallery)
    if missing := [p for p in args.images if not Path(p).is_file()]:
        raise FileNotFoundError(f"query image(s) not found: {', '.join(missing)}")
    if args.backend == "faiss":
        from reid_stargan.eval.retrieval import faiss_available

        if not faiss_available():
            raise ValueError("--backend faiss: the faiss module is not installed (pip install faiss-cpu), "
                             "or use --backend numpy")
    model, cfg = load_reid_model(args.checkpoint, device=args.device)
    size = tuple(gallery.meta.get("image_size") or (cfg.input.height, cfg.input.width))
    flip = bool(gallery.meta.get("flip", True))
    feats, pids, _, kept = extract_features(model, list(args.images), size, args.batch_size, flip=flip,
                                            device=args.device, progress=False, return_index=True)
    if len(kept) < len(args.images):
        bad = sorted(set(range(len(args.images))) - set(kept.tolist()))
        raise ValueError(f"cannot read query image(s): {', '.join(args.images[i] for i in bad)}")
    if feats.shape[1] != gallery.feats.shape[1]:
        raise ValueError(f"the model gives {feats.shape[1]}-d features but {args.gallery} holds "
                         f"{gallery.feats.shape[1]}-d ones: use the checkpoint that made the gallery")
    dist, idx = rank_gallery(feats, gallery, k=args.topk, backend=args.backend)
    results = []
    for qi, query in enumerate(args.images):
        top = [{"rank": r + 1, "distance": float(dist[qi, r]), "path": gallery.paths[gi],
                "name": Path(gallery.paths[gi]).name or f"row {gi}", "pid": int(gallery.pids[gi]),
                "camid": int(gallery.camids[gi])}
               for r, gi in enumerate(idx[qi].tolist()) if gi >= 0]
        results.append({"query": query, "top": top})
    print(json.dumps(results) if args.json else format_results(results))
    if args.draw:
        written = draw_ranking(args.images, gallery, dist, idx, args.draw, query_pids=pids)
        print(f"picture: {written}", file=sys.stderr if args.json else sys.stdout)
    return results


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
