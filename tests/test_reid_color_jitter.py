"""The re-ID light jitter: off by default, seeded, bounded, and it keeps which colour is where."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reid_stargan.config import ConfigError, load_config
from reid_stargan.reid.config import InputConfig, ReidConfig
from reid_stargan.reid.data import augment, jitter_light


def striped_image() -> Image.Image:
    a = np.zeros((32, 16, 3), np.uint8)
    a[:16] = (200, 40, 40)  # a red shirt over blue trousers
    a[16:] = (30, 60, 160)
    return Image.fromarray(a)


def test_jitter_changes_light_within_bounds_and_keeps_the_hue():
    img, strength = striped_image(), 0.2
    outs = [np.asarray(jitter_light(img, strength, np.random.default_rng(s)), np.float32) for s in range(20)]
    src = np.asarray(img, np.float32)
    assert len({o.tobytes() for o in outs}) == 20  # every seed draws other factors
    np.testing.assert_array_equal(outs[3], np.asarray(jitter_light(img, strength, np.random.default_rng(3))))
    for out in outs:
        ratio = out.mean() / src.mean()
        assert (1 - strength) ** 2 * (1 - strength / 2) - 0.05 < ratio < (1 + strength) ** 2 * (1 + strength / 2)
        # The shirt stays redder than the trousers, the trousers bluer: colour is not swapped.
        shirt, trousers = out[:16].mean((0, 1)), out[16:].mean((0, 1))
        assert shirt[0] > shirt[2] and trousers[2] > trousers[0]


def test_jitter_is_off_by_default_and_the_knob_is_checked():
    img = striped_image()
    assert InputConfig().color_jitter == 0.0 and ReidConfig().input.color_jitter == 0.0
    jittered = augment(img, InputConfig(height=32, width=16, pad=0, erasing=0.0, flip=0.0, color_jitter=0.3),
                       np.random.default_rng(5))
    unjittered = augment(img, InputConfig(height=32, width=16, pad=0, erasing=0.0, flip=0.0), np.random.default_rng(5))
    assert not torch.equal(jittered, unjittered)
    with pytest.raises(ConfigError, match="input.color_jitter"):
        load_config(ReidConfig, None, ["input.color_jitter=1.5"])
