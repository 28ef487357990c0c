"""The pipeline's report: `report.md`, `report.json` and the PNGs beside them.

Measured rows (baseline, +CamStyle, gain; mean and std over seeds) are never mixed with the
published reference numbers, which get their own, labelled table. Runs trained with different
schedules are refused rather than compared.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from reid_stargan.pipeline.layout import ReportInputs
from reid_stargan.utils.io import atomic_write_json, atomic_write_text

METRICS = ("mAP", "mAP_trapezoid", "rank1", "rank5", "rank10")
# Said under every table that shows an mAP (reid_stargan.eval.metrics defines both forms).
AP_CAPTION = ("mAP: finite-sum AP (torchreid / fast-reid). mAP_trapezoid: trapezoid AP of the Market-1501 "
              "MATLAB code and of open-reid with sklearn < 0.19, the form CamStyle and HHL report.")
# What must be equal for a baseline and a +CamStyle run to be compared: the same updates on the same
# real images. The generated images a CamStyle batch adds on top (batch_size, generated_per_batch)
# are the difference being measured, so they are not compared.
SCHEDULE_KEYS = ("epochs", "iters_per_epoch", "total_iterations", "seed", "world_size", "ids_per_batch",
                 "instances_per_id", "real_per_batch", "image_size")


class ReportError(ValueError):
    """Results that cannot be compared honestly."""


def check_same_schedule(baseline: dict, camstyle: dict) -> None:
    """Refuse to compare a baseline and a +CamStyle run trained with different schedules."""
    a, b = baseline.get("schedule"), camstyle.get("schedule")
    if a is None or b is None:
        raise ReportError("metrics.json without a `schedule` block: cannot check the runs are comparable")
    if differing := [k for k in SCHEDULE_KEYS if a.get(k) != b.get(k)]:
        detail = ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in differing)
        raise ReportError(f"baseline and +CamStyle were trained with different schedules ({detail})")


def _reported(runs: list[dict]) -> list[str]:
    """The METRICS every run has (metrics.json written before mAP_trapezoid existed lacks it)."""
    return [m for m in METRICS if all(m in r for r in runs)]


def summarize(runs: list[dict]) -> dict:
    """Mean (and sample std when several seeds ran) of each metric, in percent."""
    out = {}
    for m in _reported(runs):
        values = [r[m] for r in runs]
        out[m] = round(statistics.fmean(values), 2)
        if len(values) > 1:
            out[f"{m}_std"] = round(statistics.stdev(values), 2)
    return out


def gain_of(baseline_runs: list[dict], camstyle_runs: list[dict]) -> dict:
    """Mean per-seed gain (+CamStyle minus baseline), with its std over seeds when several ran."""
    reported = _reported([*baseline_runs, *camstyle_runs])
    deltas = [{m: c[m] - b[m] for m in reported} for b, c in zip(baseline_runs, camstyle_runs)]
    return summarize(deltas) if reported else {}


def _cell(row: dict, m: str, signed: bool = False) -> str:
    if m not in row:
        return "–"
    value = f"{row[m]:+.2f}" if signed else f"{row[m]:.2f}"
    return f"{value} ± {row[m + '_std']:.2f}" if f"{m}_std" in row else value


def results_table(rows: dict, gain: dict, seeds: list[int]) -> str:
    head = "| | " + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS) + "\n"
    lines = [f"| {name} | " + " | ".join(_cell(r, m) for m in METRICS) + " |"
             for name, r in (("baseline", rows["baseline"]), ("+CamStyle", rows["camstyle"]))]
    lines.append("| gain | " + " | ".join(_cell(gain, m, signed=True) for m in METRICS) + " |")
    note = (f"\n\nseeds: {seeds} (mean ± sample std over seeds)" if len(seeds) > 1 else
            f"\n\nseed: {seeds[0]} (one seed: no spread is shown; `--seeds 3` gives mean ± std)")
    return head + "\n".join(lines) + note + ". " + AP_CAPTION


def write_report(inputs: ReportInputs, runs: dict[str, list[dict]], face: dict | None,
                 quality: dict | None) -> dict:
    """Write report.md / report.json / PNGs into the pipeline's run folder and return report.json."""
    from reid_stargan.pipeline import plots
    from reid_stargan.pipeline.published import published_table_markdown

    layout, run_dir = inputs.layout, inputs.layout.root
    for b, c in zip(runs["baseline"], runs["camstyle"]):
        check_same_schedule(b, c)
    rows = {"baseline": summarize(runs["baseline"]), "camstyle": summarize(runs["camstyle"])}
    gain = gain_of(runs["baseline"], runs["camstyle"])
    table = results_table(rows, gain, inputs.seeds)

    labels = (("baseline", "baseline"), ("+CamStyle", "camstyle"))
    by_rank = {name: list(zip(*(r["cmc"] for r in runs[key]))) for name, key in labels}  # each rank over seeds
    curves = {name: [statistics.fmean(v) for v in values] for name, values in by_rank.items()}
    spread = ({name: [statistics.stdev(v) for v in values] for name, values in by_rank.items()}
              if len(inputs.seeds) > 1 else None)
    maps = {name: statistics.fmean(r["mAP"] for r in runs[key]) for name, key in labels}
    plots.cmc_plot(curves, layout.file("cmc.png"), max_rank=20, std=spread, maps=maps)
    if (layout.stargan / "stats.jsonl").is_file():
        plots.loss_curves(layout.stargan / "stats.jsonl", layout.file("stargan_losses.png"))
    grid = _grid_rows(layout.camstyle, inputs.grid_rows)
    plots.translation_grid(grid, inputs.num_cameras, layout.file("translation_grid.png"))

    stargan_summary = _read_json(layout.stargan / "summary.json")
    camstyle_summary = _read_json(layout.camstyle / "summary.json")
    report = {
        "name": inputs.name,
        "data": {"name": inputs.data_name, "root": inputs.data_root, "num_cameras": inputs.num_cameras},
        "seeds": list(inputs.seeds),
        "rows": rows,
        "gain": gain,
        "per_seed": {k: [{m: r[m] for m in (*METRICS, "mINP") if m in r} for r in v] for k, v in runs.items()},
        "schedule": {k: runs["baseline"][0]["schedule"].get(k) for k in SCHEDULE_KEYS if k != "seed"},
        "stargan": stargan_summary,
        "camstyle_generation": {k: camstyle_summary.get(k) for k in
                                ("images_in", "images_out", "skipped_existing", "failed", "seconds",
                                 "images_per_second", "d_target_accuracy")} if camstyle_summary else None,
        "quality": quality,
        "settings": _settings_rows(inputs, stargan_summary, face, gain),
        "timings_s": inputs.timings,
        "markdown_table": table,
        "mINP": {k: summarize_metric(v, "mINP") for k, v in runs.items()},
        "command": f"python tools/run_pipeline.py --config {layout.file('config.yaml')}",
        "checkpoints": {"generator": str(layout.stargan / "checkpoints" / "generator.pt"),
                        **{f"{mode}-s{seed}": str(layout.reid(mode, seed) / "checkpoints" / "model.pt")
                           for mode in ("baseline", "camstyle") for seed in inputs.seeds}},
    }
    atomic_write_json(run_dir / "report.json", report)
    atomic_write_text(run_dir / "report.md", _markdown(report, published_table_markdown()))
    return report


def summarize_metric(runs: list[dict], m: str) -> dict | None:
    """Mean (and std over seeds) of one metric, or None when a run lacks it."""
    if not runs or any(m not in r for r in runs):
        return None
    values = [r[m] for r in runs]
    return {"mean": round(statistics.fmean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else None}


def schedule_sentence(schedule: dict) -> str:
    """The same-schedule check as a sentence (it is checked before the report is written)."""
    if not schedule:
        return "Both rows were checked to have the same schedule."
    h, w = schedule.get("image_size") or ("?", "?")
    return (f"Both rows trained on the same schedule (checked): {schedule.get('epochs')} epochs x "
            f"{schedule.get('iters_per_epoch')} iterations = {schedule.get('total_iterations')} updates, each on "
            f"{schedule.get('real_per_batch')} real images ({schedule.get('ids_per_batch')} ids x "
            f"{schedule.get('instances_per_id')}), at {h}x{w}, on {schedule.get('world_size')} process(es); "
            "+CamStyle adds its generated images on top of the same real images.")


def stargan_sentence(summary: dict, seconds: float | None) -> str:
    if not summary:
        return ""
    size = "x".join(str(v) for v in summary.get("image_size") or [])
    wall = f", {seconds / 60:.1f} min wall time" if seconds else ""
    return (f"StarGAN: {summary.get('step')} iterations at {size}, {summary.get('c_dim')} domains{wall}; its D puts "
            f"{_fmt(_percent(summary.get('d_acc_fake')))}% of the translations in their target domain.")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _grid_rows(camstyle_dir: Path, count: int) -> list[tuple[str, int, dict[int, str]]]:
    """Source images from different cameras and identities, each with all its renderings."""
    from reid_stargan.camstyle.naming import read_camstyle

    by_source: dict[str, tuple[int, int, dict[int, str]]] = {}
    for rec in read_camstyle(camstyle_dir):
        _, _, outputs = by_source.setdefault(rec.source, (rec.src_camid, rec.pid, {}))
        outputs[rec.dst_camid] = rec.path
    chosen, seen_cams, seen_pids = [], set(), set()
    for source, (cam, pid, outputs) in sorted(by_source.items()):
        if cam not in seen_cams and pid not in seen_pids:
            chosen.append((source, cam, outputs))
            seen_cams.add(cam)
            seen_pids.add(pid)
        if len(chosen) == count:
            break
    return chosen


def _settings_rows(inputs: ReportInputs, stargan_summary: dict, face: dict | None, gain: dict) -> list[dict]:
    """StarGAN's face setting beside the camera setting, every number measured in this run."""
    data = inputs.data_name + (" (synthetic)" if inputs.synthetic else "")
    rows = [_setting_row("re-ID cameras", data, "one camera of the data set", "one-hot (cross-entropy)",
                         stargan_summary, gain)]
    if face is not None:
        rows.append(_setting_row("faces (CelebA attributes)", "generated CelebA-format fixture",
                                 "a facial attribute (multi-label)", "multi-hot (binary cross-entropy)",
                                 face["summary"], None))
    return rows


def _setting_row(setting: str, data: str, domain: str, label_type: str, summary: dict,
                 gain: dict | None) -> dict:
    return {
        "setting": setting, "data": data, "domain": domain, "label_type": label_type,
        "c_dim": summary.get("c_dim"),
        "image_size": summary.get("image_size"),
        "d_cls_acc_real": _percent(summary.get("d_acc_real")),
        "d_cls_acc_fake": _percent(summary.get("d_acc_fake")),
        "chance": _percent(_chance(summary)),
        "reid_gain_mAP": gain["mAP"] if gain else None,
        "reid_gain_mAP_trapezoid": gain.get("mAP_trapezoid") if gain else None,
        "reid_gain_rank1": gain["rank1"] if gain else None,
    }


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100.0 * fraction, 2)


def _chance(summary: dict) -> float | None:
    per_set = list(summary.get("datasets", {}).values())
    return per_set[0].get("chance") if per_set else None


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def _minp_lines(minp: dict | None) -> list[str]:
    if not minp or any(v is None for v in minp.values()):
        return []
    def cell(v):
        return f"{v['mean']:.2f}" + (f" ± {v['std']:.2f}" if v["std"] is not None else "")
    return [f"mINP: baseline {cell(minp['baseline'])}, +CamStyle {cell(minp['camstyle'])}.", ""]


def _markdown(report: dict, published: str) -> str:
    out = [f"# Pipeline report: {report['name']}", "",
           f"Data: `{report['data']['name']}` at `{report['data']['root']}`, "
           f"{report['data']['num_cameras']} cameras.", "",
           "## Re-ID on the test split (measured in this run, percent)", "", report["markdown_table"], "",
           *_minp_lines(report.get("mINP")),
           schedule_sentence(report["schedule"]), "",
           "![CMC](cmc.png)", "", "## Translation", "", "![translation grid](translation_grid.png)", "",
           "Each row: a real image in its camera (framed), then its rendering in every camera.", "",
           stargan_sentence(report.get("stargan") or {}, (report.get("timings_s") or {}).get("stargan")), "",
           "StarGAN losses during training: ![losses](stargan_losses.png)", ""]
    if gen := report.get("camstyle_generation"):
        out += [f"{gen['images_out'] + gen['skipped_existing']} generated images "
                f"({gen['failed']} failed sources), written at {gen['images_per_second']} images/s; "
                f"the GAN's own discriminator puts {_fmt(gen['d_target_accuracy'])}% in their target camera.", ""]
    if quality := report.get("quality"):
        out += ["## How good the translation is", "", "| measure | value |", "|---|---|"]
        out += [f"| {k} | {_fmt(v)} |" for k, v in quality.get("table", {}).items()]
        out += ["", quality.get("notes", ""), ""]
        if any("mAP" in k for k in quality.get("table", {})):
            out += ["mAP in this table is the finite-sum AP (torchreid / fast-reid).", ""]
    out += ["## StarGAN's face setting beside the camera setting (measured)", "",
            "| setting | data | a domain is | labels | c_dim | image (HxW) | D cls acc real (%) | D cls acc translated (%) | chance (%) | re-ID gain mAP | re-ID gain mAP_trapezoid | re-ID gain rank-1 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["settings"]:
        out.append("| " + " | ".join(_fmt(r[k]) for k in (
            "setting", "data", "domain", "label_type", "c_dim", "image_size", "d_cls_acc_real",
            "d_cls_acc_fake", "chance", "reid_gain_mAP", "reid_gain_mAP_trapezoid", "reid_gain_rank1")) + " |")
    out += ["", "D classification accuracy: the GAN discriminator's domain classifier on real test images and on "
            "images translated to a random target domain (for attributes: per-attribute accuracy). "
            + AP_CAPTION, ""]
    out += ["", "## Stage timings (s, summed over resumed invocations)", "", "| stage | seconds |", "|---|---|"]
    out += [f"| {k} | {v:.1f} |" for k, v in report["timings_s"].items()]
    if report.get("command"):
        out += ["", "## Reproduce", "", f"`{report['command']}` (the resolved config of this run)", ""]
        out += [f"- {name}: `{path}`" for name, path in (report.get("checkpoints") or {}).items()]
    out += ["", published, "",
            "The published mAPs are each paper's own: CamStyle and HHL evaluate with open-reid's `mean_ap`, which "
            "calls sklearn's `average_precision_score`: the trapezoid form (compare with mAP_trapezoid) with "
            "sklearn < 0.19, the finite sum from 0.19 on; their repositories do not record which sklearn ran. "
            "The other rows use their papers' own evaluation code.", ""]
    return "\n".join(out)
