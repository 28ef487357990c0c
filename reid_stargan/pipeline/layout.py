"""Where a pipeline run keeps each stage's output: the one place that knows the folder names.

    layout = RunLayout(Path("runs/00001-pipeline-synthetic_cpu"))
    layout.reid("baseline", 0) / "checkpoints" / "model.pt"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @property
    def synthetic(self) -> Path:
        return self.root / "data" / "synthetic"

    @property
    def face_fixture(self) -> Path:
        return self.root / "data" / "celeba_fixture"

    @property
    def stargan(self) -> Path:
        return self.root / "stargan"

    @property
    def camstyle(self) -> Path:
        return self.root / "camstyle"

    @property
    def face(self) -> Path:
        return self.root / "face"

    @property
    def stages(self) -> Path:
        return self.root / "stages"

    def reid(self, mode: str, seed: int) -> Path:
        return self.root / "reid" / f"{mode}-s{seed}"

    def file(self, name: str) -> Path:
        """A file at the top of the run folder (config.yaml, timings.json, quality.json, report.md, PNGs)."""
        return self.root / name


@dataclass
class ReportInputs:
    """Plain values the report needs beside the stages' outputs (no Pipeline object)."""

    layout: RunLayout
    name: str
    data_name: str
    data_root: str
    num_cameras: int
    synthetic: bool
    seeds: list[int]
    grid_rows: int
    timings: dict[str, float] = field(default_factory=dict)
