"""The main job: data -> StarGAN -> CamStyle set -> re-ID baseline and +CamStyle -> report.

Every stage is the library function its tool runs, writes into a fixed sub-folder of the pipeline's
run folder, and returns at once when its output is already complete, so rerunning a stopped
pipeline (`--resume RUN_DIR`) continues where it stopped.

    run/
      config.yaml               resolved pipeline config
      data/synthetic/           the built-in set (when the config asks for it)
      stargan/                  train_stargan run folder (checkpoints/generator.pt, samples/)
      camstyle/                 generate_camstyle output (images, manifest.jsonl, summary.json)
      reid/baseline-s0/ ...     train_reid run folders, one per mode and seed (metrics.json)
      face/                     the face-setting StarGAN run on a CelebA-format fixture
      quality.json              translation quality measures
      report.md report.json *.png
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

from reid_stargan.camstyle.naming import camstyle_status
from reid_stargan.config import config_to_dict, dump_config_yaml, load_config
from reid_stargan.pipeline.config import PipelineConfig, ToolStage
from reid_stargan.utils.io import atomic_write_json, atomic_write_text
from reid_stargan.utils.rundir import RunLogger


def resolve_tool_paths(cfg: PipelineConfig, config_dir: Path) -> PipelineConfig:
    """The tools' config paths made absolute against the pipeline config's folder."""
    def absolute(stage: ToolStage) -> ToolStage:
        if not stage.config or Path(stage.config).is_absolute():
            return stage
        return replace(stage, config=str((config_dir / stage.config).resolve()))

    return replace(cfg, stargan=absolute(cfg.stargan), reid_baseline=absolute(cfg.reid_baseline),
                   reid_camstyle=absolute(cfg.reid_camstyle),
                   face=replace(cfg.face, stargan=absolute(cfg.face.stargan)))


class Pipeline:
    """Runs the stages of one pipeline config inside one run folder."""

    def __init__(self, cfg: PipelineConfig, run_dir: str | os.PathLike, progress: bool = True):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.log = RunLogger(self.run_dir)
        timings_path = self.run_dir / "timings.json"
        self.timings: dict[str, float] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}

    # ------------------------------------------------------------------ helpers
    def _tool_config(self, cls, stage: ToolStage, extra: list[str]):
        if not stage.config:
            raise ValueError(f"pipeline config {self.cfg.name}: a stage has no `config` file")
        return load_config(cls, stage.config, [*stage.overrides, *extra])

    def _stage(self, name: str, fn):
        self.log.info(f"stage {name}: start")
        start = time.time()
        result = fn()
        # Summed over invocations: a resumed run adds the time it spent finishing the stage.
        self.timings[name] = round(self.timings.get(name, 0.0) + time.time() - start, 2)
        atomic_write_json(self.run_dir / "timings.json", self.timings)
        self.log.info(f"stage {name}: done in {self.timings[name]:.1f} s")
        self.log.stats({"stage": name, "seconds": self.timings[name]})
        return result

    def data_overrides(self) -> list[str]:
        d = self.cfg.data
        return [f"data.name={d.name}", f"data.root={d.root}", f"data.num_cameras={d.num_cameras}"]

    # ------------------------------------------------------------------ stages
    def make_data(self) -> None:
        syn = self.cfg.synthetic
        if not syn.enabled:
            return
        from reid_stargan.data.synthetic import META_FILE, make_synthetic

        root = Path(syn.root) if syn.root else self.run_dir / "data" / "synthetic"
        if not (root / META_FILE).is_file():
            make_synthetic(root, seed=syn.seed, preset=syn.preset)
        else:
            self.log.info(f"synthetic set already at {root}: skipped")
        self.cfg = replace(self.cfg, data=replace(self.cfg.data, name="market_layout", root=str(root)))

    def train_stargan(self) -> Path:
        from reid_stargan.gan.config import StarGANConfig
        from reid_stargan.gan.trainer import train_stargan

        cfg = self._tool_config(StarGANConfig, self.cfg.stargan,
                                [*self.data_overrides(), f"train.seed={self.cfg.stargan_seed}"])
        return train_stargan(cfg, self.run_dir / "stargan", resume=True, progress=self.progress)

    def generate(self, generator: Path) -> Path:
        from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle

        g = self.cfg.generate
        out = self.run_dir / "camstyle"
        if camstyle_status(out).complete:
            self.log.info(f"CamStyle set in {out} is complete: skipped")
            return out
        dataset = self.cfg.data.build()
        options = GenerateOptions(naming=g.naming, include_own=g.include_own, targets_per_image=g.targets_per_image,
                                  keep_detail=g.keep_detail, batch_size=g.batch_size,
                                  workers=g.workers, image_format=g.image_format,
                                  jpeg_quality=g.jpeg_quality, progress=self.progress)
        generate_camstyle(generator, dataset.train, out, dataset.num_cameras, options)
        return out

    def train_reid(self, mode: str, seed: int, camstyle: Path | None) -> dict:
        from reid_stargan.reid.config import ReidConfig
        from reid_stargan.reid.trainer import train_reid

        stage = self.cfg.reid_baseline if mode == "baseline" else self.cfg.reid_camstyle
        cfg = self._tool_config(ReidConfig, stage, [*self.data_overrides(), f"train.seed={seed}"])
        run = self.run_dir / "reid" / f"{mode}-s{seed}"
        return train_reid(cfg, run, camstyle=str(camstyle) if camstyle else None, resume=True,
                          progress=self.progress)

    def face_setting(self) -> dict | None:
        face = self.cfg.face
        if not face.enabled:
            return None
        from reid_stargan.data.face_fixtures import write_celeba_fixture
        from reid_stargan.gan.config import StarGANConfig
        from reid_stargan.gan.trainer import train_stargan

        root = self.run_dir / "data" / "celeba_fixture"
        if not (root / "list_attr_celeba.txt").is_file():
            write_celeba_fixture(root, num_images=face.fixture_images, size=face.fixture_size, seed=0)
        cfg = self._tool_config(StarGANConfig, face.stargan, [f"data.root={root}", f"train.seed={self.cfg.stargan_seed}"])
        run = self.run_dir / "face"
        train_stargan(cfg, run, resume=True, progress=self.progress)
        return {"config": config_to_dict(cfg), "summary": json.loads((run / "summary.json").read_text())}

    # ------------------------------------------------------------------ the whole job
    def run(self) -> dict:
        from reid_stargan.pipeline.report import write_report

        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "config.yaml", dump_config_yaml(self.cfg))
        self._stage("data", self.make_data)
        generator = self._stage("stargan", self.train_stargan)
        camstyle = self._stage("generate", lambda: self.generate(generator))
        runs: dict[str, list[dict]] = {"baseline": [], "camstyle": []}
        for seed in self.cfg.seeds:
            runs["baseline"].append(self._stage(f"reid-baseline-s{seed}", lambda s=seed: self.train_reid("baseline", s, None)))
            runs["camstyle"].append(self._stage(f"reid-camstyle-s{seed}", lambda s=seed: self.train_reid("camstyle", s, camstyle)))
        face = self._stage("face", self.face_setting)
        quality = self._stage("quality", lambda: self.quality(generator, camstyle))
        report = self._stage("report", lambda: write_report(self, runs, face, quality))
        return report

    def quality(self, generator: Path, camstyle: Path) -> dict | None:
        if not self.cfg.quality.enabled:
            return None
        path = self.run_dir / "quality.json"
        if path.is_file():
            return json.loads(path.read_text())
        from reid_stargan.pipeline.measure import measure_quality

        result = measure_quality(self, generator, camstyle)
        atomic_write_json(path, result)
        return result

