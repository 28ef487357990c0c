"""Every command of docs/OWN_DATA.md runs as written: in dry-run form where the tool has one, for
real on a tiny set where it has not (make_holdout_split, evaluate_reid), and the guide's own parser."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from docs_commands import fenced_blocks, tool_commands

from reid_stargan.data.synthetic import make_synthetic

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "OWN_DATA.md"
DRY_RUN_TOOLS = {"train_stargan", "generate_camstyle", "train_reid", "run_pipeline"}
SIZES = dict(num_train_ids=6, num_test_ids=4, num_cameras=3, images_per_id_cam=2, min_cameras_per_id=2,
             max_cameras_per_id=3, height=64, width=32)


def guide_blocks(lang: str = "") -> list[str]:
    return fenced_blocks(GUIDE, lang)


def guide_commands() -> list[list[str]]:
    return tool_commands(GUIDE)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own") / "mydata"
    make_synthetic(root, seed=0, **SIZES)
    return root


def test_the_guide_lists_every_tool_it_explains():
    tools = {Path(cmd[0]).stem for cmd in guide_commands()}
    assert tools == {"make_holdout_split", "run_pipeline", "train_stargan", "generate_camstyle", "train_reid",
                     "evaluate_reid"}


def test_every_guide_command_runs(data, tmp_path, monkeypatch, capsys):
    from test_export import make_checkpoint

    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    (tmp_path / "mylayout.py").write_text(guide_blocks("python")[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    make_checkpoint(tmp_path / "runs/my_baseline/checkpoints/model.pt", "small", data_root=str(data), height=64,
                    width=32)
    ran = []
    for cmd in guide_commands():
        argv = [str(data) if a == "$DATA" else a.replace("$DATA", str(data)) for a in cmd]
        tool = Path(argv[0]).stem
        args = argv[1:] + (["--dry-run"] if tool in DRY_RUN_TOOLS and "--dry-run" not in argv else [])
        if tool == "make_holdout_split":  # the tiny set has 6 identities, not 150
            args[args.index("--num-ids") + 1] = "2"
        main = importlib.import_module(f"reid_stargan.cli.{tool}").main
        result = main(args)
        assert result in (None, 0, {}) or isinstance(result, (dict, Path)), (tool, result)
        ran.append(tool)
    out = capsys.readouterr().out
    assert "mylayout:parse" in out  # the own-parser command's dry run printed the config it resolved
    assert (tmp_path / "runs/mydata_val/query").is_dir()
    assert (tmp_path / "runs/my_eval/metrics.json").is_file()
    assert len(list((tmp_path / "runs/my_eval/ranked_lists").glob("*.png"))) == 10
    assert len(ran) == len(guide_commands())


def test_the_guides_parser_reads_its_layout(tmp_path, monkeypatch):
    from PIL import Image

    (tmp_path / "mylayout.py").write_text(guide_blocks("python")[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    for split, pids in (("train", (1, 2)), ("query", (3,)), ("gallery", (3, 4))):
        for pid in pids:
            for cam in (1, 2):
                path = tmp_path / "d" / split / str(pid) / f"{cam}_0.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 16)).save(path)
    from reid_stargan.data.datasets import build_dataset

    ds = build_dataset("mylayout:parse", tmp_path / "d")
    assert ds.num_cameras == 2 and len(ds.train) == 4 and {r.pid for r in ds.gallery} == {3, 4}
    assert {r.camid for r in ds.train} == {0, 1}
