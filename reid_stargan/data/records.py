"""The records every parser returns and every consumer reads.

Re-ID data: `Record(path, pid, camid)` with `camid` 0-based (Market-1501 names are 1-based; the
parser subtracts one). Face data (the StarGAN face setting): `AttributeRecord(path, label)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple


class Record(NamedTuple):
    path: str
    pid: int
    camid: int  # 0-based camera index


class AttributeRecord(NamedTuple):
    path: str
    label: tuple[float, ...]  # multi: one 0/1 value per attribute; single: (class_index,)


def camera_links(records: Iterable[Record]) -> dict[int, frozenset[int]]:
    """camid -> the cameras that share at least one identity with it (itself included).

    Where identities are nested in camera groups (CUHK03: each person in one of 5 camera pairs), a
    camera's style cannot be told from who walks past it across groups, only within one.
    """
    cams_of: dict[int, set[int]] = {}
    for r in records:
        cams_of.setdefault(r.pid, set()).add(r.camid)
    links: dict[int, set[int]] = {}
    for cams in cams_of.values():
        for cam in cams:
            links.setdefault(cam, set()).update(cams)
    return {cam: frozenset(linked) for cam, linked in links.items()}


@dataclass
class ReidDataset:
    """A re-ID data set split into train / query / gallery, with its camera count."""

    name: str
    train: list[Record]
    query: list[Record]
    gallery: list[Record]
    num_cameras: int
    skipped: dict[str, list[str]] = field(default_factory=dict)  # split -> names that did not parse

    @property
    def num_train_pids(self) -> int:
        return len({r.pid for r in self.train})

    def train_pid_map(self) -> dict[int, int]:
        """Original train pid -> contiguous label 0..N-1 (sorted by pid, stable across runs)."""
        return {pid: i for i, pid in enumerate(sorted({r.pid for r in self.train}))}

    def cameras_without_training_images(self) -> list[int]:
        """0-based cameras in 0..num_cameras-1 that no training image comes from (empty StarGAN domains)."""
        present = {r.camid for r in self.train}
        return [c for c in range(self.num_cameras) if c not in present]

    def num_skipped_names(self) -> int:
        """File names that did not match the data set's pattern, over all splits."""
        return sum(len(v) for v in self.skipped.values())

    def skipped_note(self, limit: int = 5) -> str | None:
        """One log line naming the first few unmatched file names per split, or None when there are none."""
        if not self.skipped:
            return None
        parts = []
        for split, names in self.skipped.items():
            more = f" and {len(names) - limit} more" if len(names) > limit else ""
            parts.append(f"{split} {len(names)} ({', '.join(names[:limit])}{more})")
        return (f"{self.name}: {self.num_skipped_names()} file name(s) do not match the layout and were "
                f"skipped: " + "; ".join(parts))

    def summary(self) -> str:
        lines = [f"{self.name}: {self.num_cameras} cameras"]
        for split, recs in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            lines.append(f"  {split:8s} {len({r.pid for r in recs}):6d} ids {len(recs):8d} images")
        return "\n".join(lines)


@dataclass
class AttributeDataset:
    """A face data set for the StarGAN face setting: domains are attributes or expressions."""

    name: str
    train: list[AttributeRecord]
    test: list[AttributeRecord]
    domain_names: list[str]
    label_type: Literal["multi", "single"]

    @property
    def c_dim(self) -> int:
        return len(self.domain_names)
