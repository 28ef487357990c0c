"""StarGAN reads the training split only (issue 13, item 17): a folder with bounding_box_train/
alone trains, through the library and through the tool. Fails on the code before the fix, which
demanded query/ and bounding_box_test/ as well."""

from __future__ import annotations

import shutil

import pytest
from test_reliability_train_stargan import TINY as STARGAN_TINY

from reid_stargan.cli.train_stargan import cli
from reid_stargan.config import load_config
from reid_stargan.data.datasets import DatasetError, build_dataset
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.trainer import train_stargan

# The reliability tests' tiny StarGAN, for 2 iterations (the later override wins).
TINY = [*STARGAN_TINY, "train.num_iters=2"]


@pytest.fixture(scope="module")
def train_only_set(tmp_path_factory):
    from reid_stargan.data.synthetic import PRESETS, make_synthetic

    full = tmp_path_factory.mktemp("rel_train_only") / "tiny"
    make_synthetic(full, seed=0, **PRESETS["tiny"])  # 4 cameras
    root = full.parent / "train_only"
    root.mkdir()
    shutil.copytree(full / "bounding_box_train", root / "bounding_box_train")
    return root


def test_parsers_read_the_training_split_alone(train_only_set):
    with pytest.raises(DatasetError, match="missing folder .*query"):
        build_dataset("market_layout", train_only_set)  # re-ID still needs its test split
    ds = build_dataset("market_layout", train_only_set, train_only=True)
    assert len(ds.train) > 0 and ds.query == [] and ds.gallery == [] and ds.num_cameras == 4


def test_stargan_trains_on_a_folder_with_only_bounding_box_train(train_only_set, tmp_path, capsys):
    cfg = load_config(StarGANConfig, None, [f"data.root={train_only_set}", *TINY])
    generator = train_stargan(cfg, tmp_path / "lib", progress=False)
    assert generator.is_file()
    blank = tmp_path / "blank.yaml"
    blank.write_text("{}\n")
    code = cli(["--config", str(blank), "--no-progress", "--run-dir", str(tmp_path / "tool"),
                "--set", f"data.root={train_only_set}", *TINY])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "tool" / "checkpoints" / "generator.pt").is_file()
