"""Every report table shows both AP forms and says which is which."""

from __future__ import annotations

import pytest

from reid_stargan.pipeline.report import (
    AP_CAPTION,
    _markdown,
    _setting_row,
    gain_of,
    results_table,
    summarize,
)

BASE = [{"mAP": 10.0, "mAP_trapezoid": 9.0, "rank1": 20.0, "rank5": 30.0, "rank10": 40.0},
        {"mAP": 12.0, "mAP_trapezoid": 11.5, "rank1": 22.0, "rank5": 32.0, "rank10": 42.0}]
CAM = [{"mAP": 15.0, "mAP_trapezoid": 14.0, "rank1": 26.0, "rank5": 30.0, "rank10": 40.0},
       {"mAP": 16.0, "mAP_trapezoid": 15.0, "rank1": 27.0, "rank5": 32.0, "rank10": 42.0}]


def test_summary_and_gain_carry_both_forms():
    rows = summarize(BASE)
    assert rows["mAP"] == 11.0 and rows["mAP_trapezoid"] == 10.25
    gain = gain_of(BASE, CAM)
    assert gain["mAP"] == 4.5 and gain["mAP_trapezoid"] == pytest.approx((5.0 + 3.5) / 2)


def test_results_table_has_both_columns_and_the_caption():
    table = results_table({"baseline": summarize(BASE), "camstyle": summarize(CAM)}, gain_of(BASE, CAM), [0, 1])
    head, rule, baseline, camstyle, gain = table.splitlines()[:5]
    assert head == "| | mAP | mAP_trapezoid | rank1 | rank5 | rank10 |"
    assert baseline.startswith("| baseline | 11.00 ± 1.41 | 10.25 ± 1.77 |")
    assert gain.startswith("| gain | +4.50 ± 0.71 | +4.25 ± 1.06 |")
    assert "mAP: finite-sum AP" in table and "mAP_trapezoid: trapezoid AP of the Market-1501" in table


def test_runs_from_before_mAP_trapezoid_still_report():
    old = [{k: v for k, v in r.items() if k != "mAP_trapezoid"} for r in BASE]
    rows = {"baseline": summarize(old), "camstyle": summarize(CAM)}
    assert "mAP_trapezoid" not in rows["baseline"] and "mAP_trapezoid" not in gain_of(old, CAM)
    baseline_line = results_table(rows, gain_of(old, CAM), [0, 1]).splitlines()[2]
    assert baseline_line.startswith("| baseline | 11.00 ± 1.41 | – |")


def test_markdown_report_captions_every_map_table():
    gain = gain_of(BASE, CAM)
    summary = {"c_dim": 4, "image_size": [16, 8], "d_acc_real": 0.5, "d_acc_fake": 0.25,
               "datasets": {"tiny": {"chance": 25.0}}}
    report = {
        "name": "t", "data": {"name": "tiny", "root": "x", "num_cameras": 4},
        "markdown_table": results_table({"baseline": summarize(BASE), "camstyle": summarize(CAM)}, gain, [0, 1]),
        "schedule": {}, "camstyle_generation": None,
        "quality": {"table": {"identity preservation mAP, generated queries (%)": 50.0}, "notes": ""},
        "settings": [_setting_row("re-ID cameras", "tiny", "a camera", "one-hot", summary, gain)],
        "timings_s": {"stargan": 1.0},
    }
    md = _markdown(report, "## Published reference numbers\n")
    assert md.count(AP_CAPTION) == 2  # measured table and settings table
    assert "re-ID gain mAP_trapezoid" in md and "| 4.50 | 4.25 | 5.50 |" in md  # gains: mAP, trapezoid, rank-1
    assert "mAP in this table is the finite-sum AP" in md  # the quality table
    published = md.split("## Published reference numbers")[1]
    assert "compare with mAP_trapezoid" in published
