"""Report figures (valid PNGs of the promised size, written atomically) and the published-numbers table."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from reid_stargan.pipeline import plots
from reid_stargan.pipeline.published import HEADING, PUBLISHED, published_table_markdown


def _image(path, color):
    Image.new("RGB", (32, 64), color).save(path)
    return str(path)


def _open_png(path, expected_size):
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG"
        assert img.size == expected_size
        return np.asarray(img.convert("RGB"))


def _no_temp_files(folder):
    assert not [n for n in os.listdir(folder) if ".tmp-" in n]


@pytest.fixture
def grid_rows(tmp_path):
    rows = []
    for r, src_cam in enumerate((0, 2)):
        source = _image(tmp_path / f"real{r}.png", (250, 250, 250))
        generated = {c: _image(tmp_path / f"fake{r}_{c}.png", (0, 0, 255)) for c in range(4) if c != src_cam}
        rows.append((source, src_cam, generated))
    return rows


def test_translation_grid_png(grid_rows, tmp_path):
    out = tmp_path / "grid.png"
    size = plots.translation_grid(grid_rows, 4, out, camera_names=["A", "B", "C", "D"])
    pixels = _open_png(out, size)
    # The generated images (pure blue) and the neutral frame of the real image are in the picture, and
    # no red: red means a wrong match in the ranked lists of the same report.
    blue = (pixels[..., 2] > 200) & (pixels[..., 0] < 60) & (pixels[..., 1] < 60)
    frame = np.array([int(plots.REAL_FRAME_COLOR[i:i + 2], 16) for i in (1, 3, 5)])
    framed = (np.abs(pixels.astype(int) - frame).max(-1) < 12)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert blue.sum() > 1000 and framed.sum() > 50 and red.sum() == 0
    _no_temp_files(tmp_path)

    # One more camera -> wider; one more row -> taller.
    wider = plots.translation_grid(grid_rows, 5, tmp_path / "wide.png")
    taller = plots.translation_grid(grid_rows + grid_rows[:1], 4, tmp_path / "tall.png")
    assert wider[0] > size[0] and wider[1] == size[1]
    assert taller[1] > size[1] and taller[0] == size[0]
    _open_png(tmp_path / "wide.png", wider)


def test_translation_grid_rejects_bad_input(grid_rows, tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        plots.translation_grid([], 4, tmp_path / "x.png")
    with pytest.raises(ValueError, match="camera names"):
        plots.translation_grid(grid_rows, 4, tmp_path / "x.png", camera_names=["A"])
    with pytest.raises(ValueError, match="outside"):
        plots.translation_grid([(grid_rows[0][0], 7, {})], 4, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_cmc_plot_png_with_std(tmp_path):
    ranks = np.arange(1, 31)
    base = list(100 - 50 * np.exp(-ranks / 5))
    cam = list(100 - 40 * np.exp(-ranks / 5))
    out = tmp_path / "cmc.png"
    size = plots.cmc_plot({"baseline": base, "+CamStyle": cam}, out, max_rank=20,
                          std={"baseline": [2.0] * 30, "+CamStyle": [1.0] * 30})
    assert size == (600, 400)
    pixels = _open_png(out, size)
    assert pixels.std() > 10  # not a blank canvas
    with pytest.raises(ValueError, match="std"):
        plots.cmc_plot({"baseline": base}, tmp_path / "bad.png", max_rank=20, std={"baseline": [1.0] * 3})
    with pytest.raises(ValueError, match="no curves"):
        plots.cmc_plot({}, tmp_path / "bad.png")
    _no_temp_files(tmp_path)


def test_loss_curves_from_stats_jsonl(tmp_path):
    stats = tmp_path / "stats.jsonl"
    with open(stats, "w") as f:
        for step in range(0, 100, 10):
            f.write(json.dumps({"time": 1.0, "step": step, "D/loss_real": -step / 10, "D/loss_cls": 1 / (step + 1),
                                "G/loss_rec": 0.5 - step / 400, "lr": 1e-4}) + "\n")
    size = plots.loss_curves(stats, tmp_path / "losses.png")
    assert size == (1100, 530)  # adversarial, classification, reconstruction, lr: 2 x 2 panels
    _open_png(tmp_path / "losses.png", size)
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"step": 1, "lr": 0.1}) + "\n")
    with pytest.raises(ValueError, match="no numeric keys"):
        plots.loss_curves(empty, tmp_path / "none.png")


def test_published_table_is_labelled_and_sourced():
    md = published_table_markdown()
    assert md.startswith(f"## {HEADING}")
    assert "not measured here" in md
    for method in ("IDE + CamStyle", "HHL", "TriNet"):
        assert f"| {method} |" in md
    for source in ("github.com/zhunzhong07/CamStyle", "github.com/zhunzhong07/HHL", "1703.07737"):
        assert source in md
    # Every row cites a source that is listed under the table, and every number is a percentage.
    assert md.count("| [") == len(PUBLISHED)
    for r in PUBLISHED:
        assert 0 < r.rank1 <= 100 and 0 < r.mAP <= 100 and r.source
        assert r.mAP < r.rank1  # single-query mAP is below rank-1 on all of these benchmarks
    settings = {r.setting for r in PUBLISHED}
    assert {"Market-1501", "DukeMTMC-reID", "DukeMTMC-reID -> Market-1501", "Market-1501 -> DukeMTMC-reID"} <= settings
