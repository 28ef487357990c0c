"""run_pipeline --resume with a changed config (issue 13, item 5c): stages record the settings they ran
with (stages/<stage>.json); a resume that would give a started stage other settings is refused
before anything runs, listing the differences, and config.yaml is left as it was. Fails on the code
before the fix, which skipped every finished stage and rewrote config.yaml with settings that never ran."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from conftest import REPO_ROOT

from reid_stargan.cli.run_pipeline import cli
from reid_stargan.config import load_config
from reid_stargan.pipeline.config import PipelineConfig
from reid_stargan.pipeline.run import Pipeline, StageConfigError, resolve_tool_paths

TINY = REPO_ROOT / "configs" / "pipeline" / "tiny.yaml"


def tiny_cfg(**changes) -> PipelineConfig:
    cfg = resolve_tool_paths(load_config(PipelineConfig, TINY), TINY.parent)
    cfg = replace(cfg, face=replace(cfg.face, enabled=False), quality=replace(cfg.quality, enabled=False))
    return replace(cfg, **changes)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("rel_pipeline") / "run"
    Pipeline(tiny_cfg(), run_dir, progress=False).run()
    return run_dir


def outputs(run_dir):
    return {p: p.stat().st_mtime_ns for p in (run_dir / "config.yaml", run_dir / "stargan" / "checkpoints" / "generator.pt",
                                              run_dir / "reid" / "baseline-s0" / "metrics.json")}


def test_every_stage_records_what_it_ran_with(finished):
    records = {p.stem: json.loads(p.read_text()) for p in (finished / "stages").glob("*.json")}
    assert set(records) == {"data", "stargan", "generate", "reid-baseline-s0", "reid-camstyle-s0"}
    assert all(r["finished"] for r in records.values())
    assert records["stargan"]["settings"]["train.num_iters"] == 6
    assert records["stargan"]["settings"]["data.root"] == "<run>/data/synthetic"  # a moved run still resumes
    # A stage also records the settings of the stages whose outputs it reads.
    assert records["reid-camstyle-s0"]["settings"]["stargan:train.num_iters"] == 6


def test_a_changed_stage_config_is_refused_listing_the_differences(finished):
    before, config_yaml = outputs(finished), (finished / "config.yaml").read_text()
    cfg = tiny_cfg()
    cfg = replace(cfg, reid_baseline=replace(cfg.reid_baseline, overrides=[*cfg.reid_baseline.overrides, "optim.lr=0.1"]),
                  stargan=replace(cfg.stargan, overrides=[*cfg.stargan.overrides, "train.g_lr=0.01"]))
    with pytest.raises(StageConfigError) as info:
        Pipeline(cfg, finished, progress=False).run()
    msg = str(info.value)
    assert "stage reid-baseline-s0 (finished): optim.lr: ran 0.001, now 0.1" in msg
    assert "stage stargan (finished): train.g_lr: ran 0.0005, now 0.01" in msg
    assert "stage generate (finished): stargan:train.g_lr: ran 0.0005, now 0.01" in msg
    assert "stage reid-camstyle-s0 (finished): stargan:train.g_lr" in msg
    assert "Start a new run" in msg
    assert outputs(finished) == before and (finished / "config.yaml").read_text() == config_yaml


def test_the_tool_refuses_a_changed_resume_in_one_line(finished, capsys):
    config_yaml = (finished / "config.yaml").read_text()
    code = cli(["--resume", str(finished), "--no-progress", "--set", "stargan_seed=5"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "stage stargan (finished): train.seed: ran 0, now 5" in err
    assert (finished / "config.yaml").read_text() == config_yaml


def test_runtime_settings_may_change_and_a_moved_run_resumes(finished, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(finished, moved)
    cfg = tiny_cfg(generate=replace(tiny_cfg().generate, workers=1, batch_size=3))
    stamps = outputs(moved)
    report = Pipeline(cfg, moved, progress=False).run()
    assert "rows" in report
    stamps.pop(moved / "config.yaml")
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished stages skipped, not redone


def test_a_run_from_before_stage_records_is_checked_against_its_config_yaml(finished, tmp_path):
    legacy = tmp_path / "legacy"
    shutil.copytree(finished, legacy)
    shutil.rmtree(legacy / "stages")
    with pytest.raises(StageConfigError, match=r"differs from its config.yaml: stargan_seed: ran 0, now 5"):
        Pipeline(tiny_cfg(stargan_seed=5), legacy, progress=False).run()


def test_a_stopped_stage_is_refused_unless_it_wrote_nothing(finished, tmp_path):
    cfg = tiny_cfg()
    changed = replace(cfg, reid_baseline=replace(cfg.reid_baseline, overrides=[*cfg.reid_baseline.overrides,
                                                                               "optim.lr=0.002"]))
    stopped = tmp_path / "stopped"
    shutil.copytree(finished, stopped)
    record_path = stopped / "stages" / "reid-baseline-s0.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "finished": None}))
    (stopped / "reid" / "baseline-s0" / "metrics.json").unlink()  # stopped after an epoch: last.pt is there
    with pytest.raises(StageConfigError, match=r"stage reid-baseline-s0 \(started\): optim.lr: ran 0.001, now 0.002"):
        Pipeline(changed, stopped, progress=False).run()
    shutil.rmtree(stopped / "reid" / "baseline-s0")  # stopped before it wrote anything: the new value runs
    Pipeline(changed, stopped, progress=False).run()
    assert json.loads(record_path.read_text())["settings"]["optim.lr"] == 0.002
    assert json.loads((stopped / "reid" / "baseline-s0" / "metrics.json").read_text())["schedule"]["epochs"] == 2


def test_a_key_newer_than_the_records_counts_only_off_its_default(finished, tmp_path, capsys):
    """A record written before a config key existed: the key at its default (the old behaviour) resumes;
    set to another value, it is a difference like any other."""
    older = tmp_path / "older"
    shutil.copytree(finished, older)
    for name in ("stargan", "generate", "reid-camstyle-s0"):
        path = older / "stages" / f"{name}.json"
        record = json.loads(path.read_text())
        record["settings"] = {k: v for k, v in record["settings"].items()
                              if not k.endswith(("gan.lambda_id", "generate.targets"))}
        path.write_text(json.dumps(record))
    status = Pipeline(tiny_cfg(), older, progress=False).status()
    assert [r["stage"] for r in status] == ["data", "stargan", "generate", "reid-baseline-s0", "reid-camstyle-s0",
                                            "report"]
    assert [r["done"] for r in status] == [True] * 5 + [False], status  # the report is always written again
    assert cli(["--resume", str(older), "--dry-run"]) == 0
    assert "stargan           done    " in capsys.readouterr().out
    cfg = tiny_cfg()
    cfg = replace(cfg, stargan=replace(cfg.stargan, overrides=[*cfg.stargan.overrides, "gan.lambda_id=5"]))
    assert not next(r for r in Pipeline(cfg, older, progress=False).status() if r["stage"] == "stargan")["done"]
    with pytest.raises(StageConfigError, match=r"stage stargan \(finished\): gan.lambda_id: ran '\(unset\)', now 5.0"):
        Pipeline(cfg, older, progress=False).run()


def test_a_record_older_than_a_key_move_resumes(finished, tmp_path):
    """Records written while `celeba_num_test` sat in `augment` (no `data.celeba_num_test` in any
    stage): every stage still reads as done; the old key set to another value than the new one's is a
    difference."""
    older = tmp_path / "older"
    shutil.copytree(finished, older)
    for path in (older / "stages").glob("*.json"):
        record = json.loads(path.read_text())
        settings = {k: v for k, v in record["settings"].items() if not k.endswith("data.celeba_num_test")}
        if path.stem == "stargan":
            settings["augment.celeba_num_test"] = 1999
        path.write_text(json.dumps(dict(record, settings=settings)))
    assert [r["done"] for r in Pipeline(tiny_cfg(), older, progress=False).status()] == [True] * 5 + [False]
    record = json.loads((older / "stages" / "stargan.json").read_text())
    record["settings"]["augment.celeba_num_test"] = 7
    (older / "stages" / "stargan.json").write_text(json.dumps(record))
    with pytest.raises(StageConfigError, match=r"stage stargan \(finished\): data.celeba_num_test: ran 7, now 1999"):
        Pipeline(tiny_cfg(), older, progress=False).run()
