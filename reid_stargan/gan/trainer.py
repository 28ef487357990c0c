"""The StarGAN training loop: one loop for one data set or several (mask vector), single process or
torchrun ranks, resumable exactly.

Per iteration, for each data set in turn (as the official `train_multi` alternates CelebA and
RaFD): one discriminator update, and a generator update on every `n_critic`-th iteration. The loop
owns the learning-rate schedule, logging, sample grids, checkpoints and the final summary; the
losses are in `reid_stargan.gan.losses`.

Run folder::

    run_dir/config.yaml              resolved config (seed written back)
    run_dir/log.txt, stats.jsonl     human log, one JSON record per logged iteration
    run_dir/tb/                      TensorBoard scalars (every loss term, learning rates, D accuracy)
    run_dir/samples/NNNNNN.png       rows: a fixed input, then its translation into every domain
    run_dir/checkpoints/last.pt      full training state (G, D, optimizers, step, lrs, RNG, config)
    run_dir/checkpoints/generator.pt G-only inference file (+ discriminator.pt beside it)
    run_dir/summary.json             final D accuracy on real / translated images, steps/s

Multi-process: gradients are averaged with one all-reduce per update (as StyleGAN2-ADA does)
instead of wrapping the models in DistributedDataParallel, because D runs three times per update
and the gradient penalty needs a double backward, which DDP's gradient hooks do not support.

Example::

    from reid_stargan.config import load_config
    from reid_stargan.gan.config import StarGANConfig
    from reid_stargan.gan.trainer import train_stargan
    cfg = load_config(StarGANConfig, "configs/stargan/synthetic_cpu.yaml", ["data.root=data/synthetic"])
    generator_path = train_stargan(cfg, "runs/my-stargan")
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image

from reid_stargan.config import config_to_dict, dump_config_yaml
from reid_stargan.gan.checkpoint import CheckpointError, save_inference
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.data import BatchStream, augment_batch, build_domain_data, decode, grid_png, load_size
from reid_stargan.gan.labels import LabelLayout, linked_targets, permute_targets
from reid_stargan.gan.losses import classification_correct, d_loss, g_loss, identity_mapping_loss
from reid_stargan.gan.models import Discriminator, Generator
from reid_stargan.gan.schedule import schedule_lr
from reid_stargan.utils import run as lifecycle
from reid_stargan.utils.distributed import DistInfo
from reid_stargan.utils.io import (
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    torch_load,
)
from reid_stargan.utils.rundir import RunLogger, drop_stats_after
from reid_stargan.utils.seed import capture_rng_state, restore_rng_state, seed_everything

# Config keys that must not change when a run is resumed: they define the models and the data order.
# The loss weights (gan.lambda_*) and the learning rates may change, when the caller names them.
FROZEN_KEYS = ("gan.image_size", "gan.g_conv_dim", "gan.g_repeat_num", "gan.d_conv_dim", "gan.d_repeat_num",
               "gan.c_dim", "data.name", "train.batch_size", "train.n_critic", "train.seed", "augment")
TOOL = "train_stargan"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; the message names the step and the last good checkpoint."""


class Trainer:
    """State of one StarGAN run. `train_stargan` is the entry point; this class keeps its parts small."""

    def __init__(self, cfg: StarGANConfig, run_dir: Path, dist_info: DistInfo, progress: bool,
                 saved: dict | None = None):
        """Build data, models, optimizers and streams; `saved` is a last.pt state to continue from."""
        self.cfg, self.run_dir, self.dist, self.progress = cfg, run_dir, dist_info, progress
        self.device = dist_info.device
        self.ckpt_dir = run_dir / "checkpoints"
        self.logger = RunLogger(run_dir, enabled=dist_info.is_main, echo=progress)
        self.step = 0
        self.tb = None
        if cfg.runtime.threads > 0:
            torch.set_num_threads(cfg.runtime.threads)
        seed_everything(cfg.train.seed)  # same init on every rank (and broadcast below anyway)
        self.data = [build_domain_data(dc, self.logger.info) for dc in cfg.datasets]
        self.layout = LabelLayout([d.spec for d in self.data])
        if cfg.gan.c_dim and cfg.gan.c_dim != self.layout.d_dim:
            names = ", ".join(f"{d.spec.name}: {d.spec.num_domains}" for d in self.data)
            raise ValueError(f"config gan.c_dim={cfg.gan.c_dim} but the data has {self.layout.d_dim} domains "
                             f"({names}); set gan.c_dim=0 to take it from the data")
        g = cfg.gan
        self.G = Generator(g.g_conv_dim, self.layout.g_dim, g.g_repeat_num).to(self.device)
        self.D = Discriminator(g.image_size, g.d_conv_dim, self.layout.d_dim, g.d_repeat_num).to(self.device)
        self.G = lifecycle.channels_last(self.G, self.device, cfg.runtime.channels_last)
        self.D = lifecycle.channels_last(self.D, self.device, cfg.runtime.channels_last)
        t = cfg.train
        self.g_opt = torch.optim.Adam(self.G.parameters(), t.g_lr, (t.beta1, t.beta2))
        self.d_opt = torch.optim.Adam(self.D.parameters(), t.d_lr, (t.beta1, t.beta2))
        self.amp_dtype = lifecycle.amp_dtype(self.device, cfg.runtime.amp, torch.bfloat16)
        # torch.compile cannot differentiate twice, so the gradient penalty always uses the plain D.
        self.G_run, self.D_run = self.G, self.D
        if self.device.type == "cuda" and cfg.runtime.compile:
            self.G_run, self.D_run = torch.compile(self.G), torch.compile(self.D)

        if dist_info.world_size > 1 and t.batch_size % dist_info.world_size:
            raise ValueError(f"train.batch_size={t.batch_size} is not divisible by {dist_info.world_size} ranks")
        self.local_batch = t.batch_size // dist_info.world_size
        consumed = saved["streams"] if saved else [0] * len(self.data)
        self.load_hw = load_size(g.image_size, cfg.augment.random_crop)
        self.crops = crops = cfg.augment.center_crop or [0] * len(self.data)
        self.streams = [
            BatchStream(d, self.load_hw, self.local_batch, t.seed, index=k, rank=dist_info.rank,
                        world_size=dist_info.world_size, center_crop=crops[k], in_memory=cfg.runtime.in_memory,
                        num_workers=cfg.runtime.num_workers, consumed=consumed[k])
            for k, d in enumerate(self.data)
        ]
        # Per-rank stream for label permutations, GP mixing weights, crops and flips (saved in checkpoints).
        self.gen = torch.Generator().manual_seed(t.seed + dist_info.rank)
        if saved:
            self._restore(saved)
        elif dist_info.distributed:
            for p in [*self.G.parameters(), *self.D.parameters()]:
                dist.broadcast(p.data, src=0)
        self.fixed = [self._fixed_inputs(k) for k in range(len(self.data))]

    def _restore(self, saved: dict) -> None:
        self.G.load_state_dict(saved["G"])
        self.D.load_state_dict(saved["D"])
        self.g_opt.load_state_dict(saved["g_opt"])
        self.d_opt.load_state_dict(saved["d_opt"])
        self.step = int(saved["step"])
        states = saved["rng"]["trainer"]
        if len(states) != self.dist.world_size:
            raise CheckpointError(f"checkpoint was written by {len(states)} rank(s); resume it with the same "
                                  f"number of ranks, not {self.dist.world_size}")
        self.gen.set_state(states[self.dist.rank])
        restore_rng_state(saved["rng"]["global"])

    def _fixed_inputs(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample-grid inputs of data set k: for one-of-N domains one image per domain in turn."""
        data, rows = self.data[k], self.cfg.log.sample_rows
        order = np.random.default_rng([self.cfg.train.seed, 99, k]).permutation(len(data))
        if data.spec.label_type == "single":
            by_domain: dict[int, list[int]] = {}
            for i in order:
                by_domain.setdefault(int(data.labels[i]), []).append(int(i))
            rounds = itertools.zip_longest(*(by_domain.get(d, []) for d in range(data.spec.num_domains)))
            picked = [i for round_ in rounds for i in round_ if i is not None][:rows]
        else:
            picked = [int(i) for i in order[:rows]]
        return self._load(k, picked), data.labels[picked]

    def _load(self, k: int, indices: list[int]) -> torch.Tensor:
        """Images `indices` of data set k as G sees them at test time (centre crop, no flip)."""
        images = torch.stack([decode(self.data[k].paths[i], self.load_hw, self.crops[k]) for i in indices])
        return self._real_batch(images, train=False)

    def _real_batch(self, images: torch.Tensor, train: bool = True) -> torch.Tensor:
        """uint8 images -> G's input on the device: the training augmentation (crop, flip), or none."""
        a = self.cfg.augment
        x = augment_batch(images, self.cfg.gan.image_size, random_crop=train and a.random_crop,
                          hflip=train and a.hflip, generator=self.gen if train else torch.Generator(),
                          device=self.device)
        return lifecycle.channels_last(x, self.device, self.cfg.runtime.channels_last)

    # ------------------------------------------------------------------ one iteration
    def _autocast(self):
        return lifecycle.autocast(self.device, self.amp_dtype)

    def _step(self, opt: torch.optim.Optimizer, model: torch.nn.Module, loss: torch.Tensor) -> None:
        """One update of `model` on `loss`; over ranks its gradients are averaged with one flat all-reduce."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.dist.distributed:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.dist.world_size
            for g, part in zip(grads, flat.split([g.numel() for g in grads])):
                g.copy_(part.view_as(g))
        opt.step()

    def train_iteration(self, i: int) -> dict[str, torch.Tensor]:
        t = self.cfg.train
        lrs = {}
        for name, opt, base_lr in (("lr/g", self.g_opt, t.g_lr), ("lr/d", self.d_opt, t.d_lr)):
            lrs[name] = schedule_lr(t.lr_schedule, i, base_lr, t.num_iters, t.num_iters_decay, t.lr_update_step)
            for group in opt.param_groups:
                group["lr"] = lrs[name]
        if i < t.identity_warmup:
            terms = self.identity_iteration()
        else:
            terms = self.adversarial_iteration(g_step=(i + 1) % t.n_critic == 0)
        return terms | {name: torch.tensor(lr) for name, lr in lrs.items()}

    def adversarial_iteration(self, g_step: bool) -> dict[str, torch.Tensor]:
        """One D update on each data set in turn, each followed by a G update when `g_step`."""
        layout, lam = self.layout, self.cfg.gan
        terms: dict[str, torch.Tensor] = {}
        for k, stream in enumerate(self.streams):
            spec, sl = layout.specs[k], layout.cls_slice(k)
            prefix = f"{spec.name}/" if layout.multi else ""
            images, label_org = stream.next()
            x_real = self._real_batch(images)
            links = self.data[k].links
            if self.cfg.train.targets == "linked" and links is not None:
                label_trg = linked_targets(label_org, links, self.gen)
            else:
                label_trg = permute_targets(label_org, self.gen)
            alpha = torch.rand(x_real.shape[0], 1, 1, 1, generator=self.gen).to(self.device)
            c_org = layout.condition(k, label_org).to(self.device)
            c_trg = layout.condition(k, label_trg).to(self.device)
            label_org, label_trg = label_org.to(self.device), label_trg.to(self.device)

            # Discriminator update.
            with self._autocast():
                with torch.no_grad():
                    x_fake = self.G_run(x_real, c_trg)
                total, d_terms, logits = d_loss(
                    self.D_run, x_real, x_fake, label_org, alpha, label_type=spec.label_type, cls_slice=sl,
                    lambda_cls=lam.lambda_cls, lambda_gp=lam.lambda_gp, D_gp=self.D)
            self._step(self.d_opt, self.D, total)
            terms.update({prefix + n: v for n, v in d_terms.items()})
            terms[prefix + "D/acc_real"] = classification_correct(logits, label_org, spec.label_type).mean()

            # Generator update every n_critic-th iteration; D's weights are not differentiated here.
            if g_step:
                self.D.requires_grad_(False)
                with self._autocast():
                    total, g_terms, _ = g_loss(
                        self.G_run, self.D_run, x_real, c_org, c_trg, label_trg, label_type=spec.label_type,
                        cls_slice=sl, lambda_cls=lam.lambda_cls, lambda_rec=lam.lambda_rec,
                        lambda_id=lam.lambda_id)
                self._step(self.g_opt, self.G, total)
                self.D.requires_grad_(True)
                terms.update({prefix + n: v for n, v in g_terms.items()})
        return terms

    def identity_iteration(self) -> dict[str, torch.Tensor]:
        """One G-only update towards G(x, c_org) = x on each data set (the optional identity warm-up)."""
        layout = self.layout
        terms = {}
        for k, stream in enumerate(self.streams):
            prefix = f"{layout.specs[k].name}/" if layout.multi else ""
            images, label_org = stream.next()
            x_real = self._real_batch(images)
            c_org = layout.condition(k, label_org).to(self.device)
            with self._autocast():
                loss = identity_mapping_loss(self.G_run, x_real, c_org)
            self._step(self.g_opt, self.G, loss)
            terms[prefix + "G/loss_identity"] = loss.detach()
        return terms

    # ------------------------------------------------------------------ checkpoints, samples, logs
    def meta(self) -> dict:
        g = self.cfg.gan
        return {"c_dim": self.layout.g_dim, "d_c_dim": self.layout.d_dim, "image_size": list(g.image_size),
                "g_conv_dim": g.g_conv_dim, "g_repeat_num": g.g_repeat_num, "d_conv_dim": g.d_conv_dim,
                "d_repeat_num": g.d_repeat_num, "domain_names": self.layout.column_names(),
                "layout": self.layout.to_dict(), "step": self.step}

    def save_checkpoint(self) -> None:
        trainer_states = [self.gen.get_state()]
        if self.dist.distributed:
            trainer_states = [None] * self.dist.world_size
            dist.all_gather_object(trainer_states, self.gen.get_state())
        if not self.dist.is_main:
            return
        meta = self.meta()
        state = {"G": self.G.state_dict(), "D": self.D.state_dict(), "g_opt": self.g_opt.state_dict(),
                 "d_opt": self.d_opt.state_dict(), "step": self.step,
                 "lrs": {"g": self.g_opt.param_groups[0]["lr"], "d": self.d_opt.param_groups[0]["lr"]},
                 "rng": {"global": capture_rng_state(), "trainer": trainer_states},
                 "streams": [s.consumed for s in self.streams], "config": config_to_dict(self.cfg), "meta": meta}
        atomic_torch_save(state, self.ckpt_dir / "last.pt")
        save_inference(self.ckpt_dir / "generator.pt", self.G, "generator", meta)
        save_inference(self.ckpt_dir / "discriminator.pt", self.D, "discriminator", meta)
        every = self.cfg.log.snapshot_every
        if every and self.step % every == 0:  # kept generators: quality against iterations, model choice
            save_inference(self.ckpt_dir / f"generator_{self.step:06d}.pt", self.G, "generator", meta)

    @torch.no_grad()
    def save_samples(self) -> Path | None:
        if not self.dist.is_main:
            return None
        rows = []
        for k, (x, raw) in enumerate(self.fixed):
            columns = [x] + [self.G(x, c.to(self.device)) for c in self.layout.all_fixed_conditions(k, raw)]
            rows.append(torch.cat(columns, dim=3))
        png = grid_png([torch.cat(rows)])
        path = atomic_write_bytes(self.run_dir / "samples" / f"{self.step:06d}.png", png)
        if (writer := self._tensorboard()) is not None:  # the same grid, beside the loss curves
            grid = torch.from_numpy(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).copy())
            writer.add_image("samples", grid.permute(2, 0, 1), self.step)  # (3, H, W) uint8
        return path

    def _tensorboard(self):
        """The run's SummaryWriter (created on first use), or None when TensorBoard is off or missing."""
        if self.tb is None and self.cfg.log.tensorboard and self.dist.is_main:
            self.tb = lifecycle.tensorboard_writer(self.run_dir, True, self.logger)
        return self.tb

    def log_stats(self, terms: dict[str, torch.Tensor], rate: float) -> dict:
        record = {"step": self.step, "epoch": round(self.streams[0].epochs, 3), "it_per_s": round(rate, 3)}
        record.update({k: round(float(v), 6) for k, v in terms.items()})
        if self.dist.is_main:
            self.logger.stats(record)
            if (writer := self._tensorboard()) is not None:  # every loss term, D accuracy, lr/g and lr/d
                for k, v in record.items():
                    if k != "step":
                        writer.add_scalar(k, v, self.step)
        return record

    # ------------------------------------------------------------------ final evaluation
    @torch.no_grad()
    def evaluate(self) -> dict:
        """D's classification accuracy on real images and on G's translations into every target domain."""
        out = {}
        for k, data in enumerate(self.data):
            spec, sl = self.layout.specs[k], self.layout.cls_slice(k)
            n = min(self.cfg.log.eval_images, len(data))
            idx = np.random.default_rng([self.cfg.train.seed, 77, k]).permutation(len(data))[:n]
            real_hits, fake_hits = [], []
            for start in range(0, n, 32):
                sel = [int(i) for i in idx[start:start + 32]]
                x = self._load(k, sel)
                raw = data.labels[sel]
                _, logits = self.D(x)
                real_hits.append(classification_correct(logits[:, sl].cpu(), raw, spec.label_type))
                for t in self.layout.fixed_targets(k, raw):
                    _, logits = self.D(self.G(x, self.layout.embed(k, t).to(self.device)))
                    target = t.argmax(1) if spec.label_type == "single" else t
                    fake_hits.append(classification_correct(logits[:, sl].cpu(), target, spec.label_type))
            out[spec.name] = {"d_acc_real": round(float(torch.cat(real_hits).mean()), 4),
                              "d_acc_fake": round(float(torch.cat(fake_hits).mean()), 4),
                              "chance": round(1 / spec.num_domains, 4) if spec.label_type == "single" else 0.5,
                              "num_domains": spec.num_domains, "label_type": spec.label_type, "images": n}
        return out

    # ------------------------------------------------------------------ the loop
    def fit(self, max_steps: int | None = None) -> Path:
        """Train from `self.step` to train.num_iters (or `max_steps`); write summary.json when finished."""
        cfg = self.cfg
        num_iters = cfg.train.num_iters
        stop = min(num_iters, max_steps) if max_steps is not None else num_iters
        last = self.ckpt_dir / "last.pt"
        last_good = str(last) if self.step else "none yet"
        check_every = 1 if self.device.type == "cpu" else cfg.log.log_every
        bar = lifecycle.progress_bar(num_iters, self.step, self.progress and self.dist.is_main, "stargan")
        start_step, t0 = self.step, time.perf_counter()
        t_log, step_log = t0, self.step
        terms: dict[str, torch.Tensor] = {}
        try:
            for i in range(self.step, stop):
                new_terms = self.train_iteration(i)
                terms.update(new_terms)
                self.step = s = i + 1
                want_ckpt = s % cfg.log.checkpoint_every == 0 or s == stop
                if s % check_every == 0 or want_ckpt:
                    _check_finite(new_terms, s, last_good)
                if s % cfg.log.log_every == 0 or s == stop:
                    now = time.perf_counter()
                    record = self.log_stats(terms, (s - step_log) / max(now - t_log, 1e-9))
                    t_log, step_log = now, s
                    bar.set_postfix({k.split("/", 1)[-1]: f"{record[k]:.3f}" for k in ("D/loss", "G/loss_rec")
                                     if k in record})
                if s % cfg.log.sample_every == 0 or s == stop:
                    self.save_samples()
                if want_ckpt:
                    self.save_checkpoint()
                    last_good = str(last)
                bar.update(1)
        finally:
            bar.close()
            if self.tb is not None:
                self.tb.flush()
        seconds = time.perf_counter() - t0
        if self.step < num_iters:
            self.logger.info(f"stopped at step {self.step} of {num_iters} (max_steps); resume with the same run folder")
        else:
            self._finish(seconds, (self.step - start_step) / max(seconds, 1e-9))
        return self.ckpt_dir / "generator.pt"

    def _finish(self, seconds: float, rate: float) -> None:
        """The final evaluation into summary.json (rank 0), and the cross-rank weight check."""
        in_sync = lifecycle.replicas_in_sync([*self.G.parameters(), *self.D.parameters()], self.dist)
        gen_path = self.ckpt_dir / "generator.pt"
        if self.dist.is_main:
            per_set = self.evaluate()
            summary = {
                "finished": True, "step": self.step, "num_iters": self.cfg.train.num_iters,
                "seed": self.cfg.train.seed, "world_size": self.dist.world_size, "device": str(self.device),
                "ranks_in_sync": in_sync, "seconds_this_session": round(seconds, 2), "steps_per_s": round(rate, 4),
                **{key: round(sum(v[key] for v in per_set.values()) / len(per_set), 4)
                   for key in ("d_acc_real", "d_acc_fake")},
                "datasets": per_set, "generator": str(gen_path.relative_to(self.run_dir)),
                "c_dim": self.layout.g_dim, "image_size": list(self.cfg.gan.image_size),
                "unparsed_names": sum(d.unparsed_names for d in self.data),
            }
            atomic_write_json(self.run_dir / "summary.json", summary)
            self.logger.info(f"done: D accuracy real {summary['d_acc_real']:.3f}, translated "
                             f"{summary['d_acc_fake']:.3f}; {rate:.2f} it/s; generator {gen_path}")
        if self.dist.distributed:
            dist.barrier()
        if not in_sync:
            raise RuntimeError("ranks ended with different weights: gradient averaging is broken")

    def describe(self, resumed: bool) -> str:
        sets = ", ".join(f"{d.spec.name} ({len(d)} images, {d.spec.num_domains} {d.spec.label_type}-label domains)"
                         for d in self.data)
        h, w = self.cfg.gan.image_size
        return (f"StarGAN: {sets}; G c_dim={self.layout.g_dim}, image {h}x{w}, device {self.device}, "
                f"ranks {self.dist.world_size}, seed {self.cfg.train.seed}, "
                f"{lifecycle.precision_name(self.cfg.runtime.amp, self.amp_dtype)}"
                f"{', torch.compile' if self.G_run is not self.G else ''}, "
                f"{'resuming at step ' + str(self.step) if resumed else 'from scratch'}")


def _check_finite(terms: dict[str, torch.Tensor], step: int, last_good: str) -> None:
    bad = [k for k, v in terms.items() if "loss" in k and not math.isfinite(float(v))]
    if bad:
        raise NonFiniteLossError(f"non-finite loss at step {step} ({', '.join(f'{k}={float(terms[k])}' for k in bad)}); "
                                 f"stopped. Last good checkpoint: {last_good}")


# ---------------------------------------------------------------------- entry point
def _finished(run_dir: Path, num_iters: int) -> bool:
    """Finished at `num_iters` or more: a caller who raises train.num_iters extends the run instead."""
    summary = run_dir / "summary.json"
    if not summary.is_file() or not (run_dir / "checkpoints" / "generator.pt").is_file():
        return False
    summary = json.loads(summary.read_text())
    return bool(summary.get("finished")) and summary.get("num_iters", 0) >= num_iters


def resume_state(cfg: StarGANConfig, last: Path, overrides=()) -> tuple[dict, StarGANConfig, dict]:
    """last.pt's state, the config the run continues on (its saved one + `overrides`), and the changes.

    A `cfg` that differs from the saved run in a frozen key, or in its data sets, is refused.
    """
    saved = torch_load(last)
    resumed, changes = lifecycle.resume_config(StarGANConfig, saved["config"], cfg, FROZEN_KEYS, last, overrides,
                                               error=CheckpointError)
    before = [d["name"] for d in saved["config"].get("extra_data", [])]
    diffs = [f"data set {j + 1}: checkpoint {a!r} vs config {b.name!r}"
             for j, (a, b) in enumerate(zip(before, cfg.extra_data)) if a != b.name]
    if diffs:
        raise CheckpointError(f"{last} does not match the config: " + "; ".join(diffs))
    return saved, resumed, changes


def train_stargan(cfg: StarGANConfig, run_dir: str | Path, resume: bool = True, progress: bool = True,
                  max_steps: int | None = None, overrides=()) -> Path:
    """Train StarGAN into `run_dir`; return the path of the G-only file `run_dir/checkpoints/generator.pt`.

    A finished run in `run_dir` is returned at once. A partial one is resumed exactly when `resume`
    (else it is an error: nothing is overwritten), on its saved config with the `overrides`
    (dotted `key=value`; see `reid_stargan.utils.run`). `max_steps` stops after that many
    iterations (checkpoint written, run not finished), e.g. to split a run across jobs.
    """
    cfg = copy.deepcopy(cfg)
    cfg.validate()
    run_dir = Path(run_dir)
    info = lifecycle.open_run(run_dir, TOOL, cfg.runtime.device,
                              lambda folder: _finished(folder, cfg.train.num_iters))
    if info is None:
        return run_dir / "checkpoints" / "generator.pt"
    last = run_dir / "checkpoints" / "last.pt"
    saved = None
    if last.is_file():
        if not resume:
            raise FileExistsError(f"{run_dir} holds a partial run ({last}); resume it or choose another folder")
        saved, cfg, changes = resume_state(cfg, last, overrides)
        if info.is_main:  # records past the resumed step would otherwise appear twice
            drop_stats_after(run_dir, lambda r, done=int(saved["step"]): r.get("step", 0) <= done)
            lifecycle.record_changes(run_dir, changes, int(saved["step"]), RunLogger(run_dir, echo=False))
    cfg.train.seed = lifecycle.resolve_seed(cfg.train.seed, info)
    for sub in ("checkpoints", "samples"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    if info.is_main:
        atomic_write_text(run_dir / "config.yaml", dump_config_yaml(cfg))
    trainer = Trainer(cfg, run_dir, info, progress, saved)
    trainer.logger.info(trainer.describe(saved is not None))
    return trainer.fit(max_steps)
