"""Every shipped re-ID config loads, and the pairs the pipeline compares share their schedule."""

from __future__ import annotations

from pathlib import Path

import pytest

from reid_stargan.config import ConfigError, load_config
from reid_stargan.reid.config import ReidConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "reid"
PAIRS = ["market", "duke", "msmt17", "cuhk03", "synthetic", "synthetic_cpu", "cuhk03_cpu"]


@pytest.mark.parametrize("name", PAIRS)
def test_baseline_and_camstyle_configs_share_the_schedule(name):
    base = load_config(ReidConfig, CONFIGS / f"{name}_baseline.yaml")
    cam = load_config(ReidConfig, CONFIGS / f"{name}_camstyle.yaml")
    assert (base.train.mode, cam.train.mode) == ("baseline", "camstyle")
    assert base.optim == cam.optim and base.sampler == cam.sampler and base.train.seed == cam.train.seed
    assert base.data == cam.data and base.model == cam.model and base.input == cam.input


@pytest.mark.parametrize("name", ["market2duke_hhl", "duke2market_hhl"])
def test_hhl_configs(name):
    cfg = load_config(ReidConfig, CONFIGS / f"{name}.yaml")
    assert cfg.train.mode == "hhl" and cfg.hhl.triplet_weight == 0.5 and cfg.loss.triplet_margin == 0.3
    assert cfg.hhl.target.name != cfg.data.name


def test_unknown_key_and_bad_share_are_refused():
    with pytest.raises(ConfigError, match="valid keys"):
        load_config(ReidConfig, CONFIGS / "synthetic_cpu_baseline.yaml", ["sampler.num_idz=3"])
    with pytest.raises(ConfigError, match="camstyle.share"):
        load_config(ReidConfig, CONFIGS / "synthetic_cpu_baseline.yaml", ["camstyle.share=1.5"])
