"""generate_camstyle's bad-input table (issue 13): each case, its message and exit code; fakes never
land in a data split or a foreign folder. Each test fails on the code before the fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, write_image
from test_camstyle import CAMS, make_checkpoint, make_market

from reid_stargan.camstyle.generate import CamStyleError, GenerateOptions, generate_camstyle
from reid_stargan.cli.generate_camstyle import cli
from reid_stargan.data.datasets import build_dataset


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("rel_gen")
    root = make_market(base / "market", ids=2, per_cam=1)
    return root, make_checkpoint(base / "ckpt")


def one_line_error(capsys, code) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def base_args(setup, *extra):
    root, ckpt = setup
    return ["--checkpoint", str(ckpt), "--data-root", str(root), "--no-progress", "--no-judge", *extra]


@pytest.mark.parametrize("split", ["bounding_box_train", "query", "bounding_box_test", "bounding_box_train/sub"])
def test_out_inside_a_data_split_is_refused(setup, capsys, split):
    root, _ = setup
    before = sorted(p.name for p in (root / "bounding_box_train").iterdir())
    err = one_line_error(capsys, cli(base_args(setup, "--out", str(root / split))))
    assert "which a data set parser reads" in err
    assert sorted(p.name for p in (root / "bounding_box_train").iterdir()) == before  # was 6 -> 18 images
    assert len(build_dataset("market_layout", root).train) == len(before)


def test_folder_of_foreign_images_is_refused(setup, tmp_path, capsys):
    root, ckpt = setup
    mine = tmp_path / "holiday"
    write_image(mine / "beach.jpg")
    err = one_line_error(capsys, cli(base_args(setup, "--out", str(mine))))
    assert "holds 1 image(s) (beach.jpg) but no camstyle_info.json" in err
    assert sorted(p.name for p in mine.iterdir()) == ["beach.jpg"]  # not stamped with our checkpoint
    ds = build_dataset("market_layout", root)
    with pytest.raises(CamStyleError, match="not a CamStyle folder"):
        generate_camstyle(ckpt, ds.train, mine, CAMS, GenerateOptions(progress=False, overwrite=True))


@pytest.mark.parametrize("flag, value", [("--batch-size", "-4"), ("--batch-size", "0"), ("--workers", "0"),
                                         ("--jpeg-quality", "101"), ("--targets-per-image", "-1")])
def test_bad_numbers_are_refused_by_the_parser(setup, tmp_path, capsys, flag, value):
    code = cli(base_args(setup, "--out", str(tmp_path / "o"), flag, value))
    err = capsys.readouterr().err
    assert code == 2 and flag in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_camera_without_training_images_is_refused(tmp_path, capsys):
    root = tmp_path / "gap"
    for cam in (1, 3):  # c2 has no training image: the generator would render into an empty domain
        write_image(root / "bounding_box_train" / f"0001_c{cam}s1_000000_00.jpg")
    write_image(root / "query" / "0002_c1s1_000000_00.jpg")
    write_image(root / "bounding_box_test" / "0002_c2s1_000000_00.jpg")
    ckpt = make_checkpoint(tmp_path / "ckpt")
    args = ["--checkpoint", str(ckpt), "--data-root", str(root), "--out", str(tmp_path / "o"), "--no-progress"]
    err = one_line_error(capsys, cli(args))
    assert "camera(s) c2 of c1..c3 have no training image" in err
    assert cli([*args, "--allow-empty-cameras", "--no-judge"]) == 0  # asked for: allowed


def test_checkpoint_errors_are_one_line(setup, tmp_path, capsys):
    err = one_line_error(capsys, cli([
        "--checkpoint", str(tmp_path / "none.pt"), "--data-root", str(setup[0]), "--out", str(tmp_path / "o")]))
    assert "not found" in err
    data = setup[1].read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    err = one_line_error(capsys, cli(["--checkpoint", str(tmp_path / "cut.pt"), "--data-root", str(setup[0]),
                                      "--out", str(tmp_path / "o")]))
    assert "truncated" in err
    wrong = make_checkpoint(tmp_path / "five", c_dim=5)
    err = one_line_error(capsys, cli(["--checkpoint", str(wrong), "--data-root", str(setup[0]),
                                      "--out", str(tmp_path / "o")]))
    assert "c_dim=5" in err and f"{CAMS} cameras" in err


def test_the_tool_itself_exits_2_without_a_traceback(setup, tmp_path):
    root, ckpt = setup
    done = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "generate_camstyle.py"), "--checkpoint",
                           str(ckpt), "--data-root", str(root), "--out", str(root / "bounding_box_train")],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    debug = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "generate_camstyle.py"), "--checkpoint",
                            str(ckpt), "--data-root", str(root), "--out", str(root / "query"), "--debug"],
                           capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert debug.returncode == 2 and "Traceback" in debug.stderr
