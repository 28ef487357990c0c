"""evaluate_reid's bad-input table (issue 13): each case, its message and exit code; no silent
overwrite of another tool's metrics.json. Each test fails on the code before the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reid_stargan.cli.evaluate_reid import cli, main

KEYS = ("q_feats", "g_feats", "q_pids", "g_pids", "q_camids", "g_camids")


def good_arrays(num_q: int = 4, num_g: int = 12, dim: int = 8) -> dict:
    rng = np.random.default_rng(0)
    return {"q_feats": rng.normal(size=(num_q, dim)).astype(np.float32),
            "g_feats": rng.normal(size=(num_g, dim)).astype(np.float32),
            "q_pids": np.arange(num_q) % 3, "g_pids": np.arange(num_g) % 3,
            "q_camids": np.zeros(num_q, np.int64), "g_camids": np.ones(num_g, np.int64)}


def one_line_error(capsys, code) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _npz(path, **changes):
    arrays = {**good_arrays(), **changes}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize("case, message", [
    ("text", r"not a numpy archive \(it starts with b'q_feat'\)"),
    ("npy", r"a single .npy array; expected an .npz"),
    ("truncated", r"not a readable .npz archive|cannot be read"),
    ("string_pids", r"q_pids holds strings \(dtype <U\d+\); q_pids must be integers"),
    ("float_pids", r"g_pids holds non-integer values"),
    ("object_array", r"array q_camids holds Python objects \(pickled\), which are refused"),
    ("missing", r"missing arrays \['g_camids'\]"),
    ("wrong_length", r"q_camids must be 1-D with 4 entries"),
    ("empty", r"empty file|not a numpy archive"),
])
def test_bad_feature_files_are_one_line(tmp_path, capsys, case, message):
    path = tmp_path / f"{case}.npz"
    if case == "text":
        path.write_text("q_feats,g_feats\n1,2\n")
    elif case == "npy":
        np.save(tmp_path / "a.npy", np.zeros(3))
        (tmp_path / "a.npy").rename(path)
    elif case == "truncated":
        data = _npz(tmp_path / "whole.npz").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "string_pids":
        _npz(path, q_pids=np.array(["a", "b", "c", "d"]))
    elif case == "float_pids":
        _npz(path, g_pids=np.linspace(0, 1, 12))
    elif case == "object_array":
        _npz(path, q_camids=np.array([0, [1], 2, 3], dtype=object))
    elif case == "missing":
        _npz(path, g_camids=None)
    elif case == "wrong_length":
        _npz(path, q_camids=np.zeros(3, np.int64))
    elif case == "empty":
        path.write_bytes(b"")
    err = one_line_error(capsys, cli(["--features", str(path), "--out", str(tmp_path / "out")]))
    assert str(path) in err or case == "wrong_length"
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize("flag", [["--max-rank", "0"], ["--max-rank", "-3"], ["--batch-size", "0"],
                                  ["--visualize", "-1"]])
def test_bad_numbers_are_refused_by_the_parser(tmp_path, capsys, flag):
    code = cli(["--features", str(_npz(tmp_path / "f.npz")), "--out", str(tmp_path / "o"), *flag])
    err = capsys.readouterr().err
    assert code == 2 and flag[0] in err and "Traceback" not in err


def test_default_out_is_a_new_folder_and_foreign_metrics_are_kept(tmp_path, capsys, monkeypatch):
    feats = _npz(tmp_path / "f.npz")
    run = tmp_path / "train_run"
    run.mkdir()
    theirs = {"mAP": 9.40, "schedule": {"epochs": 120}}
    (run / "metrics.json").write_text(json.dumps(theirs))
    monkeypatch.chdir(run)  # the old default --out . wrote over this file
    main(["--features", str(feats)])
    assert json.loads((run / "metrics.json").read_text()) == theirs
    made = sorted((run / "runs").iterdir())
    assert [p.name for p in made] == ["00000-eval"] and (made[0] / "metrics.json").is_file()
    assert json.loads((made[0] / "metrics.json").read_text())["tool"] == "evaluate_reid"
    err = one_line_error(capsys, cli(["--features", str(feats), "--out", str(run)]))
    assert "was not written by evaluate_reid" in err
    assert json.loads((run / "metrics.json").read_text()) == theirs
    main(["--features", str(feats), "--out", str(made[0])])  # its own results: replaced as asked


def test_stargan_and_broken_checkpoints_say_what_they_are(tmp_path, capsys):
    from reid_stargan.gan.checkpoint import save_inference
    from reid_stargan.gan.models import Generator

    meta = {"c_dim": 3, "image_size": [16, 8], "g_conv_dim": 8, "g_repeat_num": 1, "d_c_dim": 3,
            "d_conv_dim": 8, "d_repeat_num": 2, "domain_names": None, "layout": None, "step": 0}
    gen = save_inference(tmp_path / "generator.pt", Generator(8, 3, 1), "generator", meta)
    err = one_line_error(capsys, cli(["--checkpoint", str(gen), "--out", str(tmp_path / "o")]))
    assert "is a StarGAN generator file, not a re-ID model" in err
    torch.save({"G": {}, "D": {}, "meta": meta}, tmp_path / "last.pt")
    err = one_line_error(capsys, cli(["--checkpoint", str(tmp_path / "last.pt"), "--out", str(tmp_path / "o")]))
    assert "StarGAN training state" in err
    data = gen.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 3])
    err = one_line_error(capsys, cli(["--checkpoint", str(tmp_path / "cut.pt"), "--out", str(tmp_path / "o")]))
    assert "truncated" in err
    err = one_line_error(capsys, cli(["--checkpoint", str(tmp_path / "nothing.pt"), "--out", str(tmp_path / "o")]))
    assert "not found" in err
