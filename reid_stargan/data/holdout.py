"""A validation split made of held-out TRAINING identities, so configs are tuned without the test split.

From a Market-layout root, `num_ids` training identities (a seeded draw among those seen by at least
two cameras) become a query / gallery pair: one image per camera of each held-out identity goes to
`query/`, the rest to `bounding_box_test/`. The other identities stay in `bounding_box_train/`.
Files are symbolic links (file names unchanged, so the parser reads the same pid and camera)::

    write_holdout_split("../shared/data/cuhk03_market", "runs/cuhk03_val", num_ids=100, seed=0)
    # then: --set data.root=runs/cuhk03_val  (train on the rest, score on the held-out identities)
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from reid_stargan.data.datasets import DatasetError, build_dataset

SPLIT_INFO = "holdout_split.json"


def write_holdout_split(root: str | os.PathLike, out: str | os.PathLike, num_ids: int = 100, seed: int = 0) -> dict:
    """Write the split into `out` (must not exist); returns its counts (also in `out/holdout_split.json`)."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new folder for the held-out split")
    data = build_dataset("market_layout", root)
    by_pid: dict[int, list] = defaultdict(list)
    for r in data.train:
        by_pid[r.pid].append(r)
    eligible = sorted(pid for pid, recs in by_pid.items() if len({r.camid for r in recs}) >= 2)
    if num_ids < 1 or num_ids >= len(eligible):
        raise DatasetError(f"num_ids={num_ids}: choose 1..{len(eligible) - 1} (identities seen by 2+ cameras "
                           f"in {root}: {len(eligible)})")
    rng = np.random.default_rng(seed)
    held = set(rng.choice(eligible, size=num_ids, replace=False).tolist())
    splits: dict[str, list] = {"bounding_box_train": [], "query": [], "bounding_box_test": []}
    for pid, recs in sorted(by_pid.items()):
        if pid not in held:
            splits["bounding_box_train"] += recs
            continue
        recs = sorted(recs, key=lambda r: r.path)
        by_cam: dict[int, list] = defaultdict(list)
        for r in recs:
            by_cam[r.camid].append(r)
        for cam_recs in by_cam.values():
            pick = int(rng.integers(len(cam_recs)))
            splits["query"].append(cam_recs[pick])
            splits["bounding_box_test"] += [r for i, r in enumerate(cam_recs) if i != pick]
    for split, recs in splits.items():
        folder = out / split
        folder.mkdir(parents=True)
        for r in recs:
            (folder / Path(r.path).name).symlink_to(Path(r.path).resolve())
    info = {"source": str(Path(root).resolve()), "seed": seed, "held_out_ids": sorted(held),
            **{f"num_{k}": len(v) for k, v in splits.items()}}
    (out / SPLIT_INFO).write_text(json.dumps(info, indent=1) + "\n")
    return info
