"""Every tool command in README.md's code blocks runs as written: on a tiny trained model and set
where it reads files (the README's placeholders swapped for them), in dry-run form for the
training commands (a real run of those is the pipeline tests' job)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from docs_commands import tool_commands

from reid_stargan.data.synthetic import make_synthetic

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DRY_RUN_TOOLS = {"train_stargan", "generate_camstyle", "train_reid", "run_pipeline"}
SIZES = dict(num_train_ids=6, num_test_ids=4, num_cameras=3, images_per_id_cam=2, min_cameras_per_id=2,
             max_cameras_per_id=3, height=64, width=32)


def readme_commands() -> list[list[str]]:
    return tool_commands(README, {"", "bash"})


def test_readme_shows_the_tools_it_promises():
    shown = {Path(cmd[0]).stem for cmd in readme_commands()}
    assert {"export_reid", "extract_features", "evaluate_reid", "query_gallery", "train_stargan",
            "generate_camstyle", "train_reid"} <= shown


def test_every_readme_command_runs(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from PIL import Image
    from test_export import make_checkpoint

    data = tmp_path / "set"
    make_synthetic(data, seed=0, **SIZES)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    make_checkpoint(tmp_path / "runs/00003-reid/checkpoints/model.pt", "small", data_root=str(data), height=64,
                    width=32)
    (tmp_path / "my_photos").mkdir()
    for i, src in enumerate(sorted((data / "bounding_box_test").glob("*.jpg"))[:6]):
        Image.open(src).save(tmp_path / "my_photos" / f"p{i}.jpg")
    for name in ("q1.jpg", "q2.jpg"):
        Image.open(next((data / "query").glob("*.jpg"))).save(tmp_path / name)
    swap = {"../shared/data/cuhk03_market": str(data), "/data/market1501": str(data),
            ".../generator.pt": "g.pt", "...": "runs/camstyle"}
    for cmd in readme_commands():
        tool = Path(cmd[0]).stem
        args = [swap.get(a, a.replace("data.root=/data/market1501", f"data.root={data}")) for a in cmd[1:]]
        if tool in DRY_RUN_TOOLS:
            args.append("--dry-run")
        result = importlib.import_module(f"reid_stargan.cli.{tool}").main(args)
        assert not (isinstance(result, int) and result != 0), (tool, result)  # failures raise or exit 2
    assert (tmp_path / "reid.onnx").is_file() and (tmp_path / "feats.npz").is_file()
    assert (tmp_path / "gallery.npz").is_file() and (tmp_path / "top10.png").is_file()
