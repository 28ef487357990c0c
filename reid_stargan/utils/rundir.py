"""Numbered, self-describing run folders (`runs/00003-stargan-market/`) and their logs.

A run folder holds `run.json` (which tool owns it), `config.yaml` (the resolved config), `log.txt`
(human log), `stats.jsonl` (one JSON record per logged step), `checkpoints/` and `samples/`. An
existing folder is never overwritten: the next free number is taken, and a trainer refuses a folder
that holds something other than its own run (`claim_run_dir`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from reid_stargan.utils.io import TMP_MARKER, append_jsonl, atomic_write_json, atomic_write_text

_RUN_RE = re.compile(r"^(\d{5})-")
RUN_FILE = "run.json"
# Files a run folder holds before its first checkpoint: such a folder may be removed after a failed start.
_BOOKKEEPING = {RUN_FILE, "config.yaml", "log.txt", "stats.jsonl"}


class RunDirError(ValueError):
    """A run folder that is not this tool's run (or not a run at all)."""


def make_run_dir(root: str | os.PathLike, tag: str, subdirs: tuple[str, ...] = ("checkpoints", "samples")) -> Path:
    """Create `root/NNNNN-tag/` with the next free number and return it (never reuses a folder)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    safe_tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", tag).strip("-") or "run"
    while True:
        numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
        run_dir = root / f"{max(numbers, default=-1) + 1:05d}-{safe_tag}"
        try:
            run_dir.mkdir()  # atomic: a concurrent creator gets FileExistsError and retries
        except FileExistsError:
            continue
        for sub in subdirs:
            (run_dir / sub).mkdir()
        return run_dir


def _legacy_owner(run_dir: Path) -> str | None:
    """The tool of a run folder written before `run.json` existed, from what it holds (None: not a run)."""
    if not (run_dir / "checkpoints").is_dir() or not (run_dir / "config.yaml").is_file():
        return None
    import yaml

    try:
        keys = set(yaml.safe_load((run_dir / "config.yaml").read_text()) or {})
    except (yaml.YAMLError, AttributeError, TypeError, OSError):
        return None
    if "gan" in keys:
        return "train_stargan"
    if "sampler" in keys:
        return "train_reid"
    return None


def run_owner(run_dir: str | os.PathLike) -> str | None:
    """Which tool's run `run_dir` is ("train_stargan", "train_reid", ...), or None."""
    run_dir = Path(run_dir)
    marker = run_dir / RUN_FILE
    if marker.is_file():
        try:
            return json.loads(marker.read_text()).get("tool")
        except (json.JSONDecodeError, AttributeError, OSError):
            return None
    return _legacy_owner(run_dir)


def claim_run_dir(run_dir: str | os.PathLike, tool: str, write: bool = True) -> Path:
    """Make `run_dir` this tool's run folder, or refuse it.

    A missing or empty folder (empty sub-folders allowed, as `make_run_dir` makes) is created and marked with `run.json`; a folder that is already this
    tool's run is accepted as it is. Anything else (another tool's run, a folder of the user's own
    files) raises `RunDirError`: nothing in it is overwritten. `write=False` checks only (other ranks).
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run folder {run_dir} is a file, not a folder")
    # Temporaries do not count: another rank may be writing this very folder's run.json right now.
    if run_dir.is_dir() and any((path.is_file() or path.is_symlink()) and TMP_MARKER not in path.name
                                for path in run_dir.rglob("*")):
        owner = run_owner(run_dir)
        if owner != tool:
            what = f"a {owner} run folder" if owner else "not a run folder of this toolkit"
            contents = ", ".join(sorted(p.name for p in run_dir.iterdir())[:6])
            raise RunDirError(f"{run_dir} is {what} (it holds {contents}); {tool} writes only into a new folder, "
                              f"an empty one or its own run: choose another --run-dir")
    if write:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / RUN_FILE).is_file():
            atomic_write_json(run_dir / RUN_FILE, {"tool": tool, "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    return run_dir


def remove_stale_temporaries(run_dir: str | os.PathLike, subdirs: tuple[str, ...] = ("", "checkpoints", "samples")) -> list[str]:
    """Delete `*.tmp-*` files a killed writer left in a run folder; only call it on the folder's own process."""
    removed = []
    for sub in subdirs:
        folder = Path(run_dir) / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if TMP_MARKER in path.name and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(str(path))
    return removed


def discard_unstarted_run(run_dir: str | os.PathLike) -> bool:
    """Remove a run folder that a failed start left with only bookkeeping files; True when removed.

    A folder with any checkpoint, sample or other file is kept untouched.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return False
    files = (path for path in run_dir.rglob("*") if not path.is_dir())
    if any(path.parent != run_dir or path.name not in _BOOKKEEPING for path in files):
        return False
    shutil.rmtree(run_dir)
    return True


def drop_stats_after(run_dir: str | os.PathLike, keep: Callable[[dict], bool]) -> int:
    """Rewrite `stats.jsonl` with only the records `keep` accepts (a resume drops those past its step).

    Returns the number of records dropped; a line that is not JSON (a write cut short) is dropped too.
    """
    path = Path(run_dir) / "stats.jsonl"
    if not path.is_file():
        return 0
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if keep(record):
            kept.append(line)
    dropped = len(lines) - len(kept)
    if dropped:
        atomic_write_text(path, "".join(line + "\n" for line in kept))
    return dropped


class RunLogger:
    """Writes the human log and the JSONL stats of one run; silent on ranks other than 0."""

    def __init__(self, run_dir: str | os.PathLike | None, enabled: bool = True, echo: bool = True):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.enabled = enabled and self.run_dir is not None
        self.echo = echo and enabled

    def info(self, message: str) -> None:
        line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}"
        if self.echo:
            print(line, file=sys.stderr, flush=True)
        if self.enabled:
            with open(self.run_dir / "log.txt", "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def stats(self, record: dict) -> None:
        if self.enabled:
            append_jsonl(self.run_dir / "stats.jsonl", {"time": round(time.time(), 3), **record})


def read_stats(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / "stats.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
