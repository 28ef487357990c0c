"""The shell commands of a Markdown page, for the tests that run every documented command."""

from __future__ import annotations

import shlex
from pathlib import Path


def fenced_blocks(page: Path, lang: str | set[str] = "") -> list[str]:
    """The fenced blocks of `page` whose info string is `lang` (or one of a set of them)."""
    langs = {lang} if isinstance(lang, str) else set(lang)
    blocks, current, kind = [], None, None
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current, kind = [], line[3:].strip()
            else:
                if kind in langs:
                    blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def tool_commands(page: Path, lang: str | set[str] = "") -> list[list[str]]:
    """Each `tools/<name>.py ...` command of the page's shell blocks (continuations joined,
    comments dropped), from the tool's path on: ["tools/x.py", args...]."""
    out = []
    for block in fenced_blocks(page, lang):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split("#", 1)[0])
            starts = [i for i, w in enumerate(words) if w.startswith("tools/") and w.endswith(".py")]
            if starts:
                out.append(words[starts[0]:])
    return out
