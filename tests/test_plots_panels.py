"""What the report figures show: CMC y limits that follow the data, mAP in the legend, one loss panel per kind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reid_stargan.pipeline import plots


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cmc_y_limits_follow_the_data():
    high = plots.cmc_figure({"a": [80, 88, 92, 95], "b": [84, 90, 93, 96]}, max_rank=4)
    lo, hi = high.axes[0].get_ylim()
    _close(high)
    assert 70 < lo < 80 and 96 < hi <= 100  # not the fixed 0-100 that flattens close curves
    low = plots.cmc_figure({"a": [5, 8, 11, 15]}, max_rank=4)
    lo, hi = low.axes[0].get_ylim()
    _close(low)
    assert 0 <= lo < 5 and 15 < hi < 25
    banded = plots.cmc_figure({"a": [80, 88, 92, 95]}, max_rank=4, std={"a": [10, 1, 1, 1]})
    lo, _ = banded.axes[0].get_ylim()
    _close(banded)
    assert lo < 70  # the +-std band is inside the plot too
    perfect = plots.cmc_figure({"a": [100.0] * 5})
    lo, hi = perfect.axes[0].get_ylim()
    _close(perfect)
    assert lo < 100 and hi == 100 and perfect.axes[0].get_xlim() == (1, 5)


def test_cmc_legend_shows_rank1_and_map():
    fig = plots.cmc_figure({"baseline": [60, 75], "+CamStyle": [70, 82]}, maps={"baseline": 41.3, "+CamStyle": 50.0})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    _close(fig)
    assert labels == ["baseline (rank-1 60.0%, mAP 41.3%)", "+CamStyle (rank-1 70.0%, mAP 50.0%)"]


def test_evaluate_reid_writes_a_cmc_png_with_its_map(tmp_path, monkeypatch):
    from reid_stargan.cli import evaluate_reid

    rng = np.random.default_rng(0)
    g_pids, g_cams = np.repeat(np.arange(10), 4), np.tile(np.arange(4), 10)
    g = rng.normal(size=(40, 8)).astype("f4") + 2 * np.eye(10, 8, dtype="f4")[g_pids]
    np.savez(tmp_path / "f.npz", q_feats=g[::4] + 0.3, g_feats=g, q_pids=np.arange(10), g_pids=g_pids,
             q_camids=np.full(10, 9), g_camids=g_cams)
    seen = {}

    def spy(curves, out_png, **kw):
        seen.update(curves=curves, **kw)
        return real(curves, out_png, **kw)

    real = plots.cmc_plot
    monkeypatch.setattr(plots, "cmc_plot", spy)
    metrics = evaluate_reid.main(["--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "o"), "--max-rank", "20"])
    assert (tmp_path / "o" / "cmc.png").stat().st_size > 1000
    assert seen["maps"] == {"cosine": metrics["mAP"]} and seen["curves"]["cosine"] == metrics["cmc"]
    assert seen["max_rank"] == 20


def _write_stats(path, keys, n=200, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for i in range(n):
            rec = {"time": 1.0, "step": 10 * (i + 1), "epoch": i / 50, "it_per_s": 3.0}
            rec.update({k: float(1.0 / (i + 1) + rng.normal()) for k in keys})
            f.write(json.dumps(rec) + "\n")
    return path


STARGAN_KEYS = ("D/loss_real", "D/loss_fake", "D/loss_cls", "D/loss_gp", "D/loss", "D/acc_real", "G/loss_fake",
                "G/loss_cls", "G/loss_rec", "G/loss", "lr/g", "lr/d")


def test_loss_figure_has_one_panel_per_kind_and_a_shared_iteration_axis(tmp_path):
    fig = plots.loss_figure(_write_stats(tmp_path / "stats.jsonl", STARGAN_KEYS))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["adversarial", "domain classification", "reconstruction", "gradient penalty",
                      "total (weighted)", "accuracy (%)", "learning rate"]
    by_title = dict(zip(titles, fig.axes))
    legend = {t: [x.get_text() for x in ax.get_legend().get_texts()] for t, ax in by_title.items()}
    assert legend["adversarial"] == ["D/loss_fake", "D/loss_real", "G/loss_fake"]
    assert legend["reconstruction"] == ["G/loss_rec"]
    assert all(ax.get_shared_x_axes().joined(fig.axes[0], ax) for ax in fig.axes)
    assert by_title["learning rate"].get_xlabel() == "iteration"  # lowest of its column: the hole below it
    assert by_title["accuracy (%)"].get_xlabel() == "iteration"
    assert max(by_title["accuracy (%)"].lines[0].get_xdata()) == 2000
    _close(fig)


def test_loss_curves_are_smoothed_with_the_raw_values_faint_behind(tmp_path):
    fig = plots.loss_figure(_write_stats(tmp_path / "stats.jsonl", ("G/loss_rec", "D/acc_real")))
    rec = next(ax for ax in fig.axes if ax.get_title() == "reconstruction")
    raw, smooth = rec.lines
    assert raw.get_alpha() < 0.5 and smooth.get_alpha() is None
    assert np.std(np.diff(smooth.get_ydata())) < 0.3 * np.std(np.diff(raw.get_ydata()))
    assert smooth.get_ydata()[0] == raw.get_ydata()[0]  # a debiased EMA starts at the first value
    acc = next(ax for ax in fig.axes if ax.get_title() == "accuracy (%)")
    assert max(acc.lines[0].get_ydata()) > 1.5  # fractions drawn in percent
    _close(fig)
    unsmoothed = plots.loss_figure(tmp_path / "stats.jsonl", smoothing=1)
    raw, smooth = unsmoothed.axes[0].lines
    np.testing.assert_allclose(smooth.get_ydata(), raw.get_ydata())
    _close(unsmoothed)


def test_multi_dataset_keys_join_their_kind(tmp_path):
    keys = ("celeba/D/loss_cls", "rafd/D/loss_cls", "celeba/G/loss_rec", "lr/g")
    fig = plots.loss_figure(_write_stats(tmp_path / "stats.jsonl", keys, n=20))
    assert [ax.get_title() for ax in fig.axes] == ["domain classification", "reconstruction", "learning rate"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["celeba/D/loss_cls", "rafd/D/loss_cls"]
    _close(fig)


def test_loss_curves_png_matches_the_figure(tmp_path):
    stats = _write_stats(tmp_path / "stats.jsonl", STARGAN_KEYS, n=30)
    size = plots.loss_curves(stats, tmp_path / "losses.png")
    assert size == (1100, 1010)  # 2 columns x 4 rows of panels
    assert (tmp_path / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only_lr = tmp_path / "lr.jsonl"
    only_lr.write_text(json.dumps({"step": 1, "lr/g": 0.1}) + "\n")
    with pytest.raises(ValueError, match="no numeric keys"):
        plots.loss_figure(only_lr)
