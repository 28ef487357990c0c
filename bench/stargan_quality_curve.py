#!/usr/bin/env python
"""Translation quality against StarGAN iterations: the curve that chooses a run's length and checkpoint.

For every kept generator of a StarGAN run (`checkpoints/generator_<step>.pt`, `log.snapshot_every`)
and its final `generator.pt`, a fixed, seeded subset of training images is rendered into one target
camera each (chosen from the file name), then scored on TRAINING data only, never the test split:

* target-camera accuracy: a camera classifier trained once on the real training images;
* identity preservation: rank-1 / mAP of the translations as queries against the real training
  images, judged by a re-ID model trained on real images only (the baseline, never a +CamStyle
  model), beside the same protocol for the untranslated sources.

    python bench/stargan_quality_curve.py --run runs/exp/stargan --reid-model runs/exp/base/checkpoints/model.pt \
        --data-root ../shared/data/cuhk03_market --images 600 --json docs/curves/cuhk03.json --plot docs/cuhk03_curve.png

`--keep-detail` scores outputs written with `GenerateOptions.keep_detail` too, beside the plain ones.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle
from reid_stargan.camstyle.naming import read_camstyle
from reid_stargan.data.datasets import build_dataset
from reid_stargan.pipeline import quality
from reid_stargan.reid.checkpoint import load_reid_model


def kept_generators(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of every kept generator snapshot, plus the final generator, by step."""
    found = {}
    for path in (run / "checkpoints").glob("generator_*.pt"):
        match = re.fullmatch(r"generator_(\d+)\.pt", path.name)
        if match:
            found[int(match.group(1))] = path
    summary = run / "summary.json"
    if summary.is_file():
        found.setdefault(json.loads(summary.read_text())["step"], run / "checkpoints" / "generator.pt")
    return sorted(found.items())


def cached(features: quality.FeatureFn) -> quality.FeatureFn:
    """Features of a path list computed once (the real training gallery is the same for every checkpoint)."""
    memo: dict[tuple[str, ...], np.ndarray] = {}

    def run(paths):
        key = tuple(paths)
        if key not in memo:
            memo[key] = features(paths)
        return memo[key]

    return run


def identity_classifier(model, image_size: tuple[int, int], label_of: dict[int, int]):
    """Share (%) of images the baseline's own identity classifier assigns to their identity.

    Cross-camera retrieval judges identity badly where the baseline keys on camera style (on CUHK03
    65-69 % of its top-1 matches come from the query's own camera); its classifier, trained on every
    training identity in both of its cameras, puts 92 % of real training images in their class."""
    import torch
    from PIL import Image

    from reid_stargan.data.imageio import load_rgb
    from reid_stargan.reid.data import to_tensor

    h, w = image_size

    @torch.no_grad()
    def accuracy(paths, pids) -> float:
        model.eval()
        hits = 0
        for start in range(0, len(paths), 128):
            # the evaluation transform: PIL bilinear resize, ImageNet normalisation
            x = torch.stack([to_tensor(load_rgb(p).resize((w, h), Image.BILINEAR)) for p in paths[start:start + 128]])
            logits = model.classifier(model.neck(model.embedding(model.backbone(x).mean(dim=(2, 3)))))
            hits += int((logits.argmax(1) == torch.tensor([label_of[p] for p in pids[start:start + 128]])).sum())
        return 100.0 * hits / len(paths)

    return accuracy


def score(checkpoint: Path, subset, dataset, classifier, features, keep_detail: bool, work: Path,
          id_accuracy=None) -> dict:
    out = work / f"{checkpoint.stem}-{'detail' if keep_detail else 'plain'}"
    generate_camstyle(checkpoint, subset, out, dataset.num_cameras,
                      GenerateOptions(targets_per_image=1, keep_detail=keep_detail, progress=False, judge=False))
    fakes = read_camstyle(out)
    # The classifier's accuracy on real TRAINING images is the reference (the test split stays unused).
    style = quality.camera_style_scores(classifier, fakes, dataset.train, max_images=2000)
    identity = quality.identity_preservation(features, fakes, dataset.train, max_queries=None)
    return {"target_camera_acc": style["generated_target_acc"], "source_camera_acc": style["generated_source_acc"],
            "id_rank1": identity["generated"]["rank1"], "id_mAP": identity["generated"]["mAP"],
            "source_id_rank1": identity["source"]["rank1"], "source_id_mAP": identity["source"]["mAP"],
            "real_camera_acc": style["real_heldout_acc"], "chance": style["chance"], "num_images": len(fakes),
            **({"id_class_acc": id_accuracy([f.path for f in fakes], [f.pid for f in fakes]),
                "source_id_class_acc": id_accuracy([r.path for r in subset], [r.pid for r in subset])}
               if id_accuracy else {})}


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_cam, ax_id) = plt.subplots(1, 2, figsize=(9, 3.4))
    id_key = (("id_class_acc", "source_id_class_acc", "baseline's classifier: own identity (%)")
              if "id_class_acc" in rows[0] else ("id_rank1", "source_id_rank1", "rank-1 vs real train images (%)"))
    for variant, style in (("plain", "-o"), ("detail", "-s")):
        part = [r for r in rows if r["variant"] == variant]
        if not part:
            continue
        steps = [r["step"] / 1000 for r in part]
        ax_cam.plot(steps, [r["target_camera_acc"] for r in part], style, label=f"target camera ({variant})")
        ax_id.plot(steps, [r[id_key[0]] for r in part], style, label=f"translations ({variant})")
    steps = [r["step"] / 1000 for r in rows]
    ax_cam.axhline(rows[0]["chance"], color="grey", ls=":", label="chance")
    ax_cam.axhline(3 * rows[0]["chance"], color="grey", ls="--", label="3x chance")
    ax_id.axhline(rows[0][id_key[1]], color="black", ls="--", label="untranslated sources")
    ax_id.axhline(rows[0][id_key[1]] / 2, color="grey", ls=":", label="half of the sources")
    ax_cam.set(xlabel="StarGAN iterations (k)", ylabel="% in the target camera", title="camera style")
    ax_id.set(xlabel="StarGAN iterations (k)", ylabel=id_key[2], title="identity kept")
    for ax in (ax_cam, ax_id):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_xlim(0, max(steps) * 1.05)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path, help="a train_stargan run folder")
    p.add_argument("--reid-model", required=True, type=Path, help="model.pt of a re-ID baseline (real images only)")
    p.add_argument("--data-root", required=True, help="the Market-layout set the GAN was trained on")
    p.add_argument("--images", type=int, default=600, help="training images rendered per checkpoint (seeded subset)")
    p.add_argument("--classifier-epochs", type=int, default=4)
    p.add_argument("--keep-detail", action="store_true", help="also score keep_detail outputs")
    p.add_argument("--json", type=Path, help="write the rows here")
    p.add_argument("--plot", type=Path, help="draw the curves here (PNG)")
    args = p.parse_args(argv)

    dataset = build_dataset("market_layout", args.data_root)
    order = np.random.default_rng(0).permutation(len(dataset.train))[: args.images]
    subset = [dataset.train[i] for i in sorted(order)]
    generators = kept_generators(args.run)
    if not generators:
        raise SystemExit(f"error: {args.run} has no generator_<step>.pt snapshots (train with log.snapshot_every)")
    from reid_stargan.gan import load_generator

    image_size = tuple(load_generator(generators[0][1])[1]["image_size"])
    t0 = time.time()
    classifier = quality.train_camera_classifier(dataset.train, dataset.num_cameras, image_size=image_size,
                                                 epochs=args.classifier_epochs, seed=0)
    model, reid_cfg = load_reid_model(args.reid_model)
    reid_size = (reid_cfg.input.height, reid_cfg.input.width)
    features = cached(quality.model_features(model, image_size=reid_size))
    id_accuracy = identity_classifier(model, reid_size, dataset.train_pid_map()) if model.classifier is not None else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for step, path in generators:
            for keep_detail in ([False, True] if args.keep_detail else [False]):
                row = {"step": step, "variant": "detail" if keep_detail else "plain",
                       **score(path, subset, dataset, classifier, features, keep_detail, Path(tmp), id_accuracy)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"{len(rows)} rows in {time.time() - t0:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"run": str(args.run), "images": args.images, "rows": rows}, indent=1) + "\n")
    if args.plot:
        plot(rows, args.plot, f"{Path(args.data_root).name}: {args.images} training images, one target camera each")
    return rows


if __name__ == "__main__":
    main()
