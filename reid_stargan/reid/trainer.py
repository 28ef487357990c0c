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
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist

from reid_stargan.config import config_to_dict, dump_config_yaml, from_dict
from reid_stargan.data.records import Record
from reid_stargan.reid import checkpoint as ckpt
from reid_stargan.reid.camstyle_set import check_camstyle_complete, load_camstyle, target_versions
from reid_stargan.reid.config import ReidConfig
from reid_stargan.reid.data import check_records, drop_unreadable, make_train_loader
from reid_stargan.reid.modes import BaselineMode, CamStyleMode, HHLMode
from reid_stargan.reid.samplers import CamStyleBatchBuilder, HHLBatchBuilder, PKBatchBuilder, describe_batch
from reid_stargan.utils.distributed import DistInfo, barrier, bf16_supported, init_distributed
from reid_stargan.utils.io import atomic_write_json, atomic_write_text
from reid_stargan.utils.rundir import RunLogger, claim_run_dir, drop_stats_after, remove_stale_temporaries
from reid_stargan.utils.seed import capture_rng_state, draw_seed, restore_rng_state, seed_everything

METRICS = "metrics.json"
TOOL = "train_reid"


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
    # Every trainable layer goes to the optimizer (the HHL reference code leaves three out by mistake).
    # The layers on top of the backbone (embedding, neck, classifier) start from scratch and may take
    # a larger lr (CamStyle: 10x), which short fine-tuning runs need for the identity loss to converge.
    backbone = {id(p) for p in model.backbone.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) in backbone]
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in backbone]
    groups = [{"params": body, "lr": cfg.optim.lr}, {"params": head, "lr": cfg.optim.lr * cfg.optim.head_lr_mult}]
    opt = torch.optim.Adam([g for g in groups if g["params"]], lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    o = cfg.optim
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: lr_factor(e, o.warmup_epochs, o.warmup_factor, list(o.milestones), o.gamma))
    return opt, sched


# ----------------------------------------------------------------------------- data + mode
class _Setup:
    """Everything built from the config before the loop: data, mode, evaluation split."""

    def __init__(self, cfg: ReidConfig, info: DistInfo, seed: int, log: RunLogger):
        mode = cfg.train.mode
        self.skipped: dict[str, int] = {}
        source = cfg.data.build()
        self.num_cameras = source.num_cameras
        self.unparsed_names = {split: len(names) for split, names in source.skipped.items()}
        if (note := source.skipped_note()) is not None:
            log.info(note)
        train = self._readable(source.train, cfg.data.verify_images, "train", log)
        check_records(train, f"{source.name} train")
        label_of = {pid: i for i, pid in enumerate(sorted({r.pid for r in train}))}
        self.num_classes = len(label_of)
        self.num_train_images = len(train)
        P, K = cfg.sampler.num_ids, cfg.sampler.num_instances
        self.eval_set = source
        if mode == "baseline":
            builder = PKBatchBuilder(train, label_of, P, K, seed, info.rank)
            self.mode = BaselineMode(builder, cfg.loss, self.num_classes)
        elif mode == "camstyle":
            location = cfg.camstyle.root
            if not location:
                raise ValueError("train.mode=camstyle needs CamStyle images: --camstyle DIR or camstyle.root")
            self.camstyle_complete = check_camstyle_complete(location, cfg.camstyle.allow_incomplete, log)
            generated = load_camstyle(location, train, source.num_cameras, source.name)
            generated = self._readable(generated, cfg.data.verify_images, "camstyle", log)
            check_records(generated, f"CamStyle set {location}")
            self.camstyle_location = str(location)
            self.camstyle_images = len(generated)
            builder = CamStyleBatchBuilder(train, generated, label_of, P, K, cfg.camstyle.share, seed, info.rank,
                                           same_ids=cfg.camstyle.same_ids)
            self.mode = CamStyleMode(builder, cfg.loss, self.num_classes, cfg.camstyle.lsr_epsilon,
                                     cfg.camstyle.triplet, cfg.camstyle.loss_form, cfg.camstyle.generated_weight)
        elif mode == "hhl":
            target = cfg.hhl.target.build()
            if target.skipped:
                self.unparsed_names.update({f"target {k}": len(v) for k, v in target.skipped.items()})
                log.info(target.skipped_note())
            location = cfg.hhl.camstyle_root
            if not location:
                raise ValueError("train.mode=hhl needs the target set's CamStyle images: --camstyle DIR or "
                                 "hhl.camstyle_root")
            target_train = self._readable(target.train, cfg.hhl.target.verify_images, "target train", log)
            self.camstyle_complete = check_camstyle_complete(location, cfg.camstyle.allow_incomplete, log)
            versions = target_versions(location, target_train, target.num_cameras, target.name)
            if cfg.hhl.target.verify_images:
                flat = [Record(p, -1, -1) for vs in versions.values() for p in vs]
                ok = {r.path for r in self._readable(flat, True, "target camstyle", log)}
                versions = {t: [p for p in vs if p in ok] for t, vs in versions.items()}
            self.camstyle_location = str(location)
            self.camstyle_images = sum(len(vs) for vs in versions.values())
            builder = HHLBatchBuilder(train, label_of, versions, P, K, cfg.hhl.num_target, cfg.hhl.num_views,
                                      seed, info.rank)
            self.mode = HHLMode(builder, cfg.loss, self.num_classes, cfg.hhl.triplet_weight)
            self.eval_set = target  # cross-domain: tested on the target set
        else:  # the config's Literal already refuses this; kept for callers that bypass it
            raise ValueError(f"unknown train.mode {mode!r}; valid: baseline, camstyle, hhl")
        if builder.replacement_note:
            log.info(builder.replacement_note)
        self.builder = builder
        self.iters_per_epoch = cfg.optim.iters_per_epoch or math.ceil(len(train) / (P * K))

    def _readable(self, records, verify: bool, what: str, log: RunLogger):
        if not verify:
            return list(records)
        kept, bad = drop_unreadable(list(records), log.info, what)
        self.skipped[what] = self.skipped.get(what, 0) + bad
        return kept


# ----------------------------------------------------------------------------- evaluation
def evaluate_model(model: torch.nn.Module, dataset, cfg: ReidConfig, device: torch.device,
                   progress: bool = False) -> dict:
    """mAP / CMC of `model` on `dataset.query` vs `dataset.gallery` through reid_stargan.eval."""
    from reid_stargan.eval.evaluator import evaluate
    from reid_stargan.eval.features import extract_features

    was_training = model.training
    model.eval()
    kw = dict(image_size=(cfg.input.height, cfg.input.width), batch_size=cfg.eval.batch_size, flip=cfg.eval.flip,
              device=str(device), num_workers=min(cfg.train.num_workers, 4), progress=progress)
    qf, qp, qc = extract_features(model, dataset.query, **kw)
    gf, gp, gc = extract_features(model, dataset.gallery, **kw)
    metrics = evaluate(qf, gf, qp, gp, qc, gc, metric=cfg.eval.metric, rerank=cfg.eval.rerank)
    model.train(was_training)
    return dict(metrics)


# ----------------------------------------------------------------------------- the loop
def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def _resolve_seed(cfg: ReidConfig, info: DistInfo) -> int:
    seed = cfg.train.seed if cfg.train.seed is not None else draw_seed()
    if info.distributed:  # every rank must agree on the drawn seed
        box = [seed]
        dist.broadcast_object_list(box, src=0)
        seed = box[0]
    return seed


def _schedule(cfg: ReidConfig, setup: _Setup, seed: int, world_size: int) -> dict:
    batch = describe_batch(setup.builder.epoch_batches(0, 1)[0])
    return {
        "mode": cfg.train.mode,
        "epochs": cfg.optim.epochs,
        "iters_per_epoch": setup.iters_per_epoch,
        "total_iterations": cfg.optim.epochs * setup.iters_per_epoch,
        "seed": seed,
        "world_size": world_size,
        "ids_per_batch": cfg.sampler.num_ids,
        "instances_per_id": cfg.sampler.num_instances,
        "real_per_batch": batch["real"],
        "generated_per_batch": batch["generated"],
        "target_per_batch": batch["target"],
        "batch_size": batch["size"],
        "image_size": [cfg.input.height, cfg.input.width],
    }


def _check_replicas_in_sync(model: torch.nn.Module, info: DistInfo) -> None:
    """DDP invariant: every rank ends with the same weights (a cheap all-gathered checksum)."""
    if not info.distributed:
        return
    total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    gathered = [torch.zeros_like(total) for _ in range(info.world_size)]
    dist.all_gather(gathered, total)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"DDP replicas diverged: parameter checksums {[float(g) for g in gathered]}")


def train_reid(cfg: ReidConfig, run_dir: str | Path, camstyle: str | None = None, resume: bool = True,
               progress: bool = True, stop_after_epochs: int | None = None) -> dict:
    """Train the re-ID model of `cfg` into `run_dir`; return (and write) the final metrics.

    `camstyle`: a CamStyle folder or manifest (overrides camstyle.root / hhl.camstyle_root).
    A run folder that already has metrics.json returns them at once; one with checkpoints/last.pt
    resumes from it (with `resume`). `stop_after_epochs` ends the call early after that many epochs
    in all (an interruption on purpose, e.g. for a time budget); the next call resumes. Returns {} then.
    """
    run_dir = Path(run_dir)
    # Another tool's folder, or the user's own files, are refused before anything is read or written.
    claim_run_dir(run_dir, TOOL, write=False)
    if resume and (run_dir / METRICS).is_file():
        return json.loads((run_dir / METRICS).read_text())
    info = init_distributed(cfg.train.device)
    if info.is_main:
        claim_run_dir(run_dir, TOOL)
        remove_stale_temporaries(run_dir)  # a killed writer's *.tmp-* files; this process owns the folder
    last_path = run_dir / "checkpoints" / ckpt.LAST
    state = ckpt.load_training_state(last_path) if resume and last_path.is_file() else None
    if state is not None:
        cfg = from_dict(ReidConfig, state["config"])  # the run continues with the config it started with
    if cfg.train.threads > 0 and info.device.type == "cpu":
        torch.set_num_threads(cfg.train.threads)
    log = RunLogger(run_dir, enabled=info.is_main, echo=progress and info.is_main)
    seed = _resolve_seed(cfg, info)
    # Seed and CamStyle location are written back, so config.yaml (and a resume) says what ran.
    resolved = config_to_dict(cfg)
    resolved["train"]["seed"] = seed
    if camstyle:
        section, key = ("hhl", "camstyle_root") if cfg.train.mode == "hhl" else ("camstyle", "root")
        resolved[section][key] = str(camstyle)
    cfg = from_dict(ReidConfig, resolved)
    if info.is_main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", dump_config_yaml(cfg))
    seed_everything(seed + info.rank)

    setup = _Setup(cfg, info, seed, log)
    schedule = _schedule(cfg, setup, seed, info.world_size)
    log.info(f"{cfg.train.mode} on {setup.eval_set.name}: {setup.num_classes} training ids, "
             f"{setup.num_train_images} images; batch per rank {schedule['batch_size']} "
             f"({schedule['real_per_batch']} real = {cfg.sampler.num_ids} x {cfg.sampler.num_instances}, "
             f"{schedule['generated_per_batch']} generated, {schedule['target_per_batch']} target); "
             f"{schedule['epochs']} epochs x {schedule['iters_per_epoch']} iterations; seed {seed}; "
             f"world size {info.world_size}; device {info.device}")

    device = info.device
    on_cuda = device.type == "cuda"
    # fp16 + loss scaling on CUDA; bf16 (no scaling needed) on CPUs with bf16 kernels.
    use_amp = cfg.train.amp and (on_cuda or bf16_supported(device))
    model = ckpt.model_from_config(cfg, setup.num_classes if cfg.loss.id_weight > 0 else 0).to(device)
    if on_cuda and cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and on_cuda)
    start_epoch, start_iter = 0, 0
    if state is not None:
        _check_resume_fits(state, setup, last_path)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:  # e.g. a classifier for another number of identities
            raise ResumeMismatchError(f"{last_path}: the saved model does not fit this run's model "
                                      f"({str(exc).splitlines()[-1].strip()})") from exc
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, start_iter = state["epoch"], state["iteration"]
        restore_rng_state(state["rng"][info.rank] if info.rank < len(state["rng"]) else state["rng"][0])
        if info.is_main:  # records past the resumed step would otherwise appear twice
            done_steps = start_epoch * setup.iters_per_epoch + start_iter
            drop_stats_after(run_dir, lambda r: r["step"] <= done_steps if "step" in r
                             else r.get("epoch", -1) < start_epoch)
        log.info(f"resumed from {last_path} at epoch {start_epoch} iteration {start_iter}")
    last_good = f"{last_path} (epoch {start_epoch})" if state is not None else "none yet"
    train_model = model
    if info.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)

    writer = _tensorboard(run_dir, cfg, info, log)
    epochs, iters = cfg.optim.epochs, setup.iters_per_epoch
    stop_epoch = epochs if stop_after_epochs is None else min(epochs, stop_after_epochs)
    amp_dtype = torch.float16 if on_cuda else torch.bfloat16
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if use_amp else nullcontext
    train_model.train()
    for epoch in range(start_epoch, stop_epoch):
        batches = setup.mode.build_batches(epoch, iters)[start_iter:]
        loader = make_train_loader(batches, cfg.input, cfg.train.num_workers, pin_memory=on_cuda)
        bar = _progress(loader, progress and info.is_main, f"epoch {epoch + 1}/{epochs}", initial=start_iter, total=iters)
        sums: dict[str, float] = {}
        seen, t0 = 0, time.perf_counter()
        for it, (images, labels, generated, labelled) in enumerate(bar, start=start_iter):
            images = images.to(device, non_blocking=True)  # (B, 3, H, W)
            if on_cuda and cfg.train.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels, generated, labelled = labels.to(device), generated.to(device), labelled.to(device)
            with autocast():
                feats, logits = train_model(images)  # (B, D), (B, N)
            losses = setup.mode.compute_loss(feats.float(), None if logits is None else logits.float(),
                                             labels, generated, labelled)
            if not math.isfinite(float(losses["loss"].detach())):  # before the update: weights stay good
                terms = ", ".join(f"{k}={float(v.detach())}" for k, v in losses.items())
                raise NonFiniteLossError(
                    f"non-finite loss at epoch {epoch + 1} iteration {it + 1} (step {epoch * iters + it + 1}; "
                    f"{terms}); stopped before the update, nothing overwritten. Last good checkpoint: {last_good}. "
                    f"Lower optim.lr or check the data, then resume from the last good checkpoint or start anew")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            seen += len(images)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            step = epoch * iters + it + 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{float(losses['loss'].detach()):.3f}")
            if cfg.train.log_every and step % cfg.train.log_every == 0:
                record = {"epoch": epoch, "iter": it, "step": step, "lr": optimizer.param_groups[0]["lr"],
                          **{k: round(float(v.detach()), 5) for k, v in losses.items()}}
                log.stats(record)
                if writer is not None:
                    for k, v in losses.items():
                        writer.add_scalar(f"train/{k}", float(v.detach()), step)
        done = len(batches)
        elapsed = time.perf_counter() - t0
        scheduler.step()
        start_iter = 0
        summary = {k: round(v / max(done, 1), 4) for k, v in sums.items()}
        log.info(f"epoch {epoch + 1}/{epochs}: " + " ".join(f"{k} {v}" for k, v in summary.items())
                 + f" lr {optimizer.param_groups[0]['lr']:.2e} {seen * info.world_size / max(elapsed, 1e-9):.0f} img/s")
        log.stats({"epoch": epoch, "epoch_end": True, "images_per_s": seen * info.world_size / max(elapsed, 1e-9),
                   **{f"mean_{k}": v for k, v in summary.items()}})
        last = epoch + 1 == epochs
        if info.is_main and (last or epoch + 1 == stop_epoch or (epoch + 1) % max(cfg.train.checkpoint_every, 1) == 0):
            ckpt.save_training_state(last_path, {
                "config": config_to_dict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch + 1,
                "iteration": 0, "sampler": setup.builder.state_dict(), "rng": [capture_rng_state()],
                "schedule": schedule, "num_classes": setup.num_classes, "num_cameras": setup.num_cameras,
            })
            last_good = f"{last_path} (epoch {epoch + 1})"
        if cfg.eval.every and (epoch + 1) % cfg.eval.every == 0 and not last and info.is_main:
            m = evaluate_model(model, setup.eval_set, cfg, device)
            log.info(f"epoch {epoch + 1} (monitoring only): mAP {m['mAP']:.2f} rank-1 {m['rank1']:.2f}")
            log.stats({"epoch": epoch, "eval": {k: m[k] for k in ("mAP", "rank1", "rank5", "mINP")}})
        barrier()

    _check_replicas_in_sync(model, info)
    if stop_epoch < epochs:
        return {}
    metrics: dict = {}
    if info.is_main:
        ckpt.save_inference_model(run_dir / "checkpoints" / ckpt.MODEL, model, cfg, setup.num_classes
                                  if cfg.loss.id_weight > 0 else 0)
        metrics = evaluate_model(model, setup.eval_set, cfg, device, progress)
        metrics = {**metrics, "schedule": schedule, "dataset": setup.eval_set.name,
                   "skipped_images": setup.skipped, "unparsed_names": setup.unparsed_names}
        if getattr(setup, "camstyle_location", None):
            metrics["camstyle"] = setup.camstyle_location
            metrics["camstyle_images"] = setup.camstyle_images  # generated images trained on
            metrics["camstyle_complete"] = setup.camstyle_complete  # None: could not be judged
        atomic_write_json(run_dir / METRICS, metrics)
        log.info(f"final (last epoch): mAP {metrics['mAP']:.2f} rank-1 {metrics['rank1']:.2f} "
                 f"rank-5 {metrics['rank5']:.2f} rank-10 {metrics['rank10']:.2f} mINP {metrics['mINP']:.2f}")
        if writer is not None:
            for k in ("mAP", "rank1", "rank5", "rank10", "mINP"):
                writer.add_scalar(f"test/{k}", metrics[k], epochs * iters)
            writer.close()
    barrier()
    if info.distributed and not info.is_main:
        metrics = json.loads((run_dir / METRICS).read_text())
    return metrics


def _check_resume_fits(state: dict, setup: _Setup, path: Path) -> None:
    """Refuse to resume a training state on data with other identities or cameras (names both counts)."""
    diffs = []
    for key, now in (("num_classes", setup.num_classes), ("num_cameras", setup.num_cameras)):
        if key in state and state[key] != now:
            what = "training identities" if key == "num_classes" else "cameras"
            diffs.append(f"the checkpoint was trained with {state[key]} {what}, the data now has {now}")
    if diffs:
        raise ResumeMismatchError(f"{path}: cannot resume on this data: " + "; ".join(diffs)
                                  + "; start a new run folder for the new data")


def _progress(iterable, enabled: bool, desc: str, initial: int, total: int):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, initial=initial, total=total, leave=False, dynamic_ncols=True)


def _tensorboard(run_dir: Path, cfg: ReidConfig, info: DistInfo, log: RunLogger):
    if not (cfg.train.tensorboard and info.is_main):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # optional: the JSONL log has the same numbers
        log.info(f"TensorBoard unavailable ({exc}); logging to stats.jsonl only")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
