"""The main job: data -> StarGAN -> CamStyle set -> re-ID baseline and +CamStyle -> report.

Every stage is the library function its tool runs, writes into a fixed sub-folder of the pipeline's
run folder, and returns at once when its output is already complete, so rerunning a stopped
pipeline (`--resume RUN_DIR`) continues where it stopped.

Each stage records the resolved settings it runs with, and those of the stages whose outputs it
reads, in `stages/<stage>.json` when it starts. A resume whose config gives a started stage other
settings is refused before anything runs or is written, listing the differences
(`StageConfigError`): the finished outputs were made with the old settings, and `config.yaml` must
not claim the new ones. Keys that cannot change a stage's output (worker and thread counts, log
intervals) may change. New stages (more seeds) run.

    run/
      config.yaml               resolved pipeline config
      stages/<stage>.json       the settings each stage ran with (and its inputs')
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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from reid_stargan.camstyle.naming import has_generated_images
from reid_stargan.config import config_to_dict, dump_config_yaml, load_config, moved_flat_key
from reid_stargan.data.config import DataConfig
from reid_stargan.pipeline.config import PipelineConfig, ToolStage
from reid_stargan.pipeline.layout import ReportInputs, RunLayout
from reid_stargan.utils.io import atomic_write_json, atomic_write_text
from reid_stargan.utils.run import flatten
from reid_stargan.utils.rundir import RunLogger

STAGES_DIR = "stages"
# Settings that cannot change what a stage writes: they may differ on a resume.
RUNTIME_KEYS = frozenset({
    "runtime.num_workers", "runtime.threads", "log.log_every", "log.checkpoint_every", "log.tensorboard",
    "train.num_workers", "train.threads", "train.log_every", "train.checkpoint_every", "train.tensorboard",
    "eval.batch_size", "generate.workers", "generate.batch_size", "generate.progress", "generate.judge",
})


class StageConfigError(ValueError):
    """A resume whose config differs from what started stages ran with (the message lists it)."""


@dataclass(frozen=True)
class Stage:
    """One row of the pipeline's stage table.

    `settings` (None: nothing to record, e.g. the report) are what the stage runs with; `reads` the
    stages whose outputs it reads, whose settings count as its own. `run(results)` gets the values the
    earlier stages returned, by name. `started(output)` says whether an unfinished stage left outputs.
    """

    name: str
    output: Path
    run: Callable[[dict], object]
    settings: dict | None = None
    reads: tuple[str, ...] = ()
    started: Callable[[Path], bool] = lambda output: (output / "checkpoints" / "last.pt").is_file()
    defaults: dict | None = None  # the settings' defaults: a key newer than a record counts only if not at it


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
        self.layout = RunLayout(self.run_dir)
        self.progress = progress
        self.log = RunLogger(self.run_dir)
        self.num_cameras: int | None = None  # learnt when the generate stage parses the data set
        self.plan: dict[str, tuple[dict, list[str]]] = {}  # set by run(): stage_plan()
        timings_path = self.layout.file("timings.json")
        self.timings: dict[str, float] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}

    # ------------------------------------------------------------------ helpers
    def _tool_config(self, cls, stage: ToolStage, extra: list[str]):
        if not stage.config:
            raise ValueError(f"pipeline config {self.cfg.name}: a stage has no `config` file")
        return load_config(cls, stage.config, [*stage.overrides, *extra])

    def _stage(self, name: str, fn):
        self.log.info(f"stage {name}: start")
        start = time.time()
        record = None
        if name in self.plan:  # what it runs with, written before it writes anything
            previous = self._record(name) or {}
            record = {"stage": name, "settings": self._fingerprint(name, self.plan), "inputs": self.plan[name][1],
                      "started": previous.get("started", time.time()), "finished": previous.get("finished")}
            atomic_write_json(self._record_path(name), record)
        result = fn()
        if record is not None and not record["finished"]:
            atomic_write_json(self._record_path(name), {**record, "finished": time.time()})
        # Summed over invocations: a resumed run adds the time it spent finishing the stage.
        self.timings[name] = round(self.timings.get(name, 0.0) + time.time() - start, 2)
        atomic_write_json(self.layout.file("timings.json"), self.timings)
        self.log.info(f"stage {name}: done in {self.timings[name]:.1f} s; {self._eta()}")
        self.log.stats({"stage": name, "seconds": self.timings[name]})
        return result

    def _eta(self) -> str:
        """Progress over the whole job: stages done, minutes spent, and what the config's measured
        run time (`expected_minutes`) leaves."""
        done = sum(name in self.timings for name in self.plan)
        spent = sum(self.timings.values()) / 60
        text = f"{done}/{len(self.plan)} stages done, {spent:.1f} min spent"
        if self.cfg.expected_minutes:
            left = max(self.cfg.expected_minutes - spent, 0.0)
            text += f", about {left:.0f} of the expected {self.cfg.expected_minutes:.0f} min left"
        return text

    def data_config(self) -> DataConfig:
        """The data set every stage reads: the configured one, or the synthetic set this run writes."""
        syn = self.cfg.synthetic
        if not syn.enabled:
            return self.cfg.data
        root = Path(syn.root) if syn.root else self.layout.synthetic
        return replace(self.cfg.data, name="market_layout", root=str(root))

    def data_overrides(self) -> list[str]:
        d = self.data_config()
        return [f"data.name={d.name}", f"data.root={d.root}", f"data.num_cameras={d.num_cameras}"]

    def stargan_config(self):
        from reid_stargan.gan.config import StarGANConfig

        return self._tool_config(StarGANConfig, self.cfg.stargan,
                                 [*self.data_overrides(), f"train.seed={self.cfg.stargan_seed}"])

    def reid_config(self, mode: str, seed: int):
        from reid_stargan.reid.config import ReidConfig

        stage = self.cfg.reid_baseline if mode == "baseline" else self.cfg.reid_camstyle
        return self._tool_config(ReidConfig, stage, [*self.data_overrides(), f"train.seed={seed}"])

    def face_config(self):
        from reid_stargan.gan.config import StarGANConfig

        return self._tool_config(StarGANConfig, self.cfg.face.stargan,
                                 [f"data.root={self.layout.face_fixture}", f"train.seed={self.cfg.stargan_seed}"])

    # ------------------------------------------------------------------ the stage table
    def stage_table(self) -> list[Stage]:
        """Every stage in the order it runs: its name, output, settings, inputs and what runs it.

        A stage is done when its output is complete, which the stage itself decides (each returns at
        once on a finished output), and its record in `stages/` matches what it would run with now.
        """
        c, layout = self.cfg, self.layout
        synthetic = {"synthetic": config_to_dict(c.synthetic)} if c.synthetic.enabled else {}
        reid_defaults = config_to_dict(type(self.reid_config("baseline", c.seeds[0]))())
        table = [
            Stage("data", Path(self.data_config().root), lambda r: self.make_data(),
                  {**synthetic, "data": config_to_dict(self.data_config())},
                  started=lambda out: c.synthetic.enabled and out.exists(), defaults={"data": config_to_dict(DataConfig())}),
            Stage("stargan", layout.stargan, lambda r: self.train_stargan(), config_to_dict(self.stargan_config()),
                  ("data",), defaults=config_to_dict(type(self.stargan_config())())),
            Stage("generate", layout.camstyle, lambda r: self.generate(r["stargan"]),
                  {"generate": config_to_dict(c.generate)}, ("data", "stargan"), started=has_generated_images,
                  defaults={"generate": config_to_dict(type(c.generate)())}),
        ]
        for seed in c.seeds:
            table.append(Stage(f"reid-baseline-s{seed}", layout.reid("baseline", seed),
                               lambda r, s=seed: self.train_reid("baseline", s, None),
                               config_to_dict(self.reid_config("baseline", seed)), ("data",), defaults=reid_defaults))
            table.append(Stage(f"reid-camstyle-s{seed}", layout.reid("camstyle", seed),
                               lambda r, s=seed: self.train_reid("camstyle", s, r["generate"]),
                               {**config_to_dict(self.reid_config("camstyle", seed)),
                                "camstyle_dir": str(layout.camstyle)}, ("data", "generate"), defaults=reid_defaults))
        if c.face.enabled:
            table.append(Stage("face", layout.face, lambda r: self.face_setting(),
                               {**config_to_dict(self.face_config()), "fixture_images": c.face.fixture_images,
                                "fixture_size": c.face.fixture_size}, defaults=config_to_dict(type(self.face_config())())))
        if c.quality.enabled:
            table.append(Stage("quality", layout.file("quality.json"),
                               lambda r: self.quality(r["stargan"], r["generate"]), {"quality": config_to_dict(c.quality)},
                               ("data", "stargan", "generate", f"reid-baseline-s{c.seeds[0]}"),
                               started=lambda out: out.is_file(), defaults={"quality": config_to_dict(type(c.quality)())}))
        table.append(Stage("report", layout.file("report.md"), self._report))
        return table

    def stage_plan(self) -> dict[str, tuple[dict, list[str]]]:
        """Build the stage table (`self.table`) and return stage name -> (the settings it runs with, the
        stages whose outputs it reads), recorded stages only."""
        self.table = self.stage_table()
        return {st.name: (self._flat(st.settings), list(st.reads)) for st in self.table if st.settings is not None}

    def _flat(self, tree: dict) -> dict:
        """Dotted keys; paths inside the run folder written relative to it, so a moved run still resumes."""
        out = flatten(tree)
        for key, value in out.items():
            if isinstance(value, str):
                for base in {str(self.run_dir), str(self.run_dir.resolve())}:
                    if value == base or value.startswith(base + os.sep):
                        out[key] = "<run>" + value[len(base):]
                        break
        return json.loads(json.dumps(out))  # as a record file gives it back (tuples as lists)

    def _fingerprint(self, name: str, plan: dict) -> dict:
        """A stage's settings and, prefixed with their names, those of every stage it reads from."""
        own, inputs = plan[name]
        out = dict(own)
        for up in inputs:
            out.update({k if ":" in k else f"{up}:{k}": v for k, v in self._fingerprint(up, plan).items()})
        return out

    def _record_path(self, name: str) -> Path:
        return self.layout.stages / f"{name}.json"

    def _record(self, name: str) -> dict | None:
        path = self._record_path(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def _differences(self, name: str, plan: dict, record: dict) -> list[str]:
        """What a stage ran with (its record) against what it would run with now, runtime keys aside.

        A key the record lacks was added to the toolkit after the stage ran; its default keeps the old
        behaviour, so it is a difference only when the config now sets it to something else.
        """
        ran = {moved_flat_key(k): v for k, v in record["settings"].items()}  # a record older than a key's move
        now = self._fingerprint(name, plan)
        defaults = self._fingerprint(name, {st.name: (self._flat(st.defaults or {}), list(st.reads))
                                            for st in self.table})
        return [f"{k}: ran {ran.get(k, '(unset)')!r}, now {now.get(k, '(unset)')!r}" for k in sorted(set(ran) | set(now))
                if k.split(":")[-1] not in RUNTIME_KEYS and ran.get(k) != now.get(k)
                and not (k not in ran and k in defaults and now.get(k) == defaults[k])]

    def status(self) -> list[dict]:
        """The stage table as a user reads it: each stage, its output, and whether it is done, i.e.
        finished with the settings the config gives it now (a resume skips it)."""
        plan = self.stage_plan()
        rows = []
        for st in self.table:
            record = self._record(st.name)
            # A stage without recorded settings (the report) is cheap and always written again.
            done = st.name in plan and bool(record and record.get("finished")) and not self._differences(
                st.name, plan, record)
            rows.append({"stage": st.name, "output": str(st.output), "done": done})
        return rows

    def check_stage_records(self, plan: dict) -> None:
        """Refuse (StageConfigError) when a started stage's record differs from what it would run with now."""
        problems = []
        for st in self.table:
            record = self._record(st.name) if st.name in plan else None
            if record is None:
                continue
            if not record.get("finished") and not st.started(st.output):
                continue  # it stopped before writing anything (e.g. a bad value): nothing ran with it
            if diffs := self._differences(st.name, plan, record):
                state = "finished" if record.get("finished") else "started"
                more = f", ... ({len(diffs)} in all)" if len(diffs) > 6 else ""
                problems.append(f"stage {st.name} ({state}): {', '.join(diffs[:6])}{more}")
        if problems:
            raise StageConfigError(
                f"{self.run_dir}: cannot resume, the config differs from what these stages ran with: "
                + "; ".join(problems) + ". Start a new run (run_pipeline --config FILE, without --resume), or "
                "resume with the settings they ran with; to redo one stage, delete its output folder and "
                f"{STAGES_DIR}/<stage>.json (and those of the stages that read it)")

    def check_devices(self) -> None:
        """A GPU config on a machine without CUDA fails here, in one line, before any stage runs."""
        from reid_stargan.utils.distributed import require_device

        require_device(self.stargan_config().runtime.device, "stargan runtime.device")
        for mode in ("baseline", "camstyle"):
            require_device(self.reid_config(mode, self.cfg.seeds[0]).train.device, f"reid_{mode} train.device")
        if self.cfg.face.enabled:
            require_device(self.face_config().runtime.device, "face runtime.device")

    def _legacy_check(self) -> None:
        """A run folder written before stage records: its config.yaml must match (seeds may change)."""
        saved_path = self.layout.file("config.yaml")
        if self.layout.stages.is_dir() or not saved_path.is_file():
            return
        import yaml

        saved = self._flat(yaml.safe_load(saved_path.read_text()) or {})
        now = self._flat(config_to_dict(self.cfg))
        # With the synthetic set, data.name / data.root follow from synthetic.* (config.yaml is written
        # again once the data stage has set them), so they are not compared.
        derived = {"data.name", "data.root"} if self.cfg.synthetic.enabled else set()
        diffs = [f"{k}: ran {saved.get(k)!r}, now {now.get(k)!r}" for k in sorted(set(saved) | set(now))
                 if k != "seeds" and k not in RUNTIME_KEYS | derived and saved.get(k) != now.get(k)]
        if diffs:
            raise StageConfigError(f"{self.run_dir}: cannot resume, the config differs from its config.yaml: "
                                   + ", ".join(diffs) + ". Start a new run (without --resume) or resume with "
                                   "the saved config")

    # ------------------------------------------------------------------ stages
    def make_data(self) -> None:
        syn = self.cfg.synthetic
        if not syn.enabled:
            return
        from reid_stargan.data.synthetic import META_FILE, PRESETS, make_synthetic

        root = Path(self.data_config().root)
        if not (root / META_FILE).is_file():
            make_synthetic(root, seed=syn.seed, **PRESETS[syn.preset])
        else:
            self.log.info(f"synthetic set already at {root}: skipped")
        self.cfg = replace(self.cfg, data=self.data_config())
        atomic_write_text(self.layout.file("config.yaml"), dump_config_yaml(self.cfg))  # with data.root as made

    def train_stargan(self) -> Path:
        from reid_stargan.gan.trainer import train_stargan

        return train_stargan(self.stargan_config(), self.layout.stargan, resume=True, progress=self.progress)

    def generate(self, generator: Path) -> Path:
        from reid_stargan.camstyle.generate import generate_camstyle

        out = self.layout.camstyle
        dataset = self.cfg.data.build()
        self.num_cameras = dataset.num_cameras
        options = replace(self.cfg.generate, progress=self.cfg.generate.progress and self.progress)
        summary = generate_camstyle(generator, dataset.train, out, dataset.num_cameras, options,
                                    unparsed_names=dataset.num_skipped_names())
        if summary.get("already_complete"):
            self.log.info(f"CamStyle set in {out} is complete: skipped")
        return out

    def train_reid(self, mode: str, seed: int, camstyle: Path | None) -> dict:
        from reid_stargan.reid.trainer import train_reid

        return train_reid(self.reid_config(mode, seed), self.layout.reid(mode, seed),
                          camstyle=str(camstyle) if camstyle else None, resume=True, progress=self.progress)

    def face_setting(self) -> dict:
        face = self.cfg.face
        from reid_stargan.data.face_fixtures import write_celeba_fixture
        from reid_stargan.gan.trainer import train_stargan

        root = self.layout.face_fixture
        if not (root / "list_attr_celeba.txt").is_file():
            write_celeba_fixture(root, num_images=face.fixture_images, size=face.fixture_size, seed=0)
        cfg = self.face_config()
        run = self.layout.face
        train_stargan(cfg, run, resume=True, progress=self.progress)
        return {"config": config_to_dict(cfg), "summary": json.loads((run / "summary.json").read_text())}

    # ------------------------------------------------------------------ the whole job
    def run(self) -> dict:
        # Checked before anything is run or written: config.yaml and the stage records stay true.
        self._legacy_check()
        self.plan = self.stage_plan()
        self.check_devices()
        self.check_stage_records(self.plan)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.layout.file("config.yaml"), dump_config_yaml(self.cfg))
        results: dict[str, object] = {}
        for stage in self.table:
            results[stage.name] = self._stage(stage.name, lambda st=stage: st.run(results))
        return results["report"]

    def _report(self, results: dict) -> dict:
        from reid_stargan.pipeline.report import write_report

        c = self.cfg
        runs = {mode: [results[f"reid-{mode}-s{seed}"] for seed in c.seeds] for mode in ("baseline", "camstyle")}
        inputs = ReportInputs(self.layout, c.name, c.data.name, c.data.root, self.num_cameras, c.synthetic.enabled,
                              list(c.seeds), c.quality.grid_rows, self.timings)
        return write_report(inputs, runs, results.get("face"), results.get("quality"))

    def quality(self, generator: Path, camstyle: Path) -> dict:
        path = self.layout.file("quality.json")
        if path.is_file():
            return json.loads(path.read_text())
        from reid_stargan.pipeline.measure import measure_quality

        result = measure_quality(self.cfg.data, self.cfg.quality, self.cfg.synthetic.enabled, generator, camstyle,
                                 self.layout.reid("baseline", self.cfg.seeds[0]) / "checkpoints" / "model.pt")
        atomic_write_json(path, result)
        return result

