"""A partial CamStyle folder (issue 13, item 9): train_reid refuses a folder that generate_camstyle did
not finish unless camstyle.allow_incomplete=true (then it says so), and metrics.json records how many
generated images it trained on. generate_camstyle marks a finished folder `"complete": true`; the
pipeline and train_reid judge folders with the same `camstyle_status`. Fails on the code before the
fix, which trained on the partial folder without a word and recorded no count."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from test_camstyle import make_checkpoint
from test_reliability_train_reid import FAST, REPO, src  # noqa: F401 (src: the fixture)

from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle
from reid_stargan.camstyle.naming import MANIFEST_NAME, camstyle_status, lock_name
from reid_stargan.cli.train_reid import cli
from reid_stargan.config import load_config
from reid_stargan.data.datasets import build_dataset
from reid_stargan.reid.camstyle_set import CamStyleIncompleteError, write_oracle_camstyle
from reid_stargan.reid.config import ReidConfig
from reid_stargan.reid.trainer import train_reid

CAMSTYLE_CONFIG = REPO / "configs" / "reid" / "synthetic_cpu_camstyle.yaml"
RUN = [*FAST, "optim.epochs=1"]


@pytest.fixture(scope="module")
def complete_set(src, tmp_path_factory):  # noqa: F811
    ds = build_dataset("market_layout", src)
    out = tmp_path_factory.mktemp("rel_complete") / "camstyle"
    ckpt = make_checkpoint(out.parent / "ckpt", c_dim=ds.num_cameras)
    summary = generate_camstyle(ckpt, ds.train, out, ds.num_cameras,
                                GenerateOptions(progress=False, judge=False, workers=1))
    return out, summary


def killed_copy(complete, tmp_path, keep: int):
    """The folder as a generate_camstyle run killed part way leaves it: some images, its info file,
    no manifest or summary (both are written at the end)."""
    out = tmp_path / "killed"
    shutil.copytree(complete, out)
    os.remove(out / MANIFEST_NAME)
    os.remove(out / "summary.json")
    for path in sorted(out.glob("*_fake_*"))[keep:]:
        path.unlink()
    return out


def camstyle_cfg(src, camstyle, *overrides):  # noqa: F811
    return load_config(ReidConfig, CAMSTYLE_CONFIG, [f"data.root={src}", f"camstyle.root={camstyle}", *RUN,
                                                     *overrides])


def test_generate_marks_a_finished_folder_complete(complete_set):
    out, summary = complete_set
    assert summary["complete"] is True and summary["missing_outputs"] == 0 and summary["unmade_outputs"] == 0
    assert summary["planned_outputs"] == len(list(out.glob("*_fake_*")))
    assert json.loads((out / "summary.json").read_text())["complete"] is True
    status = camstyle_status(out)
    assert status.complete is True and status.planned == status.present == summary["planned_outputs"]


def test_status_of_stopped_running_and_foreign_folders(complete_set, src, tmp_path):  # noqa: F811
    out, summary = complete_set
    killed = killed_copy(out, tmp_path, keep=5)
    assert camstyle_status(killed).complete is False and "stopped before it finished" in camstyle_status(killed).reason
    running = tmp_path / "running"
    shutil.copytree(out, running)
    (running / lock_name()).write_text(json.dumps({"pid": 1, "host": "h"}))
    assert camstyle_status(running).complete is False and "writing it or was stopped" in camstyle_status(running).reason
    other = tmp_path / "other"  # an --overwrite run with another checkpoint, stopped: old summary, new info
    shutil.copytree(out, other)
    info = json.loads((other / "camstyle_info.json").read_text())
    (other / "camstyle_info.json").write_text(json.dumps({**info, "checkpoint_sha256": "0" * 64}))
    assert camstyle_status(other).complete is False
    gap = tmp_path / "gap"
    shutil.copytree(out, gap)
    next(gap.glob("*_fake_*")).unlink()
    status = camstyle_status(gap)
    assert status.complete is False and status.present == summary["planned_outputs"] - 1
    images_only = tmp_path / "release"  # e.g. a downloaded CamStyle set: cannot be judged
    images_only.mkdir()
    for p in list(out.glob("*_fake_*"))[:3]:
        shutil.copy(p, images_only / p.name)
    assert camstyle_status(images_only).complete is None
    oracle = tmp_path / "oracle"
    write_oracle_camstyle(src, oracle)
    assert camstyle_status(oracle).complete is True


def test_train_reid_refuses_a_partial_folder_unless_asked(complete_set, src, tmp_path, capsys):  # noqa: F811
    out, _ = complete_set
    killed = killed_copy(out, tmp_path, keep=20)
    with pytest.raises(CamStyleIncompleteError, match=r"is incomplete: no manifest.jsonl: the generate_camstyle "
                                                      r"run was stopped .*camstyle.allow_incomplete=true"):
        train_reid(camstyle_cfg(src, killed), tmp_path / "refused", progress=False)
    code = cli(["--config", str(CAMSTYLE_CONFIG), "--no-progress", "--set", f"data.root={src}", *RUN,
                "--camstyle", str(killed), "--run-dir", str(tmp_path / "refused_cli")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: CamStyle set") and err.count("\n") == 1, err
    assert not (tmp_path / "refused_cli" / "metrics.json").exists()

    run = tmp_path / "allowed"
    metrics = train_reid(camstyle_cfg(src, killed, "camstyle.allow_incomplete=true"), run, progress=False)
    assert metrics["camstyle_images"] == 20 and metrics["camstyle_complete"] is False
    assert "warning: CamStyle set" in (run / "log.txt").read_text()


def test_metrics_record_the_generated_images_used(complete_set, src, tmp_path):  # noqa: F811
    out, summary = complete_set
    metrics = train_reid(camstyle_cfg(src, out), tmp_path / "run", progress=False)
    assert metrics["camstyle_images"] == summary["planned_outputs"] and metrics["camstyle_complete"] is True
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["camstyle_images"] == summary["planned_outputs"]
