"""Issue 13, item 7, in the library: StarGAN's data loader itself (what the pipeline calls) refuses
a single-camera training set and cameras without training images, unless asked."""

import pytest
from conftest import write_image

from reid_stargan.data.config import DataConfig
from reid_stargan.gan.data import build_domain_data


def _market(root, cams_and_counts):
    for cam, count in cams_and_counts:
        for i in range(count):
            write_image(root / "bounding_box_train" / f"{i % 3 + 1:04d}_c{cam}s1_{i:06d}_00.jpg")
    return root


def test_single_camera_is_refused(tmp_path):
    root = _market(tmp_path / "one", [(1, 4)])
    with pytest.raises(ValueError, match="1 camera"):
        build_domain_data(DataConfig(root=str(root), verify_images=False))


def test_empty_camera_is_refused_unless_allowed(tmp_path):
    root = _market(tmp_path / "gap", [(1, 3), (3, 3)])  # c2 has no training image
    with pytest.raises(ValueError, match="c2 .*no training image"):
        build_domain_data(DataConfig(root=str(root), verify_images=False))
    data = build_domain_data(DataConfig(root=str(root), verify_images=False, allow_empty_cameras=True))
    assert data.spec.num_domains == 3 and len(data) == 6


def test_unmatched_names_reach_stargans_summary(tmp_path):
    """Issue 13, item 8: the count of skipped file names is in StarGAN's summary.json."""
    import json

    from conftest import REPO_ROOT

    from reid_stargan.config import load_config
    from reid_stargan.gan.config import StarGANConfig
    from reid_stargan.gan.trainer import train_stargan

    root = _market(tmp_path / "data", [(1, 4), (2, 4)])
    write_image(root / "bounding_box_train" / "not_a_market_name.jpg")
    cfg = load_config(StarGANConfig, REPO_ROOT / "configs/stargan/synthetic_cpu.yaml", [
        f"data.root={root}", "train.seed=0", "train.num_iters=2", "train.num_iters_decay=1", "train.batch_size=2",
        "gan.image_size=[16, 8]", "gan.g_conv_dim=4", "gan.d_conv_dim=4", "gan.g_repeat_num=1", "gan.d_repeat_num=2",
        "runtime.device=cpu", "runtime.in_memory=true", "runtime.num_workers=0", "log.sample_every=1000",
        "log.checkpoint_every=1000", "log.sample_rows=2", "log.eval_images=4", "log.tensorboard=false",
        "data.verify_images=false"])
    train_stargan(cfg, tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["unparsed_names"] == 1


def test_unmatched_names_reach_generates_summary(tmp_path):
    """Issue 13, item 8: generate_camstyle's summary.json counts the file names that did not parse."""
    import json

    from test_camstyle import make_checkpoint, make_market

    from reid_stargan.cli.generate_camstyle import main

    root = make_market(tmp_path / "data")
    write_image(root / "bounding_box_train" / "stray.jpg")
    ckpt = make_checkpoint(tmp_path / "ckpt")
    assert main(["--checkpoint", str(ckpt), "--data-root", str(root), "--out", str(tmp_path / "cam"),
                 "--no-progress", "--workers", "1"]) == 0
    assert json.loads((tmp_path / "cam" / "summary.json").read_text())["unparsed_names"] == 1
