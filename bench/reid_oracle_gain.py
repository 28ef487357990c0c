#!/usr/bin/env python
"""Baseline vs +CamStyle with *oracle* CamStyle images on the synthetic set (the gain's upper bound).

The oracle set renders every training image exactly in each other camera (`true_rendering`), so it
shows what a perfect camera-style translator could add. Runs configs/reid/synthetic_cpu_{baseline,
camstyle}.yaml (same seed, same schedule, same number of updates) for each seed and prints mean/std.

Example::

    python bench/reid_oracle_gain.py --work runs/oracle --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from reid_stargan.camstyle.oracle import write_oracle_camstyle
from reid_stargan.config import load_config
from reid_stargan.reid.config import ReidConfig
from reid_stargan.reid.trainer import train_reid

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "reid"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="folder for the data set, the oracle set and the runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="extra config overrides")
    args = parser.parse_args(argv)
    from reid_stargan.data.synthetic import PRESETS, make_synthetic

    work = Path(args.work)
    data = work / "synthetic"
    if not data.exists():
        make_synthetic(data, **PRESETS[args.preset])
    oracle = work / "oracle"
    write_oracle_camstyle(data, oracle)
    rows: dict[str, list[dict]] = {"baseline": [], "camstyle": []}
    for seed in args.seeds:
        for mode in rows:
            cfg = load_config(ReidConfig, CONFIGS / f"synthetic_cpu_{mode}.yaml",
                              [f"data.root={data}", f"train.seed={seed}", *args.overrides])
            t0 = time.perf_counter()
            m = train_reid(cfg, work / f"{mode}_s{seed}", camstyle=str(oracle), progress=False)
            rows[mode].append({"seed": seed, "mAP": m["mAP"], "rank1": m["rank1"],
                               "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps({"mode": mode, **rows[mode][-1]}), flush=True)
    summary = {}
    for mode, runs in rows.items():
        for key in ("mAP", "rank1"):
            values = [r[key] for r in runs]
            summary[f"{mode}_{key}"] = round(statistics.mean(values), 2)
            summary[f"{mode}_{key}_std"] = round(statistics.stdev(values), 2) if len(values) > 1 else 0.0
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
