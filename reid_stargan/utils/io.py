"""Atomic file writes and small I/O helpers.

Every checkpoint, image, manifest and report the toolkit writes goes through these functions:
the bytes land in a temporary file in the destination folder, are flushed to disk, and only then
renamed onto the final name. A crash (even SIGKILL) therefore never leaves a half-written file
under a final name; at worst a `*.tmp-*` file remains, which readers ignore (and the trainers delete
when they start). A written file gets the mode a plain `open()` would give it (0666 less the umask).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

TMP_MARKER = ".tmp-"


class CheckpointFileError(ValueError):
    """A file that cannot be loaded as a checkpoint: empty, truncated, not a torch file, or holding code."""


def _current_umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + TMP_MARKER, dir=path.parent)
    try:
        # mkstemp makes the file 0600; give it what open() would (0666 & ~umask), so others the
        # umask admits (a shared group, a web server for the sample grids) can read the outputs.
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # leave nothing behind under any name on failure
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` into memory, then write atomically."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint without ever executing pickled code (``weights_only=True``).

    A file that is missing raises FileNotFoundError; one that is empty, truncated, not a torch file
    or holds pickled code raises `CheckpointFileError` with a message that says which.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointFileError(f"{path}: empty file (0 bytes), not a checkpoint")
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "GLOBAL" in text:
            # torch's own text advises weights_only=False, i.e. running the code: never do that here.
            blocked = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln), "")
            raise CheckpointFileError(
                f"{path} holds pickled code (objects other than tensors and plain containers) and is refused; "
                f"this toolkit loads weights only. {blocked}".strip()) from exc
        raise CheckpointFileError(f"{path}: not a checkpoint (not a torch file, or corrupt)") from exc
    except (RuntimeError, OSError, EOFError, KeyError, ValueError, UnicodeDecodeError) as exc:
        if head == b"PK\x03\x04":
            raise CheckpointFileError(f"{path}: truncated or corrupt checkpoint ({size} bytes; its zip "
                                      "archive is incomplete, e.g. a copy or a write that was cut short)") from exc
        raise CheckpointFileError(f"{path}: not a checkpoint (not a torch file: it starts with {head!r})") from exc


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line; a line is written with one ``write`` call so readers never see half a record."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
