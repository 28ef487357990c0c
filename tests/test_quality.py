"""Translation-quality measures: camera classifier, identity preservation, synthetic fidelity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reid_stargan.camstyle.naming import CamStyleRecord, manifest_entry, output_name, read_camstyle
from reid_stargan.data.synthetic import PRESETS, load_dataset, make_synthetic, true_rendering
from reid_stargan.pipeline import quality


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality") / "syn"
    make_synthetic(root, seed=1, **PRESETS["tiny"])
    return root, load_dataset(root)


def _write_renderings(root: Path, data, out_dir: Path, camera_of=lambda dst: dst, scale: int = 1) -> list:
    """A CamStyle folder whose 'generated' images are true renderings (lossless PNG, no noise) in
    camera ``camera_of(dst)``; read back through the real manifest reader."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in data.train:
        name = Path(r.path).name
        for dst in range(data.num_cameras):
            if dst == r.camid:
                continue
            image, _ = true_rendering(root, name, camera_of(dst) % data.num_cameras)
            img = Image.fromarray(image)
            if scale != 1:
                img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
            out = output_name(name, r.camid, dst, suffix=".png")
            img.save(out_dir / out)
            lines.append(json.dumps(manifest_entry(r.path, r.pid, r.camid, dst, out)))
    (out_dir / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return read_camstyle(out_dir)


@pytest.fixture(scope="module")
def oracle(tiny, tmp_path_factory):
    root, data = tiny
    return _write_renderings(root, data, tmp_path_factory.mktemp("oracle"))


def test_camera_classifier_learns_cameras_from_real_images(tiny, oracle):
    _, data = tiny
    clf = quality.train_camera_classifier(data.train, data.num_cameras, epochs=10, seed=0)
    heldout = data.query + data.gallery
    acc = quality.camera_accuracy(clf, [(r.path, r.camid) for r in heldout])
    chance = 100.0 / data.num_cameras
    assert acc > chance + 35, f"held-out camera accuracy {acc:.1f}% vs chance {chance:.1f}%"

    scores = quality.camera_style_scores(clf, oracle, heldout)
    assert scores["real_heldout_acc"] == pytest.approx(acc)
    assert scores["num_generated"] == len(oracle)
    # True renderings in the target camera look like the target camera, not like the source.
    assert scores["generated_target_acc"] > chance + 35
    assert scores["generated_target_acc"] > scores["generated_source_acc"] + 30


def test_camera_classifier_is_deterministic_and_checks_camera_ids(tiny):
    _, data = tiny
    paths = [r.path for r in data.query]
    a = quality.train_camera_classifier(data.train, data.num_cameras, epochs=1, seed=5)
    b = quality.train_camera_classifier(data.train, data.num_cameras, epochs=1, seed=5)
    assert np.array_equal(quality.predict_cameras(a, paths), quality.predict_cameras(b, paths))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert np.array_equal(pa.detach().numpy(), pb.detach().numpy())
    with pytest.raises(ValueError, match="camera ids"):
        quality.train_camera_classifier(data.train, num_cameras=2, epochs=1)


def _pid_of(path: str) -> int:
    return int(Path(path).name[:4])


def test_identity_preservation_with_pid_features_is_perfect(tiny, oracle):
    _, data = tiny
    num_pids = max(r.pid for r in data.train) + 1

    def one_hot_pid(paths):
        return np.eye(num_pids, dtype=np.float32)[[_pid_of(p) for p in paths]]

    res = quality.identity_preservation(one_hot_pid, oracle, data.train)
    assert res["generated"]["rank1"] == pytest.approx(100.0)
    assert res["generated"]["mAP"] == pytest.approx(100.0)
    assert res["source"]["rank1"] == pytest.approx(100.0)
    assert res["num_queries"] == len(oracle) and res["num_orphans"] == 0
    assert res["generated"]["num_valid_queries"] == len(oracle)  # every tiny identity has >= 2 cameras


def test_identity_preservation_excludes_the_source_image(tiny, oracle):
    # Each generated image gets exactly its source image's (random) feature, every real image a
    # different random one: rank-1 would be 100% if the source image were left in the gallery.
    _, data = tiny
    rng = np.random.default_rng(0)
    feats = {Path(r.path).stem: rng.normal(size=64).astype(np.float32) for r in data.train}

    def features(paths):
        return np.stack([feats[Path(p).stem.split("_fake_")[0]] for p in paths])

    res = quality.identity_preservation(features, oracle, data.train)
    # Chance: a handful of true matches among ~50 candidates.
    assert res["generated"]["rank1"] < 50.0
    assert res["source"]["rank1"] < 50.0
    assert res["generated"]["rank1"] == pytest.approx(res["source"]["rank1"])  # same features, same ranking


def test_identity_preservation_counts_orphans_and_subsamples(tiny, oracle):
    _, data = tiny
    stray = CamStyleRecord(oracle[0].path, 9999, 0, 1, "/nowhere/9999_c1s1_000025_01.jpg")

    def features(paths):
        return np.ones((len(paths), 4), np.float32)

    res = quality.identity_preservation(features, list(oracle) + [stray], data.train, max_queries=10)
    assert res["num_orphans"] == 1
    assert res["num_queries"] == 10
    with pytest.raises(ValueError, match="none of"):
        quality.identity_preservation(features, [stray], data.train)


def test_synthetic_fidelity_true_rendering_is_perfect(tiny, oracle):
    root, _ = tiny
    res = quality.synthetic_fidelity(root, oracle, max_images=None)
    assert res["num_images"] == len(oracle) and res["num_skipped"] == 0
    assert res["generated"]["l1_masked"] < 1e-6
    assert res["generated"]["psnr_masked"] > 99.0
    # The untranslated source image is far from the target-camera truth.
    assert res["identity"]["l1_masked"] > 0.03
    assert res["identity"]["psnr_masked"] < 30.0
    assert res["improved_fraction"] == 1.0


def test_synthetic_fidelity_wrong_camera_scores_worse(tiny, oracle, tmp_path):
    root, data = tiny
    right = quality.synthetic_fidelity(root, oracle, max_images=None)
    wrong_recs = _write_renderings(root, data, tmp_path / "wrong", camera_of=lambda dst: dst + 1)
    wrong = quality.synthetic_fidelity(root, wrong_recs, max_images=None)
    assert wrong["generated"]["l1_masked"] > right["generated"]["l1_masked"] + 0.02
    assert wrong["generated"]["psnr_masked"] < right["generated"]["psnr_masked"] - 20
    # A generator's output at another size is resized to the truth's size before scoring.
    big = _write_renderings(root, data, tmp_path / "big", scale=2)
    sized = quality.synthetic_fidelity(root, big, max_images=20)
    assert sized["num_images"] == 20
    assert sized["generated"]["psnr_masked"] > 25.0
    assert sized["generated"]["l1_masked"] < sized["identity"]["l1_masked"]


def test_model_features_wraps_a_torch_model(tiny, oracle, tmp_path):
    import torch

    _, data = tiny
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())  # (B, 3, H, W) -> (B, 3)
    features = quality.model_features(model, image_size=(64, 32), batch_size=16)
    feats = features([r.path for r in data.train[:5]])
    assert feats.shape == (5, 3) and feats.dtype == np.float32
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)  # L2-normalised
    res = quality.identity_preservation(features, oracle, data.train)
    assert 0.0 <= res["generated"]["rank1"] <= 100.0 and res["generated"]["num_valid_queries"] > 0
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="could not be read"):  # rows must stay aligned with paths
        features([data.train[0].path, str(bad)])
