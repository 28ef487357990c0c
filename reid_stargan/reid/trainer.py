"""One training loop for the baseline, CamStyle and HHL modes (they differ in batch and loss only).

    cfg = load_config(ReidConfig, "configs/reid/synthetic_cpu_camstyle.yaml")
    metrics = train_reid(cfg, "runs/my-run", camstyle="data/synthetic_oracle")

The run folder gets `config.yaml` (resolved, seed written back), `log.txt`, `stats.jsonl`,
`checkpoints/last.pt` (resume state), `checkpoints/model.pt` (final weights) and `metrics.json`.
The reported model is the last epoch's; evaluations along the way are logged, never used to pick.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from reid_stargan.config import config_to_dict, dump_config_yaml, from_dict
from reid_stargan.data.preprocess import drop_unreadable
from reid_stargan.reid import checkpoint as ckpt
from reid_stargan.reid.config import ReidConfig
from reid_stargan.reid.data import check_records, make_train_loader
from reid_stargan.reid.modes import MODES, ModeInputs
from reid_stargan.reid.samplers import describe_batch
from reid_stargan.utils import run as lifecycle
from reid_stargan.utils.distributed import DistInfo, barrier
from reid_stargan.utils.io import atomic_torch_save, atomic_write_json, atomic_write_text, torch_load
from reid_stargan.utils.rundir import RunLogger, drop_stats_after
from reid_stargan.utils.seed import capture_rng_state, restore_rng_state, seed_everything

METRICS = "metrics.json"
TOOL = "train_reid"
# Config keys that must not change when a run is resumed: they define the model, the images it sees
# and the batches (a function of seed, epoch and these). Epochs, lr, loss weights may change.
FROZEN_KEYS = ("data.name", "model", "input", "sampler", "train.mode", "train.seed", "optim.iters_per_epoch",
               "camstyle.share", "camstyle.same_ids", "camstyle.own_camera", "camstyle.separate_forward",
               "hhl.num_target", "hhl.num_views", "hhl.ce_batch", "hhl.separate_forward")


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; raised before the update, so no checkpoint holds the bad weights."""


class ResumeMismatchError(ValueError):
    """A run folder's saved state does not fit the data it would resume on (names both sides)."""


# ----------------------------------------------------------------------------- schedule
def lr_factor(epoch: int, warmup_epochs: int, warmup_factor: float, milestones: list[int], gamma: float) -> float:
    """Linear warm-up from `warmup_factor` to 1 over `warmup_epochs`, then x gamma at each milestone."""
    if epoch < warmup_epochs:
        alpha = epoch / warmup_epochs
        return warmup_factor * (1 - alpha) + alpha
    return gamma ** sum(epoch >= m for m in milestones)


def make_optimizer(model: torch.nn.Module, cfg: ReidConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    # Every trainable layer goes to the optimizer (the HHL reference code leaves three out by mistake:
    # the IDE FC, its BN and the triplet head are in neither of its groups, so they never train).
    # The layers on top of the backbone (embedding, neck, triplet head, classifier) start from scratch
    # and may take a larger lr (CamStyle / HHL: 10x), which short fine-tuning runs need as well.
    backbone = {id(p) for p in model.backbone.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) in backbone]
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in backbone]
    o = cfg.optim
    groups = [g for g in ({"params": body, "lr": o.lr}, {"params": head, "lr": o.lr * o.head_lr_mult}) if g["params"]]
    if o.name == "sgd":  # CamStyle / HHL: SGD, momentum 0.9, Nesterov, weight decay on every parameter
        opt = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    else:
        opt = torch.optim.Adam(groups, lr=o.lr, weight_decay=o.weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: lr_factor(e, o.warmup_epochs, o.warmup_factor, list(o.milestones), o.gamma))


# ----------------------------------------------------------------------------- data + mode
class _Setup:
    """Everything built from the config before the loop: the source set, its readable images, the mode."""

    def __init__(self, cfg: ReidConfig, info: DistInfo, log: RunLogger):
        self.skipped: dict[str, int] = {}
        self.log = log
        source = cfg.data.build()
        self.num_cameras = source.num_cameras
        self.unparsed_names = {split: len(names) for split, names in source.skipped.items()}
        if (note := source.skipped_note()) is not None:
            log.info(note)
        train = self._readable(source.train, cfg.data.verify_images, "train")
        check_records(train, f"{source.name} train")
        label_of = {pid: i for i, pid in enumerate(sorted({r.pid for r in train}))}
        self.num_classes, self.num_train_images = len(label_of), len(train)
        self.classifier_size = self.num_classes if cfg.loss.id_weight > 0 else 0  # 0: no classifier
        self.mode = MODES.get(cfg.train.mode).build(ModeInputs(cfg, source, train, label_of, info.rank, log,
                                                               self._readable, self.unparsed_names))
        self.eval_set = self.mode.eval_set
        if self.mode.builder.replacement_note:
            log.info(self.mode.builder.replacement_note)
        P, K = cfg.sampler.num_ids, cfg.sampler.num_instances
        self.iters_per_epoch = cfg.optim.iters_per_epoch or math.ceil(len(train) / (P * K))

    def _readable(self, records, verify: bool, what: str):
        if not verify:
            return list(records)
        kept, bad = drop_unreadable(list(records), self.log.info, what)
        self.skipped[what] = self.skipped.get(what, 0) + bad
        return kept

    def schedule(self, cfg: ReidConfig, world_size: int) -> dict:
        """The run's schedule and batch composition (metrics.json, and the pipeline's same-schedule check)."""
        batch = describe_batch(self.mode.builder.epoch_batches(0, 1)[0])
        return {
            "mode": cfg.train.mode, "epochs": cfg.optim.epochs, "iters_per_epoch": self.iters_per_epoch,
            "total_iterations": cfg.optim.epochs * self.iters_per_epoch, "seed": cfg.train.seed, "world_size": world_size,
            "ids_per_batch": cfg.sampler.num_ids, "instances_per_id": cfg.sampler.num_instances,
            "real_per_batch": batch["real"], "generated_per_batch": batch["generated"],
            "target_per_batch": batch["target"], "batch_size": batch["size"],
            "image_size": [cfg.input.height, cfg.input.width],
        }

    def describe(self, cfg: ReidConfig, schedule: dict, info: DistInfo) -> str:
        return (f"{cfg.train.mode} on {self.eval_set.name}: {self.num_classes} training ids, "
                f"{self.num_train_images} images; batch per rank {schedule['batch_size']} "
                f"({schedule['real_per_batch']} real = {cfg.sampler.num_ids} x {cfg.sampler.num_instances}, "
                f"{schedule['generated_per_batch']} generated, {schedule['target_per_batch']} target); "
                f"{schedule['epochs']} epochs x {schedule['iters_per_epoch']} iterations; seed {schedule['seed']}; "
                f"world size {info.world_size}; device {info.device}")


# ----------------------------------------------------------------------------- evaluation
def evaluate(model: torch.nn.Module, dataset, cfg: ReidConfig, device: torch.device, progress: bool = False) -> dict:
    """mAP / CMC of `model` on `dataset.query` vs `dataset.gallery` through reid_stargan.eval."""
    from reid_stargan.eval.evaluator import evaluate as evaluate_features
    from reid_stargan.eval.features import extract_features

    kw = dict(image_size=(cfg.input.height, cfg.input.width), batch_size=cfg.eval.batch_size, flip=cfg.eval.flip,
              device=str(device), num_workers=min(cfg.train.num_workers, 4), progress=progress)
    qf, qp, qc = extract_features(model, dataset.query, **kw)
    gf, gp, gc = extract_features(model, dataset.gallery, **kw)  # both calls restore the model's mode
    return evaluate_features(qf, gf, qp, gp, qc, gc, metric=cfg.eval.metric, rerank=cfg.eval.rerank)


# ----------------------------------------------------------------------------- one epoch
@dataclass
class _Training:
    """The model and what updates it; `net` is the DDP wrapper on several ranks, else the model."""

    model: torch.nn.Module
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    device: torch.device


def _build_training(cfg: ReidConfig, setup: _Setup, info: DistInfo) -> _Training:
    device = info.device
    # fp16 + loss scaling on CUDA; bf16 (no scaling needed) on CPUs with bf16 kernels.
    dtype = lifecycle.amp_dtype(device, cfg.train.amp, torch.float16)
    model = ckpt.model_from_config(cfg, setup.classifier_size).to(device)
    model = lifecycle.channels_last(model, device, cfg.train.channels_last)
    optimizer, scheduler = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype is not None and device.type == "cuda")
    net = model
    if info.distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return _Training(model, net, optimizer, scheduler, scaler, dtype, device)


def train_one_epoch(t: _Training, mode, cfg: ReidConfig, epoch: int, iters: int, bar, log: RunLogger, writer,
                    last_good: str) -> tuple[dict, float]:
    """One epoch of `iters` updates; -> (mean of each loss term, images per second on this rank)."""
    loader = make_train_loader(mode.build_batches(epoch, iters), cfg.input, cfg.train.num_workers,
                               pin_memory=t.device.type == "cuda")
    sums: dict[str, float] = {}
    seen, t0 = 0, time.perf_counter()
    t.net.train()
    for it, (images, labels, generated, labelled) in enumerate(loader):
        images = images.to(t.device, non_blocking=True)  # (B, 3, H, W)
        images = lifecycle.channels_last(images, t.device, cfg.train.channels_last)
        labels, generated, labelled = labels.to(t.device), generated.to(t.device), labelled.to(t.device)
        with lifecycle.autocast(t.device, t.amp_dtype):
            # `chunks` (HHL, CamStyle's real / generated): sub-batches run apart inside this one call, so
            # their BatchNorm statistics stay apart and DDP still sees one forward (ReidModel.forward).
            feats, logits = t.net(images, chunks=mode.chunks)  # (B, D), (B, N)
        losses = mode.compute_loss(feats.float(), None if logits is None else logits.float(), labels, generated, labelled)
        step = epoch * iters + it + 1
        _check_finite(losses, epoch, it, step, last_good)  # before the update: the weights stay good
        t.optimizer.zero_grad(set_to_none=True)
        t.scaler.scale(losses["loss"]).backward()
        t.scaler.step(t.optimizer)
        t.scaler.update()
        seen += len(images)
        values = {k: float(v.detach()) for k, v in losses.items()}
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix(loss=f"{values['loss']:.3f}")
        bar.update(1)
        if cfg.train.log_every and step % cfg.train.log_every == 0:
            lr = t.optimizer.param_groups[0]["lr"]
            log.stats({"epoch": epoch, "iter": it, "step": step, "lr": lr, **{k: round(v, 5) for k, v in values.items()}})
            if writer is not None:
                for k, v in {**values, "lr": lr}.items():
                    writer.add_scalar(f"train/{k}", v, step)
    t.scheduler.step()
    return {k: round(v / iters, 4) for k, v in sums.items()}, seen / max(time.perf_counter() - t0, 1e-9)


def _check_finite(losses: dict, epoch: int, it: int, step: int, last_good: str) -> None:
    if math.isfinite(float(losses["loss"].detach())):
        return
    terms = ", ".join(f"{k}={float(v.detach())}" for k, v in losses.items())
    raise NonFiniteLossError(
        f"non-finite loss at epoch {epoch + 1} iteration {it + 1} (step {step}; {terms}); stopped before the "
        f"update, nothing overwritten. Last good checkpoint: {last_good}. Lower optim.lr or check the data, "
        f"then resume from the last good checkpoint or start anew")


# ----------------------------------------------------------------------------- checkpoints
def _save_state(path: Path, t: _Training, cfg: ReidConfig, epoch: int, schedule: dict, setup: _Setup,
                info: DistInfo) -> None:
    """Epoch-level training state: resuming replays from the start of epoch `epoch` (batches are a
    function of seed and epoch), with every rank's RNG state."""
    rng = [capture_rng_state()]
    if info.distributed:
        rng = [None] * info.world_size
        dist.all_gather_object(rng, capture_rng_state())
    if info.is_main:
        atomic_torch_save({
            "config": config_to_dict(cfg), "model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
            "scheduler": t.scheduler.state_dict(), "scaler": t.scaler.state_dict(), "epoch": epoch, "rng": rng,
            "schedule": schedule, "num_classes": setup.num_classes, "num_cameras": setup.num_cameras}, path)


def _restore_state(state: dict, t: _Training, setup: _Setup, path: Path, info: DistInfo) -> int:
    """Load a training state into `t`; -> the epoch to start at."""
    _check_resume_fits(state, setup, path)
    try:
        t.model.load_state_dict(state["model"])
    except RuntimeError as exc:  # e.g. a classifier for another number of identities
        raise ResumeMismatchError(f"{path}: the saved model does not fit this run's model "
                                  f"({str(exc).splitlines()[-1].strip()})") from exc
    t.optimizer.load_state_dict(state["optimizer"])
    t.scheduler.load_state_dict(state["scheduler"])
    t.scaler.load_state_dict(state["scaler"])
    rng = state["rng"]
    restore_rng_state(rng[info.rank] if info.rank < len(rng) else rng[0])
    return int(state["epoch"])


def _check_resume_fits(state: dict, setup: _Setup, path: Path) -> None:
    """Refuse to resume a training state on data with other identities or cameras (names both counts)."""
    diffs = [f"the checkpoint was trained with {state[key]} {what}, the data now has {now}"
             for key, what, now in (("num_classes", "training identities", setup.num_classes),
                                    ("num_cameras", "cameras", setup.num_cameras))
             if key in state and state[key] != now]
    if diffs:
        raise ResumeMismatchError(f"{path}: cannot resume on this data: " + "; ".join(diffs)
                                  + "; start a new run folder for the new data")


# ----------------------------------------------------------------------------- the run
def _resolve_config(cfg: ReidConfig, run_dir: Path, camstyle: str | None, resume: bool, overrides,
                    info: DistInfo) -> tuple[ReidConfig, dict | None, dict, list[str]]:
    """The config the run trains on (a resumed run's saved one + `overrides`), with the seed and the
    CamStyle location written in; -> (cfg, saved state or None, changes, ignored caller keys)."""
    last_path = run_dir / "checkpoints" / ckpt.LAST
    state, changes, ignored = None, {}, []
    if resume and last_path.is_file():
        state = torch_load(last_path)
        given = cfg
        cfg, changes = lifecycle.resume_config(ReidConfig, state["config"], given, FROZEN_KEYS, last_path,
                                               overrides, error=ResumeMismatchError)
        ignored = [k for k in lifecycle.ignored_differences(cfg, given) if not k.startswith(("camstyle.root",
                                                                                           "hhl.camstyle_root"))]
    resolved = config_to_dict(cfg)
    resolved["train"]["seed"] = lifecycle.resolve_seed(cfg.train.seed, info)
    # Absolute data folders: model.pt then finds its test split from any working directory.
    for section in (resolved["data"], resolved["hhl"]["target"]):
        if section.get("root"):
            section["root"] = str(Path(section["root"]).absolute())
    if camstyle:
        section, key = ("hhl", "camstyle_root") if cfg.train.mode == "hhl" else ("camstyle", "root")
        resolved[section][key] = str(camstyle)
    return from_dict(ReidConfig, resolved), state, changes, ignored


def train_reid(cfg: ReidConfig, run_dir: str | Path, camstyle: str | None = None, resume: bool = True,
               progress: bool = True, stop_after_epochs: int | None = None, overrides=()) -> dict:
    """Train the re-ID model of `cfg` into `run_dir`; return (and write) the final metrics.

    `camstyle`: a CamStyle folder or manifest (overrides camstyle.root / hhl.camstyle_root).
    A run folder that already has metrics.json returns them at once; one with checkpoints/last.pt
    resumes from it (with `resume`) on its saved config plus `overrides` (dotted `key=value`; see
    `reid_stargan.utils.run`). `stop_after_epochs` ends the call early after that many epochs in
    all (an interruption on purpose, e.g. for a time budget); the next call resumes. Returns {} then.
    """
    run_dir = Path(run_dir)
    info = lifecycle.open_run(run_dir, TOOL, cfg.train.device, lambda d: resume and (d / METRICS).is_file())
    if info is None:
        return json.loads((run_dir / METRICS).read_text())
    cfg, state, changes, ignored = _resolve_config(cfg, run_dir, camstyle, resume, overrides, info)
    if cfg.train.threads > 0 and info.device.type == "cpu":
        torch.set_num_threads(cfg.train.threads)
    log = RunLogger(run_dir, enabled=info.is_main, echo=progress and info.is_main)
    if info.is_main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", dump_config_yaml(cfg))
        if state is not None:
            lifecycle.record_changes(run_dir, changes, int(state["epoch"]), log)
            if ignored:
                log.info("resume: the saved config is used; not taken from the caller's config: " + ", ".join(ignored))
    seed_everything(cfg.train.seed + info.rank)
    setup = _Setup(cfg, info, log)
    schedule = setup.schedule(cfg, info.world_size)
    log.info(setup.describe(cfg, schedule, info))
    t = _build_training(cfg, setup, info)
    log.info(f"precision: {lifecycle.precision_name(cfg.train.amp, t.amp_dtype)}")
    last_path = run_dir / "checkpoints" / ckpt.LAST
    start_epoch = 0
    if state is not None:
        start_epoch = _restore_state(state, t, setup, last_path, info)
        if info.is_main:  # records past the resumed epoch would otherwise appear twice
            done_steps = start_epoch * setup.iters_per_epoch
            drop_stats_after(run_dir, lambda r: r["step"] <= done_steps if "step" in r
                             else r.get("epoch", -1) < start_epoch)
        log.info(f"resumed from {last_path} at epoch {start_epoch}")
    stop_epoch = cfg.optim.epochs if stop_after_epochs is None else min(cfg.optim.epochs, stop_after_epochs)
    _fit(t, setup, cfg, schedule, run_dir, info, log, progress, start_epoch, stop_epoch)
    if not lifecycle.replicas_in_sync(t.model.parameters(), info):
        raise RuntimeError("DDP replicas diverged: the ranks ended with different weights")
    if stop_epoch < cfg.optim.epochs:
        return {}
    return _final_metrics(t, setup, cfg, schedule, run_dir, info, log, progress)


def _fit(t: _Training, setup: _Setup, cfg: ReidConfig, schedule: dict, run_dir: Path, info: DistInfo,
         log: RunLogger, progress: bool, start_epoch: int, stop_epoch: int) -> None:
    """Epochs `start_epoch` .. `stop_epoch` - 1, with checkpoints and the optional monitoring evaluation."""
    epochs, iters = cfg.optim.epochs, setup.iters_per_epoch
    last_path = run_dir / "checkpoints" / ckpt.LAST
    last_good = f"{last_path} (epoch {start_epoch})" if start_epoch else "none yet"
    writer = lifecycle.tensorboard_writer(run_dir, cfg.train.tensorboard and info.is_main, log)
    bar = lifecycle.progress_bar(epochs * iters, start_epoch * iters, progress and info.is_main, "re-ID")
    try:
        for epoch in range(start_epoch, stop_epoch):
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
            summary, rate = train_one_epoch(t, setup.mode, cfg, epoch, iters, bar, log, writer, last_good)
            rate *= info.world_size
            log.info(f"epoch {epoch + 1}/{epochs}: " + " ".join(f"{k} {v}" for k, v in summary.items())
                     + f" lr {t.optimizer.param_groups[0]['lr']:.2e} {rate:.0f} img/s")
            log.stats({"epoch": epoch, "epoch_end": True, "images_per_s": rate,
                       **{f"mean_{k}": v for k, v in summary.items()}})
            last = epoch + 1 == epochs
            if last or epoch + 1 == stop_epoch or (epoch + 1) % max(cfg.train.checkpoint_every, 1) == 0:
                _save_state(last_path, t, cfg, epoch + 1, schedule, setup, info)
                last_good = f"{last_path} (epoch {epoch + 1})"
            if cfg.eval.every and (epoch + 1) % cfg.eval.every == 0 and not last and info.is_main:
                m = evaluate(t.model, setup.eval_set, cfg, t.device)
                log.info(f"epoch {epoch + 1} (monitoring only): mAP {m['mAP']:.2f} rank-1 {m['rank1']:.2f}")
                log.stats({"epoch": epoch, "eval": {k: m[k] for k in ("mAP", "rank1", "rank5", "mINP")}})
                if writer is not None:
                    for k in ("mAP", "rank1"):
                        writer.add_scalar(f"monitor/{k}", m[k], (epoch + 1) * iters)
            barrier()
    finally:
        bar.close()
        if writer is not None:
            writer.close()


def _final_metrics(t: _Training, setup: _Setup, cfg: ReidConfig, schedule: dict, run_dir: Path, info: DistInfo,
                   log: RunLogger, progress: bool) -> dict:
    """model.pt and the last epoch's evaluation into metrics.json (rank 0; the others read it)."""
    if info.is_main:
        ckpt.save_inference_model(run_dir / "checkpoints" / ckpt.MODEL, t.model, cfg, setup.classifier_size)
        metrics = {**evaluate(t.model, setup.eval_set, cfg, t.device, progress), "schedule": schedule,
                   "dataset": setup.eval_set.name, "skipped_images": setup.skipped,
                   "unparsed_names": setup.unparsed_names}
        if (c := setup.mode.camstyle) is not None:
            metrics.update(camstyle=c.location, camstyle_images=c.images, camstyle_complete=c.complete)
        atomic_write_json(run_dir / METRICS, metrics)
        log.info(f"final (last epoch): mAP {metrics['mAP']:.2f} rank-1 {metrics['rank1']:.2f} "
                 f"rank-5 {metrics['rank5']:.2f} rank-10 {metrics['rank10']:.2f} mINP {metrics['mINP']:.2f}")
        writer = lifecycle.tensorboard_writer(run_dir, cfg.train.tensorboard, log)
        if writer is not None:
            for k in ("mAP", "rank1", "rank5", "rank10", "mINP"):
                writer.add_scalar(f"test/{k}", metrics[k], cfg.optim.epochs * setup.iters_per_epoch)
            writer.close()
    barrier()
    return json.loads((run_dir / METRICS).read_text())
