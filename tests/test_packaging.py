"""Packaging: exactly one FAISS wheel per install, console scripts that end like the tools."""

from __future__ import annotations

import configparser
import importlib
import importlib.metadata as md
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg


def requirement_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower())
    return names


def test_faiss_comes_from_one_extra_only():
    cfg = setup_cfg()
    base = requirement_names(cfg["options"]["install_requires"])
    extras = {k: requirement_names(v) for k, v in cfg["options.extras_require"].items()}
    assert not any(n.startswith("faiss") for n in base)  # both wheels install the module `faiss`
    assert extras["cpu"] == {"faiss-cpu"} and all(n.startswith("faiss-gpu") for n in extras["gpu"])
    for name, reqs in extras.items():
        assert len({n for n in reqs if n.startswith("faiss")}) <= 1, name


def test_the_installed_faiss_is_the_cpu_wheel_make_installs():
    pytest.importorskip("faiss")
    import faiss

    installed = {d.metadata["Name"].lower() for d in md.distributions()}
    assert "faiss-cpu" in installed and not any(n.startswith("faiss-gpu") for n in installed)
    files = {str(f) for f in md.files("faiss-cpu")}
    assert "faiss/__init__.py" in files
    assert Path(faiss.__file__).as_posix().endswith("faiss/__init__.py")


def test_console_scripts_use_the_one_line_error_wrappers():
    scripts = setup_cfg()["options.entry_points"]["console_scripts"]
    targets = [line.split("=", 1)[1].strip() for line in scripts.splitlines() if "=" in line]
    assert len(targets) >= 10
    for target in targets:
        module, _, func = target.partition(":")
        assert func == "cli", target  # cli() turns expected failures into `error: ...` and exit code 2
        assert callable(getattr(importlib.import_module(module), func)), target
