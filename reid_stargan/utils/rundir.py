"""Numbered, self-describing run folders (`runs/00003-stargan-market/`) and their logs.

A run folder holds `config.yaml` (the resolved config), `log.txt` (human log), `stats.jsonl`
(one JSON record per logged step), `checkpoints/` and `samples/`. An existing folder is never
overwritten: the next free number is taken.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from reid_stargan.utils.io import append_jsonl

_RUN_RE = re.compile(r"^(\d{5})-")


def make_run_dir(root: str | os.PathLike, tag: str) -> Path:
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
        (run_dir / "checkpoints").mkdir()
        (run_dir / "samples").mkdir()
        return run_dir


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
