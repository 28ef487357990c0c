"""Typed config of the main job (`configs/pipeline/*.yaml`).

The pipeline does not repeat the tools' settings: it names each tool's own config file and a list
of dotted overrides for it, and injects what it owns (data root, seeds, the CamStyle folder).
Config paths are relative to the pipeline config's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reid_stargan.camstyle.generate import GenerateOptions
from reid_stargan.data.config import DataConfig
from reid_stargan.data.synthetic import PRESETS


@dataclass
class SyntheticSection:
    enabled: bool = False  # write the built-in synthetic set first and use it as `data`
    preset: str = "demo"
    seed: int = 0
    root: str = ""  # where to write it; "" = <run>/data/synthetic

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(sorted(PRESETS))}")


@dataclass
class ToolStage:
    config: str = ""  # the tool's YAML config (relative to this file's folder)
    overrides: list[str] = field(default_factory=list)  # dotted overrides applied on top


@dataclass
class FaceSection:
    enabled: bool = True  # a small StarGAN run on a generated CelebA-format fixture, for the face row
    stargan: ToolStage = field(default_factory=ToolStage)
    fixture_images: int = 200
    fixture_size: int = 32


@dataclass
class QualitySection:
    enabled: bool = True
    classifier_epochs: int = 8
    max_generated: int = 1500  # generated images scored (a fixed, seeded subset of the set)
    grid_rows: int = 6


@dataclass
class PipelineConfig:
    name: str = "pipeline"
    out_root: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    synthetic: SyntheticSection = field(default_factory=SyntheticSection)
    stargan: ToolStage = field(default_factory=ToolStage)
    # generate_camstyle's own options (one source of truth); the pipeline-level `progress` is the pipeline's.
    generate: GenerateOptions = field(default_factory=GenerateOptions)
    reid_baseline: ToolStage = field(default_factory=ToolStage)
    reid_camstyle: ToolStage = field(default_factory=ToolStage)
    seeds: list[int] = field(default_factory=lambda: [0])  # re-ID seeds; baseline and +CamStyle share each
    stargan_seed: int = 0
    face: FaceSection = field(default_factory=FaceSection)
    quality: QualitySection = field(default_factory=QualitySection)
    expected_minutes: float = 0.0  # documented run time of this config on its intended machine
