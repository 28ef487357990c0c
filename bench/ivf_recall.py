#!/usr/bin/env python
"""Approximate search for very large galleries: FAISS IVF-flat recall@k and time against exact search.

Features as in ``bench/eval_speed.py`` (identity centres + camera bias + noise, 2048-d, junk and
distractors in the gallery). Exact top-k is FAISS's flat index (the query tool's path); IVF is
``search_topk(..., index="ivf")`` with ``nlist`` lists, of which ``nprobe`` are searched; recall@k
is the share of the exact top k that IVF returns (``retrieval.ivf_recall``'s measure).

    OMP_NUM_THREADS=1 python bench/ivf_recall.py --queries 1000 --gallery 100000 --nprobe 4 16 64
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from eval_speed import make_features  # bench/ is sys.path[0] when the script runs

from reid_stargan.eval.retrieval import build_faiss_index, faiss_search


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--gallery", type=int, default=100_000)
    p.add_argument("--ids", type=int, default=3000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", type=int, nargs="+", default=[4, 16, 64])
    args = p.parse_args()

    q, g, *_ = make_features(args.queries, args.gallery, args.ids)
    start = time.perf_counter()
    flat = build_faiss_index(g, "cosine", "flat", use_gpu=False)
    _, exact = faiss_search(flat, q, args.k, "cosine")
    exact_s = time.perf_counter() - start
    print(json.dumps({"index": "flat", "Q": len(q), "G": len(g), "k": args.k, "build_and_search_s": round(exact_s, 2)}))
    for nprobe in args.nprobe:
        start = time.perf_counter()
        ivf = build_faiss_index(g, "cosine", "ivf", nlist=args.nlist, nprobe=nprobe, use_gpu=False)
        built = time.perf_counter() - start
        _, approx = faiss_search(ivf, q, args.k, "cosine")
        searched = time.perf_counter() - start - built
        found = sum(len(np.intersect1d(a[a >= 0], e)) for a, e in zip(approx, exact, strict=True))
        print(json.dumps({"index": "ivf", "nlist": args.nlist, "nprobe": nprobe, "build_s": round(built, 2),
                          "search_s": round(searched, 3), "exact_search_s": round(exact_s, 2),
                          f"recall@{args.k}": round(found / exact.size, 4)}), flush=True)


if __name__ == "__main__":
    main()
