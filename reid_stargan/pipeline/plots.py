"""Report figures: translation grid, CMC curves, StarGAN loss curves (matplotlib, Agg, imported lazily).

Every function renders into memory and writes the PNG atomically, so a report folder never holds a
half-written image; each returns the PNG's (width, height) in pixels.

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
REAL_FRAME_COLOR = "#d62728"

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
                     camera_names: Sequence[str] | None = None, row_labels: Sequence[str] | None = None
                     ) -> tuple[int, int]:
    """One row per real image, one column per camera: the generated rendering in that camera's style,
    and in the source's own column the real image itself, framed in red and titled "real".

    ``rows``: [(source_path, source_camid, {camid: generated_path}), ...]; a camera missing from the
    dict is shown as an empty cell. ``camera_names`` label the columns (default "cam 1".."cam N",
    1-based as in Market-1501 names); ``row_labels`` the rows (default: the source file's stem).
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
                if c == src_cam:
                    spine.set_color(REAL_FRAME_COLOR)
                    spine.set_linewidth(3)
                else:
                    spine.set_color("0.8")
            if r == 0:
                ax.set_title(camera_names[c], fontsize=9)
            if c == src_cam:
                ax.set_xlabel("real", fontsize=8, color=REAL_FRAME_COLOR, labelpad=1)
        label = row_labels[r] if row_labels is not None else Path(source).stem
        axes[r][0].annotate(label, xy=(-0.08, 0.5), xycoords="axes fraction", ha="right", va="center",
                            fontsize=7)
    return _save(fig, out_png)


def cmc_plot(curves: Mapping[str, Sequence[float]], out_png: str | os.PathLike, max_rank: int = 20,
             std: Mapping[str, Sequence[float]] | None = None, title: str = "CMC") -> tuple[int, int]:
    """CMC curves (percent at ranks 1..N) of several runs in one plot, with a +-std band when given.

    ``curves`` maps a label ("baseline", "+CamStyle") to its CMC list; ``std`` maps the same labels
    to per-rank standard deviations (over seeds). Curves are cut at ``max_rank``. The legend shows
    each run's rank-1. Returns the PNG's (width, height) in pixels.
    """
    if not curves:
        raise ValueError("cmc_plot: no curves")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for label, cmc in curves.items():
        cmc = list(cmc)[:max_rank]
        if not cmc:
            raise ValueError(f"cmc_plot: curve {label!r} is empty")
        ranks = list(range(1, len(cmc) + 1))
        (line,) = ax.plot(ranks, cmc, marker="o", markersize=3, label=f"{label} (rank-1 {cmc[0]:.1f}%)")
        if std is not None and label in std:
            s = list(std[label])[: len(cmc)]
            if len(s) != len(cmc):
                raise ValueError(f"cmc_plot: std of {label!r} has {len(s)} ranks, curve has {len(cmc)}")
            ax.fill_between(ranks, [m - d for m, d in zip(cmc, s)], [m + d for m, d in zip(cmc, s)],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_xlim(1, max_rank)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lowest = min(min(list(c)[:max_rank]) for c in curves.values())
    ax.set_ylim(max(0.0, math.floor(lowest / 10.0) * 10.0 - 5.0), 100.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title(title)
    fig.tight_layout()  # layout inside the fixed figure size; the PNG size does not change
    return _save(fig, out_png)


_STEP_KEYS = ("step", "iteration", "iter", "epoch")


def loss_curves(stats_jsonl: str | os.PathLike, out_png: str | os.PathLike,
                groups: Sequence[str] = ("D/", "G/")) -> tuple[int, int]:
    """StarGAN losses from a run's ``stats.jsonl``: one panel per key prefix in ``groups`` (the
    discriminator's ``D/loss_real``... and the generator's ``G/loss_rec``...).

    The x axis is the first of step / iteration / iter / epoch found in a record (else the record's
    index); records without any key of a group are skipped for that panel. Returns (width, height).
    """
    records = []
    with open(stats_jsonl, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                records.append(json.loads(line))
    series: dict[str, dict[str, tuple[list[float], list[float]]]] = {g: {} for g in groups}
    for i, rec in enumerate(records):
        x = next((rec[k] for k in _STEP_KEYS if isinstance(rec.get(k), (int, float))), i)
        for key, value in rec.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            group = next((g for g in groups if key.startswith(g)), None)
            if group is not None:
                xs, ys = series[group].setdefault(key, ([], []))
                xs.append(float(x))
                ys.append(float(value))
    if not any(series.values()):
        raise ValueError(f"{stats_jsonl}: no numeric keys starting with {', '.join(groups)}")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(5.0 * len(groups), 3.6), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for key, (xs, ys) in sorted(series[group].items()):
            ax.plot(xs, ys, label=key, linewidth=1)
        ax.set_title(f"{group.rstrip('/')} losses")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if series[group]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_png)
