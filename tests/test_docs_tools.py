"""Every command in the tools' docstrings (tools/*.py and the reid_stargan.cli modules they call) is
valid as written: the tool exists, its parser takes the arguments, the configs it names exist, and the
commands with a --config resolve it in --dry-run form (data roots swapped for a tiny synthetic set)."""

from __future__ import annotations

import ast
import importlib
import shlex
from pathlib import Path

import pytest

from reid_stargan.data.synthetic import make_synthetic

REPO = Path(__file__).resolve().parents[1]
DOCUMENTED = sorted(REPO.glob("tools/*.py")) + sorted((REPO / "reid_stargan" / "cli").glob("*.py"))
DRY_RUN_TOOLS = {"train_stargan", "generate_camstyle", "train_reid", "run_pipeline"}
COMMAND_STARTS = ("python ", "torchrun ", "nohup ", "OMP_NUM_THREADS=", "REID_STARGAN_DEBUG=")


def docstring_commands(path: Path) -> list[list[str]]:
    """The `tools/<name>.py ...` commands of a module docstring, continuations joined."""
    text = ast.get_docstring(ast.parse(path.read_text())) or ""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        if not line.strip().startswith(COMMAND_STARTS):
            continue  # prose that mentions a tool
        words = shlex.split(line.split(" # ", 1)[0])
        starts = [i for i, w in enumerate(words) if w.startswith("tools/") and w.endswith(".py")]
        if starts:
            out.append(words[starts[0]:])
    return out


ALL = [(p.relative_to(REPO).as_posix(), cmd) for p in DOCUMENTED for cmd in docstring_commands(p)]


def test_the_tools_document_their_commands():
    documented = {Path(cmd[0]).stem for _, cmd in ALL}
    assert {p.stem for p in REPO.glob("tools/*.py")} <= documented
    assert len(ALL) >= 30


@pytest.mark.parametrize("where,cmd", ALL, ids=[f"{w}:{' '.join(c)[:60]}" for w, c in ALL])
def test_docstring_command_parses_and_names_real_configs(where, cmd):
    tool = Path(cmd[0]).stem
    assert (REPO / cmd[0]).is_file(), f"{where}: {cmd[0]} does not exist"
    parser = importlib.import_module(f"reid_stargan.cli.{tool}").build_parser()
    try:
        args = parser.parse_args(cmd[1:])
    except SystemExit as exc:
        pytest.fail(f"{where}: `{shlex.join(cmd)}` is rejected by the parser (exit {exc.code})")
    config = getattr(args, "config", None)
    if config:
        assert (REPO / config).is_file(), f"{where}: {config} does not exist"


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs_tools") / "set"
    make_synthetic(root, seed=0, num_train_ids=6, num_test_ids=4, num_cameras=3, images_per_id_cam=2,
                   min_cameras_per_id=2, max_cameras_per_id=3, height=64, width=32)
    return root


DRY = [(w, c) for w, c in ALL if Path(c[0]).stem in DRY_RUN_TOOLS and "--config" in c and "--resume" not in c]


@pytest.mark.parametrize("where,cmd", DRY, ids=[f"{w}:{' '.join(c)[:60]}" for w, c in DRY])
def test_docstring_config_commands_resolve_in_dry_run(where, cmd, tiny_root, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the documented configs are repository-relative
    args = []
    for i, a in enumerate(cmd[1:], start=1):
        if a.startswith("data.root="):
            a = f"data.root={tiny_root}"
        elif cmd[i - 1] == "--data-root":
            a = str(tiny_root)
        args.append(a)
    if "--dry-run" not in args:
        args.append("--dry-run")
    if Path(cmd[0]).stem in {"train_reid", "train_stargan"} and not any(a.startswith("data.root=") for a in args):
        args += ["--set", f"data.root={tiny_root}"] if "--set" not in args else [f"data.root={tiny_root}"]
    result = importlib.import_module(f"reid_stargan.cli.{Path(cmd[0]).stem}").main(args)
    assert not (isinstance(result, int) and result != 0), (where, result)
    assert capsys.readouterr().out.strip(), f"{where}: the dry run printed nothing"
