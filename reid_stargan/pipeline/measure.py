"""The pipeline's translation-quality stage: runs the measures of `quality.py` on one run's outputs.

* target-camera accuracy of the generated images, judged by a camera classifier trained only on
  real training images (not the GAN's own discriminator), beside its accuracy on held-out real images;
* identity preservation: generated images as queries against the real training images, with the
  first seed's re-ID baseline as the feature extractor;
* on the synthetic set only: L1 / PSNR against the true rendering in the target camera, inside the
  person mask, beside the same numbers for the untranslated source image.
"""

from __future__ import annotations

import time
from pathlib import Path

from reid_stargan.data.config import DataConfig
from reid_stargan.pipeline.config import QualitySection


def measure_quality(data: DataConfig, q: QualitySection, synthetic: bool, generator: Path, camstyle_dir: Path,
                    baseline_model: Path) -> dict:
    """The measures on `data`'s images and the CamStyle folder; `baseline_model` judges identity."""
    from reid_stargan.camstyle.naming import read_camstyle
    from reid_stargan.gan import load_generator
    from reid_stargan.pipeline import quality
    from reid_stargan.reid.checkpoint import load_reid_model

    dataset = data.build()
    generated = read_camstyle(camstyle_dir)
    timings = {}

    start = time.time()
    image_size = tuple(load_generator(generator)[1]["image_size"])  # (H, W) the generator wrote
    classifier = quality.train_camera_classifier(dataset.train, dataset.num_cameras, image_size=image_size,
                                                 epochs=q.classifier_epochs, seed=0)
    style = quality.camera_style_scores(classifier, generated, dataset.query + dataset.gallery,
                                        max_images=q.max_generated, seed=0)
    timings["camera_classifier_s"] = round(time.time() - start, 1)

    start = time.time()
    model, reid_cfg = load_reid_model(baseline_model)
    features = quality.model_features(model, image_size=(reid_cfg.input.height, reid_cfg.input.width))
    identity = quality.identity_preservation(features, generated, dataset.train, max_queries=q.max_generated)
    timings["identity_preservation_s"] = round(time.time() - start, 1)

    table = {
        "camera classifier: real held-out images in their camera (%)": style["real_heldout_acc"],
        "camera classifier: generated images in their TARGET camera (%)": style["generated_target_acc"],
        "camera classifier: generated images still in their SOURCE camera (%)": style["generated_source_acc"],
        "camera classifier: chance (%)": style["chance"],
        "identity preservation rank-1, generated queries vs real train (%)": identity["generated"]["rank1"],
        "identity preservation mAP, generated queries (%)": identity["generated"]["mAP"],
        "identity preservation rank-1, untranslated sources (reference) (%)": identity["source"]["rank1"],
    }

    fidelity = None
    if synthetic:
        start = time.time()
        fidelity = quality.synthetic_fidelity(data.root, generated, max_images=q.max_generated)
        timings["synthetic_fidelity_s"] = round(time.time() - start, 1)
        g, s = fidelity["generated"], fidelity["identity"]
        table.update({
            "L1 vs true target rendering, in person mask (generated)": g["l1_masked"],
            "L1 vs true target rendering, in person mask (untranslated source)": s["l1_masked"],
            "PSNR dB, in person mask (generated)": g["psnr_masked"],
            "PSNR dB, in person mask (untranslated source)": s["psnr_masked"],
            "share of images closer to the truth than their source (%)": 100.0 * fidelity["improved_fraction"],
        })
    notes = ("Camera classifier: a small CNN trained on real training images only. Identity preservation: "
             "each generated image queries the real training images under the standard protocol, carrying its "
             "source camera, so its source image and same-camera siblings are excluded; the reference row "
             "queries with the untranslated sources. L1 in [0, 1] units per channel.")
    return {"table": table, "camera_style": style, "identity": identity, "fidelity": fidelity,
            "timings": timings, "notes": notes}
