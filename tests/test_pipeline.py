"""The main job end to end on the tiny config: every artefact, numbers in range, resume, schedule check."""

import json
import os
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from PIL import Image

from reid_stargan.config import load_config
from reid_stargan.pipeline.config import PipelineConfig
from reid_stargan.pipeline.report import ReportError, check_same_schedule, gain_of, summarize
from reid_stargan.pipeline.run import Pipeline, resolve_tool_paths

TINY = REPO_ROOT / "configs" / "pipeline" / "tiny.yaml"


def tiny_pipeline(run_dir: Path) -> Pipeline:
    cfg = resolve_tool_paths(load_config(PipelineConfig, TINY), TINY.parent)
    return Pipeline(cfg, run_dir, progress=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pipeline") / "run"
    report = tiny_pipeline(run_dir).run()
    return run_dir, report


def test_every_report_artefact_with_numbers_in_range(finished):
    run_dir, report = finished
    for name in ("report.md", "report.json", "cmc.png", "translation_grid.png", "stargan_losses.png",
                 "quality.json", "config.yaml", "timings.json"):
        assert (run_dir / name).is_file(), name
    on_disk = json.loads((run_dir / "report.json").read_text())
    for row in ("baseline", "camstyle"):
        for metric in ("mAP", "rank1", "rank5", "rank10"):
            assert 0.0 <= on_disk["rows"][row][metric] <= 100.0
    for metric in ("mAP", "rank1"):
        expected = on_disk["rows"]["camstyle"][metric] - on_disk["rows"]["baseline"][metric]
        assert on_disk["gain"][metric] == pytest.approx(expected, abs=0.02)
    q = on_disk["quality"]["table"]
    assert 0 <= q["camera classifier: generated images in their TARGET camera (%)"] <= 100
    assert q["PSNR dB, in person mask (generated)"] > 0
    settings = {r["setting"]: r for r in on_disk["settings"]}
    assert settings["re-ID cameras"]["c_dim"] == 4  # the tiny preset's cameras
    assert settings["faces (CelebA attributes)"]["c_dim"] == 5
    assert 0 <= settings["faces (CelebA attributes)"]["d_cls_acc_fake"] <= 100
    md = (run_dir / "report.md").read_text()
    assert "| +CamStyle |" in md and "Published reference numbers" in md
    # Published numbers stay out of the measured table.
    measured = md.split("## Translation")[0]
    assert "CamStyle + Random Erasing" not in measured
    grid = Image.open(run_dir / "translation_grid.png")
    assert grid.size[0] > 100 and grid.size[1] > 100
    assert len(list((run_dir / "camstyle").glob("*_fake_*.jpg"))) == on_disk["camstyle_generation"]["images_out"]


def test_a_stopped_pipeline_resumes_and_skips_finished_stages(finished):
    run_dir, _ = finished
    generator = run_dir / "stargan" / "checkpoints" / "generator.pt"
    baseline_metrics = run_dir / "reid" / "baseline-s0" / "metrics.json"
    stamps = {p: p.stat().st_mtime_ns for p in (generator, baseline_metrics)}
    # As if the run stopped during the +CamStyle stage: its metrics and everything after are missing.
    os.remove(run_dir / "reid" / "camstyle-s0" / "metrics.json")
    for name in ("report.json", "report.md", "quality.json"):
        os.remove(run_dir / name)
    report = tiny_pipeline(run_dir).run()
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished stages untouched
    assert (run_dir / "reid" / "camstyle-s0" / "metrics.json").is_file()
    assert (run_dir / "report.md").is_file() and "rows" in report
    log = (run_dir / "log.txt").read_text()
    assert "complete: skipped" in log and "already at" in log


def test_report_refuses_runs_with_different_schedules():
    base = {"schedule": {"epochs": 30, "iters_per_epoch": 16, "real_per_batch": 64, "seed": 0, "batch_size": 64}}
    same = {"schedule": {**base["schedule"], "batch_size": 81, "generated_per_batch": 17}}
    check_same_schedule(base, same)  # more generated images on top of the same real batch: comparable
    longer = {"schedule": {**base["schedule"], "epochs": 40}}
    with pytest.raises(ReportError, match="epochs: 30 vs 40"):
        check_same_schedule(base, longer)
    with pytest.raises(ReportError, match="schedule"):
        check_same_schedule({}, base)


def test_mean_std_and_gain_over_seeds():
    b = [{"mAP": 10.0, "rank1": 20.0, "rank5": 30.0, "rank10": 40.0},
         {"mAP": 12.0, "rank1": 22.0, "rank5": 32.0, "rank10": 42.0}]
    c = [{"mAP": 15.0, "rank1": 26.0, "rank5": 30.0, "rank10": 40.0},
         {"mAP": 16.0, "rank1": 27.0, "rank5": 32.0, "rank10": 42.0}]
    rows = summarize(b)
    assert rows["mAP"] == 11.0 and rows["mAP_std"] == pytest.approx(1.41, abs=0.01)
    gain = gain_of(b, c)
    assert gain["mAP"] == 4.5 and gain["rank1"] == 5.5 and gain["mAP_std"] == pytest.approx(0.71, abs=0.01)
    assert "mAP_std" not in summarize(b[:1])


def test_evaluate_tool_on_a_trained_model_reproduces_its_metrics(finished, tmp_path):
    """tools/evaluate_reid.py --checkpoint (the model's own data set) gives the run's metrics.json numbers."""
    from reid_stargan.cli.evaluate_reid import main as evaluate_main

    run_dir, _ = finished
    run = run_dir / "reid" / "baseline-s0"
    evaluate_main(["--checkpoint", str(run / "checkpoints" / "model.pt"), "--out", str(tmp_path),
                   "--visualize", "2"])
    tool = json.loads((tmp_path / "metrics.json").read_text())
    trained = json.loads((run / "metrics.json").read_text())
    for key in ("mAP", "rank1", "rank5", "mINP"):
        assert tool[key] == pytest.approx(trained[key], abs=1e-6)
    assert len(list((tmp_path / "ranked_lists").glob("*.png"))) == 2
