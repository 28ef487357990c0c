"""Paths stored in a model file, found again from wherever a tool runs.

`model.pt` keeps the training config as written, so `data.root` may be relative to the folder training
ran in (e.g. ``data/synthetic``). :func:`resolve_data_root` looks for it where it can be::

    root = resolve_data_root("data/synthetic", "runs/00003-reid/checkpoints/model.pt", out_root="runs")
"""

from __future__ import annotations

import os
from pathlib import Path


def run_folder_of(checkpoint: str | os.PathLike) -> Path:
    """The run folder of a model file (``RUN/checkpoints/model.pt`` -> RUN) or of a run folder itself."""
    path = Path(checkpoint).resolve()
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def training_folder(run_dir: Path, out_root: str) -> Path | None:
    """The folder training ran in, when `run_dir` is a numbered folder `<there>/<out_root>/NNNNN-tag`."""
    if not out_root or os.path.isabs(out_root):
        return None
    parts = Path(os.path.normpath(out_root)).parts
    if not parts or parts[0] in ("..", "."):
        return None
    parents = run_dir.parents
    if len(parents) <= len(parts) or run_dir.parent.parts[-len(parts):] != parts:
        return None
    return parents[len(parts)]


def data_root_candidates(root: str, checkpoint: str | os.PathLike, out_root: str = "runs") -> list[Path]:
    """Where a relative `root` may be: from the current folder, from the folder training ran in (found
    through `out_root`), from the run folder. An absolute or empty root is the only candidate."""
    if not root or os.path.isabs(root):
        return [Path(root)]
    run_dir = run_folder_of(checkpoint)
    candidates = [Path(root)]
    if (trained_in := training_folder(run_dir, out_root)) is not None:
        candidates.append(trained_in / root)
    candidates.append(run_dir / root)
    return candidates


def resolve_data_root(root: str, checkpoint: str | os.PathLike, out_root: str = "runs") -> str:
    """`root` as an existing folder: unchanged when absolute (or empty) or found from the current folder,
    else the first of :func:`data_root_candidates` that exists, as an absolute path.

    Raises FileNotFoundError naming every place tried and the override that fixes it.
    """
    if not root or os.path.isabs(root):
        return root
    candidates = data_root_candidates(root, checkpoint, out_root)
    for candidate in candidates:
        if candidate.is_dir():
            return root if candidate == Path(root) else str(candidate.resolve())
    tried = ", ".join(str(c if c == Path(root) else c.resolve()) for c in candidates)
    raise FileNotFoundError(f"data.root '{root}' of the checkpoint is relative and was not found (tried {tried}); "
                            "pass --set data.root=PATH")
