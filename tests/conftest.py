"""Shared test fixtures: small file trees in the real data sets' formats, and the real sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests run on 2 CPU cores beside other work: keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def real_dataset(name: str) -> Path:
    """Path of a real data set under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not (path / "bounding_box_train").is_dir():
        pytest.skip(f"real data set {name} not found at {path} (../shared/data is absent on this machine)")
    return path


def write_image(path: Path, size=(32, 64), color=(120, 60, 30)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


# A tiny synthetic Market-layout set and a small re-ID model file, shared by the feature tools' tests.
TOOL_SET_SIZES = dict(num_train_ids=4, num_test_ids=5, num_cameras=3, images_per_id_cam=2, min_cameras_per_id=2,
                      max_cameras_per_id=3, height=64, width=32)


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    from reid_stargan.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("market") / "set"
    make_synthetic(root, seed=0, **TOOL_SET_SIZES)
    return root


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    from test_export import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("model") / "model.pt", "small", height=64, width=32)
