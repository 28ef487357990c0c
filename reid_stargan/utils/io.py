"""Atomic file writes and small I/O helpers.

Every checkpoint, image, manifest and report the toolkit writes goes through these functions:
the bytes land in a temporary file in the destination folder, are flushed to disk, and only then
renamed onto the final name. A crash (even SIGKILL) therefore never leaves a half-written file
under a final name; at worst a `*.tmp-*` file remains, which readers ignore.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

TMP_MARKER = ".tmp-"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + TMP_MARKER, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Leave nothing behind under any name on failure.
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` into memory, then write atomically."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint without ever executing pickled code (``weights_only=True``)."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


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
        f.flush()
