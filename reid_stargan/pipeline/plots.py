"""Report figures: translation grid, CMC curves, StarGAN loss curves (matplotlib, Agg, imported lazily).

Every function renders into memory and writes the PNG atomically, so a report folder never holds a
half-written image; each returns the PNG's (width, height) in pixels. ``cmc_figure`` and
``loss_figure`` return the matplotlib Figure itself, for callers (and tests) that want to look at it.

Example::

    from reid_stargan.pipeline.plots import cmc_plot
    cmc_plot({"baseline": [60, 75, 82, 86], "+CamStyle": [70, 82, 88, 91]}, "cmc.png", max_rank=4)
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from reid_stargan.utils.io import atomic_write_bytes

DPI = 100
CELL_W, CELL_H = 0.9, 1.8  # inches per grid cell: re-ID crops are 2:1 (H:W)
# The real image's frame is a neutral slate blue, not red: in the ranked lists (eval/visualize.py) red
# means a wrong match, and the same report shows both pictures.
REAL_FRAME_COLOR = "#3a5f8f"

GridRow = tuple[str, int, Mapping[int, str]]  # (source path, source camid 0-based, {camid: generated path})


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # never needs a display; safe under torchrun and CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_png: str | os.PathLike) -> tuple[int, int]:
    """Render ``fig`` to PNG bytes at a fixed DPI (no tight bbox: sizes stay predictable), write atomically."""
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    width, height = (int(round(v)) for v in fig.get_size_inches() * DPI)
    plt.close(fig)
    atomic_write_bytes(out_png, buf.getvalue())
    return width, height


def translation_grid(rows: Sequence[GridRow], num_cameras: int, out_png: str | os.PathLike,
                     camera_names: Sequence[str] | None = None) -> tuple[int, int]:
    """One row per real image, one column per camera: the generated rendering in that camera's style,
    and in the source's own column the real image itself, framed in slate blue and titled "real".

    ``rows``: [(source_path, source_camid, {camid: generated_path}), ...]; a camera missing from the
    dict is shown as an empty cell. ``camera_names`` label the columns (default "cam 1".."cam N",
    1-based as in Market-1501 names); each row is labelled with the source file's stem.
    Returns the PNG's (width, height) in pixels.
    """
    if not rows:
        raise ValueError("translation_grid: no rows")
    if camera_names is None:
        camera_names = [f"cam {c + 1}" for c in range(num_cameras)]
    if len(camera_names) != num_cameras:
        raise ValueError(f"{len(camera_names)} camera names for {num_cameras} cameras")
    from reid_stargan.data.imageio import load_rgb

    plt = _pyplot()
    label_w = 1.3  # inches for the row labels on the left
    top_h, bottom_h = 0.35, 0.25  # inches for the column titles and the last row's "real" label
    fig_w, fig_h = label_w + CELL_W * num_cameras, top_h + bottom_h + CELL_H * len(rows)
    fig, axes = plt.subplots(len(rows), num_cameras, figsize=(fig_w, fig_h), squeeze=False)
    fig.subplots_adjust(left=label_w / fig_w, right=0.99, top=1 - top_h / fig_h, bottom=bottom_h / fig_h,
                        wspace=0.06, hspace=0.12)
    for r, (source, src_cam, generated) in enumerate(rows):
        if not 0 <= src_cam < num_cameras:
            raise ValueError(f"row {r}: source camera {src_cam} outside 0..{num_cameras - 1}")
        for c in range(num_cameras):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            path = source if c == src_cam else generated.get(c)
            if path is not None:
                ax.imshow(load_rgb(path))
            for spine in ax.spines.values():
                spine.set_visible(c == src_cam or path is None)
                spine.set_color(REAL_FRAME_COLOR if c == src_cam else "0.8")
                if c == src_cam:
                    spine.set_linewidth(3)
            if r == 0:
                ax.set_title(camera_names[c], fontsize=9)
            if c == src_cam:
                ax.set_xlabel("real", fontsize=8, color=REAL_FRAME_COLOR, labelpad=1)
        axes[r][0].annotate(Path(source).stem, xy=(-0.08, 0.5), xycoords="axes fraction", ha="right",
                            va="center", fontsize=7)
    return _save(fig, out_png)


def _percent_limits(values: Sequence[float], pad_frac: float = 0.08, min_pad: float = 2.0) -> tuple[float, float]:
    """y limits around the data (a fixed 0-100 axis squeezes curves that differ by a few points)."""
    lo, hi = min(values), max(values)
    pad = max(min_pad, pad_frac * (hi - lo))
    return max(0.0, lo - pad), min(100.0, hi + pad)


def cmc_figure(curves: Mapping[str, Sequence[float]], max_rank: int = 20,
               std: Mapping[str, Sequence[float]] | None = None, title: str = "CMC",
               maps: Mapping[str, float] | None = None):
    """The matplotlib Figure of :func:`cmc_plot` (same arguments, no file); the caller closes it."""
    if not curves:
        raise ValueError("cmc_plot: no curves")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    drawn: list[float] = []  # every plotted value, band edges included: the y limits must show them all
    longest = 1
    for label, cmc in curves.items():
        cmc = list(cmc)[:max_rank]
        if not cmc:
            raise ValueError(f"cmc_plot: curve {label!r} is empty")
        ranks = list(range(1, len(cmc) + 1))
        longest = max(longest, len(cmc))
        text = f"rank-1 {cmc[0]:.1f}%" + (f", mAP {maps[label]:.1f}%" if maps and label in maps else "")
        # clip_on=False: markers at 100% sit on the upper limit and would be cut in half.
        (line,) = ax.plot(ranks, cmc, marker="o", markersize=3, label=f"{label} ({text})", clip_on=False)
        drawn += cmc
        if std is not None and label in std:
            s = list(std[label])[: len(cmc)]
            if len(s) != len(cmc):
                raise ValueError(f"cmc_plot: std of {label!r} has {len(s)} ranks, curve has {len(cmc)}")
            low, high = [m - d for m, d in zip(cmc, s)], [m + d for m, d in zip(cmc, s)]
            ax.fill_between(ranks, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
            drawn += low + high
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_xlim(1, max(longest, 2))  # one rank only (a 1-image gallery): a degenerate x range otherwise
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(*_percent_limits(drawn))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title(title)
    fig.tight_layout()  # layout inside the fixed figure size; the PNG size does not change
    return fig


def cmc_plot(curves: Mapping[str, Sequence[float]], out_png: str | os.PathLike, max_rank: int = 20,
             std: Mapping[str, Sequence[float]] | None = None, title: str = "CMC",
             maps: Mapping[str, float] | None = None) -> tuple[int, int]:
    """CMC curves (percent at ranks 1..N) of several runs in one plot, with a +-std band when given.

    ``curves`` maps a label ("baseline", "+CamStyle") to its CMC list; ``std`` maps the same labels
    to per-rank standard deviations (over seeds); ``maps`` to their mAP (percent), shown in the legend
    beside rank-1. Curves are cut at ``max_rank``; the y axis fits the curves and bands (within 0-100).
    Returns the PNG's (width, height) in pixels.
    """
    return _save(cmc_figure(curves, max_rank, std, title, maps), out_png)


_STEP_KEYS = ("step", "iteration", "iter", "epoch")
# Panels in drawing order. Each group has its own scale: on one axis the adversarial terms (+-15 with
# WGAN-GP) flatten reconstruction and classification, which move by tenths.
PANELS = ("adversarial", "domain classification", "reconstruction", "gradient penalty", "total (weighted)",
          "accuracy (%)", "learning rate", "other")
_TERM_PANEL = {"loss_real": "adversarial", "loss_fake": "adversarial", "loss_cls": "domain classification",
               "loss_rec": "reconstruction", "loss_identity": "reconstruction", "loss_gp": "gradient penalty",
               "loss": "total (weighted)"}


def _panel_of(key: str) -> str | None:
    """The panel of a stats key: ``D/loss_real``, ``celeba/G/loss_rec`` (multi-set prefix), ``lr/g``."""
    parts = key.split("/")
    if parts[0] == "lr":
        return "learning rate"
    if len(parts) < 2 or parts[-2] not in ("D", "G"):
        return None  # step, epoch, time, it_per_s: bookkeeping, not training signals
    if parts[-1].startswith("acc"):
        return "accuracy (%)"
    return _TERM_PANEL.get(parts[-1], "other")


def _read_series(stats_jsonl) -> tuple[dict[str, dict[str, tuple[list[float], list[float]]]], str]:
    """{panel: {key: (xs, ys)}} of the finite numeric values, and the x axis' name."""
    series: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    with open(stats_jsonl, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    step_keys = [next((k for k in _STEP_KEYS if isinstance(rec.get(k), (int, float))), None) for rec in records]
    first = next((k for k in step_keys if k), None)
    x_name = {None: "record", "epoch": "epoch"}.get(first, "iteration")
    for i, (rec, step_key) in enumerate(zip(records, step_keys)):
        x = rec[step_key] if step_key else i
        for key, value in rec.items():
            panel = _panel_of(key)
            if panel is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                xs, ys = series.setdefault(panel, {}).setdefault(key, ([], []))
                xs.append(float(x))
                ys.append(float(value))
    return series, x_name


def _ema(ys: Sequence[float], span: int) -> list[float]:
    """Debiased exponential moving average (TensorBoard's smoothing): the first value is not pulled to 0."""
    alpha, avg, weight, out = 2.0 / (span + 1.0), 0.0, 0.0, []
    for y in ys:
        avg = (1 - alpha) * avg + alpha * y
        weight = (1 - alpha) * weight + alpha
        out.append(avg / weight)
    return out


def _draw_panel(ax, panel: str, curves: Mapping[str, tuple[list[float], list[float]]], span: int) -> None:
    accuracy, schedule = panel.startswith("accuracy"), panel == "learning rate"
    for key, (xs, ys) in sorted(curves.items()):
        if accuracy and max(ys) <= 1.0:  # logged as fractions
            ys = [100.0 * y for y in ys]
        if schedule:  # a schedule, not a noisy measurement: smoothing would only shift the decay
            ax.plot(xs, ys, linewidth=1.4, label=key)
            continue
        (raw,) = ax.plot(xs, ys, linewidth=0.8, alpha=0.25)  # the raw values, faint behind the trend
        ax.plot(xs, _ema(ys, span), linewidth=1.4, color=raw.get_color(), label=key)
    if accuracy:
        ax.set_ylim(-2, 102)
    if schedule:
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.set_title(panel, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def loss_figure(stats_jsonl: str | os.PathLike, smoothing: int | None = None):
    """The matplotlib Figure of :func:`loss_curves` (same arguments, no file); the caller closes it."""
    series, x_name = _read_series(stats_jsonl)
    if not any(p in series for p in PANELS if p != "learning rate"):
        raise ValueError(f"{stats_jsonl}: no numeric keys of D/ or G/ terms (D/loss_real, G/loss_rec, ...)")
    panels = [p for p in PANELS if p in series]
    longest = max(len(xs) for curves in series.values() for xs, _ in curves.values())
    span = smoothing or max(1, round(longest / 25))
    plt = _pyplot()
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 2.4 * rows + 0.5), sharex=True, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[len(panels):]:
        fig.delaxes(ax)
    for i, (ax, panel) in enumerate(zip(flat, panels)):
        _draw_panel(ax, panel, series[panel], span)
        if i + cols >= len(panels):  # lowest panel of its column (above a deleted one: sharex hid its labels)
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(x_name)
    smoothed = f"EMA over {span} logged points, raw values faint" if span > 1 else "too few points to smooth"
    fig.suptitle(f"StarGAN training ({smoothed})", fontsize=11)
    fig.tight_layout()
    return fig


def loss_curves(stats_jsonl: str | os.PathLike, out_png: str | os.PathLike,
                smoothing: int | None = None) -> tuple[int, int]:
    """StarGAN training curves from a run's ``stats.jsonl``, one panel per kind of term.

    Panels (those with data): adversarial (``D/loss_real``, ``D/loss_fake``, ``G/loss_fake``), domain
    classification (``D/loss_cls``, ``G/loss_cls``), reconstruction (``G/loss_rec``, the identity
    warm-up's ``G/loss_identity``), gradient penalty (``D/loss_gp``), the weighted totals
    (``D/loss``, ``G/loss``), accuracies (``D/acc_real``, in %), the learning rates (``lr/g``,
    ``lr/d``) and any other ``D/`` / ``G/`` term; multi-data-set keys (``celeba/D/loss_cls``) join
    their kind's panel. Each curve but the lr is smoothed by an EMA over ``smoothing`` logged points
    (default 1/25 of the records), the raw values faint behind; the x axis (iterations, from ``step``) is shared.
    Raises ValueError when no D/ or G/ term is logged. Returns the PNG's (width, height).
    """
    return _save(loss_figure(stats_jsonl, smoothing), out_png)
