"""`train.lr_schedule`: linear-to-zero (default) and the official yunjey/stargan schedule, against hand values."""

from __future__ import annotations

import pytest

from reid_stargan.config import load_config
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.schedule import LR_SCHEDULES, lr_at, official_lr_at, schedule_lr


def official_by_hand(num_iters, num_iters_decay, lr_update_step=1000, base=1e-4):
    """The lr each iteration uses, by walking the official rule: after 1-based iteration k, subtract
    base / num_iters_decay when k is a multiple of lr_update_step and k > num_iters - num_iters_decay.
    Returns (lr of every iteration, the lr left after the last one)."""
    lr, used = base, []
    for k in range(1, num_iters + 1):
        used.append(lr)
        if k % lr_update_step == 0 and k > num_iters - num_iters_decay:
            lr -= base / num_iters_decay
    return used, lr


def test_official_defaults_hand_values():
    # 200000 iterations, decay over the last 100000, base 1e-4: steps of 1e-4 / 1e5 = 1e-9.
    f = lambda i: official_lr_at(i, 1e-4, 200_000, 100_000)  # noqa: E731
    assert f(0) == 1e-4
    assert f(100_999) == 1e-4  # k = 100000 is not > 100000: the first step is after k = 101000
    assert f(101_000) == pytest.approx(1e-4 - 1e-9, rel=1e-12)
    assert f(150_500) == pytest.approx(1e-4 - 50e-9, rel=1e-12)  # k = 101000..150000
    # The last iteration (0-based 199999) has seen 99 steps; the 100th comes after it.
    assert f(199_999) == pytest.approx(9.9901e-5, rel=1e-12)
    assert f(200_000) == pytest.approx(9.99e-5, rel=1e-12)  # the value the official log prints last
    assert f(199_999) / 1e-4 > 0.999  # in effect a constant lr


def test_hhl_stargan4reid_values():
    # HHL's stargan4reid main.py: 220000 iterations, decay 110000, same rule.
    last = official_lr_at(219_999, 1e-4, 220_000, 110_000)
    assert last == pytest.approx(1e-4 - 109 * 1e-4 / 110_000, rel=1e-12)
    assert last == pytest.approx(9.990091e-5, rel=1e-6)


@pytest.mark.parametrize(("num_iters", "decay", "step"), [(200_000, 100_000, 1000), (220_000, 110_000, 1000),
                                                          (5000, 1700, 300), (10, 10, 1), (12, 5, 7)])
def test_official_equals_running_subtraction(num_iters, decay, step):
    used, left = official_by_hand(num_iters, decay, step)
    ours = [official_lr_at(i, 1e-4, num_iters, decay, step) for i in range(num_iters + 1)]
    assert ours[:-1] == pytest.approx(used, rel=1e-13)
    assert ours[-1] == pytest.approx(left, rel=1e-13)


def test_linear_is_still_the_default_and_unchanged():
    cfg = load_config(StarGANConfig, None, [])
    assert cfg.train.lr_schedule == "linear" and cfg.train.lr_update_step == 1000
    for i in (0, 99_999, 100_000, 150_000, 199_999):
        assert schedule_lr("linear", i, 1e-4, 200_000, 100_000) == lr_at(i, 1e-4, 200_000, 100_000)
    assert schedule_lr("linear", 199_999, 1e-4, 200_000, 100_000) == 0.0
    assert schedule_lr("official", 199_999, 1e-4, 200_000, 100_000) == official_lr_at(199_999, 1e-4, 200_000,
                                                                                        100_000)


def test_unknown_schedule_is_refused_with_the_valid_names():
    assert LR_SCHEDULES == ("linear", "official")
    with pytest.raises(ValueError, match="linear"):
        schedule_lr("cosine", 0, 1e-4, 10, 5)
    cfg = load_config(StarGANConfig, None, ["train.lr_schedule=cosine"])
    with pytest.raises(ValueError, match=r"train.lr_schedule must be one of \['linear', 'official'\]"):
        cfg.validate()
    with pytest.raises(ValueError, match="lr_update_step"):
        load_config(StarGANConfig, None, ["train.lr_update_step=0"]).validate()


def test_no_decay_window_keeps_the_base_lr():
    assert official_lr_at(9, 1e-4, 10, 0) == 1e-4


def test_training_loop_uses_the_configured_schedule(tmp_path):
    """A 6-iteration run: decay over the last 4, update every 2 -> steps after k = 4 and 6 (k > 2)."""
    from reid_stargan.data.synthetic import PRESETS, make_synthetic
    from reid_stargan.gan.trainer import train_stargan
    from reid_stargan.utils.rundir import read_stats

    root = tmp_path / "tiny"
    make_synthetic(root, seed=0, **PRESETS["tiny"])
    tiny = ["gan.image_size=[16,8]", "gan.g_conv_dim=8", "gan.g_repeat_num=1", "gan.d_conv_dim=8",
            "gan.d_repeat_num=3", "train.batch_size=4", "train.n_critic=2", "train.seed=3", "runtime.device=cpu",
            "runtime.in_memory=true", "runtime.num_workers=0", "log.log_every=1", "log.sample_every=1000",
            "log.checkpoint_every=1000", "log.sample_rows=2", "log.eval_images=8", "log.tensorboard=false",
            "train.num_iters=6", "train.num_iters_decay=4", "train.g_lr=0.01", "train.d_lr=0.02"]
    expected = {
        "official": [0.01, 0.01, 0.01, 0.01, 0.0075, 0.0075],  # minus 0.01 / 4 after k = 4 (and after k = 6)
        "linear": [0.01, 0.01, 0.01 * 3 / 4, 0.01 * 2 / 4, 0.01 * 1 / 4, 0.0],
    }
    for name, g_lrs in expected.items():
        cfg = load_config(StarGANConfig, None, [f"data.root={root}", *tiny, f"train.lr_schedule={name}",
                                                 "train.lr_update_step=2"])
        train_stargan(cfg, tmp_path / name, progress=False)
        stats = read_stats(tmp_path / name)
        assert [r["lr/g"] for r in stats] == pytest.approx(g_lrs, abs=1e-6), name
        assert [r["lr/d"] for r in stats] == pytest.approx([2 * v for v in g_lrs], abs=1e-6), name
