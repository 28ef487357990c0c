#!/usr/bin/env python
"""bf16 against fp32 StarGAN training: mean loss terms over a window of iterations, per run.

Give run folders of the same config that differ in precision and / or seed; the bf16-vs-fp32
difference at one seed is compared with the seed-to-seed difference at one precision.

    python bench/stargan_precision_compare.py --window 500 1000 \
        bf16-s0=runs/exp/stargan_cuhk03 fp32-s0=runs/exp/stargan_fp32_s0 bf16-s1=runs/exp/stargan_bf16_s1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TERMS = ("D/loss_real", "D/loss_fake", "D/loss_cls", "D/loss_gp", "D/acc_real", "G/loss_fake", "G/loss_cls",
         "G/loss_rec")


def window_means(run: Path, start: int, stop: int) -> dict[str, float]:
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "step" in r and start < r["step"] <= stop]
    if not rows:
        raise SystemExit(f"error: {run} has no stats between steps {start} and {stop}")
    return {t: sum(r[t] for r in rows if t in r) / max(1, sum(t in r for r in rows)) for t in TERMS}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="label=RUN_DIR")
    p.add_argument("--window", type=int, nargs=2, default=(500, 1000), metavar=("START", "STOP"))
    args = p.parse_args(argv)
    means = {}
    for item in args.runs:
        label, path = item.split("=", 1)
        means[label] = window_means(Path(path), *args.window)
    labels = list(means)
    print(f"mean over steps {args.window[0] + 1}..{args.window[1]}")
    print("| term | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for t in TERMS:
        print(f"| {t} | " + " | ".join(f"{means[k][t]:.4f}" for k in labels) + " |")


if __name__ == "__main__":
    main()
