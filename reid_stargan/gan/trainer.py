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

import contextlib
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from reid_stargan.config import config_to_dict, dump_config_yaml
from reid_stargan.gan.checkpoint import CheckpointError, save_inference
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.data import BatchStream, augment_batch, build_domain_data, decode, grid_png, load_size
from reid_stargan.gan.labels import LabelLayout, permute_targets
from reid_stargan.gan.losses import classification_correct, d_loss, g_loss
from reid_stargan.gan.models import Discriminator, Generator
from reid_stargan.gan.schedule import schedule_lr
from reid_stargan.utils.distributed import DistInfo, bf16_supported, init_distributed
from reid_stargan.utils.io import (
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    torch_load,
)
from reid_stargan.utils.rundir import RunLogger, claim_run_dir, drop_stats_after, remove_stale_temporaries
from reid_stargan.utils.seed import capture_rng_state, draw_seed, restore_rng_state, seed_everything

# Config keys that must not change when a run is resumed (they define the models and the data order).
FROZEN_KEYS = ("gan", "train.batch_size", "train.n_critic", "train.seed", "augment")
TOOL = "train_stargan"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; the message names the step and the last good checkpoint."""


class Trainer:
    """State of one StarGAN run. `train_stargan` is the entry point; this class keeps its parts small."""

    def __init__(self, cfg: StarGANConfig, run_dir: Path, dist_info: DistInfo, progress: bool):
        self.cfg, self.run_dir, self.dist, self.progress = cfg, run_dir, dist_info, progress
        self.device = dist_info.device
        self.ckpt_dir = run_dir / "checkpoints"
        self.logger = RunLogger(run_dir, enabled=dist_info.is_main, echo=progress)
        self.step = 0
        self.tb = None

    # ------------------------------------------------------------------ set-up
    def build(self, saved: dict | None) -> None:
        cfg, dist_info = self.cfg, self.dist
        if cfg.runtime.threads > 0:
            torch.set_num_threads(cfg.runtime.threads)
        seed_everything(cfg.train.seed)  # same init on every rank (and broadcast below anyway)
        self.data = [build_domain_data(dc, cfg.augment.celeba_num_test) for dc in cfg.datasets]
        self.layout = LabelLayout([d.spec for d in self.data])
        if cfg.gan.c_dim and cfg.gan.c_dim != self.layout.d_dim:
            names = ", ".join(f"{d.spec.name}: {d.spec.num_domains}" for d in self.data)
            raise ValueError(f"config gan.c_dim={cfg.gan.c_dim} but the data has {self.layout.d_dim} domains "
                             f"({names}); set gan.c_dim=0 to take it from the data")
        g = cfg.gan
        self.G = Generator(g.g_conv_dim, self.layout.g_dim, g.g_repeat_num).to(self.device)
        self.D = Discriminator(g.image_size, g.d_conv_dim, self.layout.d_dim, g.d_repeat_num).to(self.device)
        cuda = self.device.type == "cuda"
        if cuda and cfg.runtime.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        t = cfg.train
        self.g_opt = torch.optim.Adam(self.G.parameters(), t.g_lr, (t.beta1, t.beta2))
        self.d_opt = torch.optim.Adam(self.D.parameters(), t.d_lr, (t.beta1, t.beta2))
        self.amp_dtype = torch.bfloat16 if cfg.runtime.amp and bf16_supported(self.device) else None
        # torch.compile cannot differentiate twice, so the gradient penalty always uses the plain D.
        self.G_run, self.D_run = self.G, self.D
        if cuda and cfg.runtime.compile:
            self.G_run, self.D_run = torch.compile(self.G), torch.compile(self.D)

        if dist_info.world_size > 1 and t.batch_size % dist_info.world_size:
            raise ValueError(f"train.batch_size={t.batch_size} is not divisible by {dist_info.world_size} ranks")
        self.local_batch = t.batch_size // dist_info.world_size
        consumed = saved["streams"] if saved else [0] * len(self.data)
        self.load_hw = load_size(g.image_size, cfg.augment.random_crop)
        crops = cfg.augment.center_crop or [0] * len(self.data)
        self.crops = crops
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
            picked, r = [], 0
            while len(picked) < min(rows, len(data)):
                pool = by_domain.get(r % data.spec.num_domains, [])
                if pool:
                    picked.append(pool.pop(0))
                r += 1
        else:
            picked = [int(i) for i in order[:rows]]
        images = torch.stack([decode(data.paths[i], self.load_hw, self.crops[k]) for i in picked])
        x = augment_batch(images, self.cfg.gan.image_size, random_crop=False, hflip=False,
                          generator=torch.Generator(), device=self.device)
        return x, data.labels[picked]

    # ------------------------------------------------------------------ one iteration
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.device.type == "cuda" and self.cfg.runtime.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _sync_grads(self, params) -> None:
        """Average gradients over ranks with one flat all-reduce."""
        if not self.dist.distributed:
            return
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.dist.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def train_iteration(self, i: int) -> dict[str, torch.Tensor]:
        cfg, layout, lam = self.cfg, self.layout, self.cfg.gan
        t = cfg.train
        lr_g = schedule_lr(t.lr_schedule, i, t.g_lr, t.num_iters, t.num_iters_decay, t.lr_update_step)
        lr_d = schedule_lr(t.lr_schedule, i, t.d_lr, t.num_iters, t.num_iters_decay, t.lr_update_step)
        for group in self.g_opt.param_groups:
            group["lr"] = lr_g
        for group in self.d_opt.param_groups:
            group["lr"] = lr_d
        terms: dict[str, torch.Tensor] = {}
        if i < cfg.train.identity_warmup:
            terms.update(self.identity_iteration())
            terms["lr/g"] = torch.tensor(lr_g)
            terms["lr/d"] = torch.tensor(lr_d)
            return terms
        g_step = (i + 1) % cfg.train.n_critic == 0
        for k, stream in enumerate(self.streams):
            spec, sl = layout.specs[k], layout.cls_slice(k)
            prefix = f"{spec.name}/" if layout.multi else ""
            images, label_org = stream.next()
            x_real = self._to_device(augment_batch(images, cfg.gan.image_size, random_crop=cfg.augment.random_crop,
                                                   hflip=cfg.augment.hflip, generator=self.gen, device=self.device))
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
            self.d_opt.zero_grad(set_to_none=True)
            total.backward()
            self._sync_grads(self.D.parameters())
            self.d_opt.step()
            terms.update({prefix + n: v for n, v in d_terms.items()})
            terms[prefix + "D/acc_real"] = classification_correct(logits, label_org, spec.label_type).mean()

            # Generator update every n_critic-th iteration; D's weights are not differentiated here.
            if g_step:
                self.D.requires_grad_(False)
                with self._autocast():
                    total, g_terms, _ = g_loss(
                        self.G_run, self.D_run, x_real, c_org, c_trg, label_trg, label_type=spec.label_type,
                        cls_slice=sl, lambda_cls=lam.lambda_cls, lambda_rec=lam.lambda_rec)
                self.g_opt.zero_grad(set_to_none=True)
                total.backward()
                self._sync_grads(self.G.parameters())
                self.g_opt.step()
                self.D.requires_grad_(True)
                terms.update({prefix + n: v for n, v in g_terms.items()})
        terms["lr/g"] = torch.tensor(lr_g)
        terms["lr/d"] = torch.tensor(lr_d)
        return terms

    def identity_iteration(self) -> dict[str, torch.Tensor]:
        """One G-only update towards G(x, c_org) = x on each data set (the optional identity warm-up)."""
        cfg, layout = self.cfg, self.layout
        terms = {}
        for k, stream in enumerate(self.streams):
            prefix = f"{layout.specs[k].name}/" if layout.multi else ""
            images, label_org = stream.next()
            x_real = self._to_device(augment_batch(images, cfg.gan.image_size, random_crop=cfg.augment.random_crop,
                                                   hflip=cfg.augment.hflip, generator=self.gen, device=self.device))
            c_org = layout.condition(k, label_org).to(self.device)
            with self._autocast():
                loss = (self.G_run(x_real, c_org).float() - x_real.float()).abs().mean()
            self.g_opt.zero_grad(set_to_none=True)
            loss.backward()
            self._sync_grads(self.G.parameters())
            self.g_opt.step()
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
        path = self.run_dir / "samples" / f"{self.step:06d}.png"
        atomic_write_bytes(path, grid_png([torch.cat(rows)]))
        return path

    def log_stats(self, terms: dict[str, torch.Tensor], rate: float) -> dict:
        record = {"step": self.step, "epoch": round(self.streams[0].epochs, 3), "it_per_s": round(rate, 3)}
        record.update({k: round(float(v), 6) for k, v in terms.items()})
        if self.dist.is_main:
            self.logger.stats(record)
            if self.cfg.log.tensorboard:
                if self.tb is None:
                    from torch.utils.tensorboard import SummaryWriter  # lazy: heavy import

                    self.tb = SummaryWriter(str(self.run_dir / "tb"))
                for k, v in record.items():
                    if k != "step":
                        self.tb.add_scalar(k, v, self.step)
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
                imgs = torch.stack([decode(data.paths[i], self.load_hw, self.crops[k]) for i in sel])
                x = augment_batch(imgs, self.cfg.gan.image_size, random_crop=False, hflip=False,
                                  generator=torch.Generator(), device=self.device)
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

    def ranks_in_sync(self) -> bool:
        if not self.dist.distributed:
            return True
        s = torch.tensor([sum(float(p.double().sum()) for p in [*self.G.parameters(), *self.D.parameters()])],
                         dtype=torch.float64)
        lo, hi = s.clone(), s.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        return bool(lo.item() == hi.item())


# ---------------------------------------------------------------------- entry point
def _finished(run_dir: Path) -> bool:
    summary = run_dir / "summary.json"
    if not summary.is_file() or not (run_dir / "checkpoints" / "generator.pt").is_file():
        return False
    return bool(json.loads(summary.read_text()).get("finished"))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def check_resume_config(saved: dict, cfg: StarGANConfig, path: Path) -> None:
    """Refuse to resume with a config that changes the models or the data order (names both sides)."""
    old, new = _flat(saved), _flat(config_to_dict(cfg))
    diffs = [f"{k}: checkpoint {old.get(k)!r} vs config {new.get(k)!r}" for k in sorted(set(old) | set(new))
             if any(k == f or k.startswith(f + ".") for f in FROZEN_KEYS) and old.get(k) != new.get(k)]
    for j, (a, b) in enumerate(zip(saved["datasets_names"], [d.name for d in cfg.datasets])):
        if a != b:
            diffs.append(f"data set {j}: checkpoint {a!r} vs config {b!r}")
    if diffs:
        raise CheckpointError(f"{path} does not match the config: " + "; ".join(diffs))


def train_stargan(cfg: StarGANConfig, run_dir: str | Path, resume: bool = True, progress: bool = True,
                  max_steps: int | None = None) -> Path:
    """Train StarGAN into `run_dir`; return the path of the G-only file `run_dir/checkpoints/generator.pt`.

    A finished run in `run_dir` is returned at once. A partial one is resumed exactly when `resume`
    (else it is an error: nothing is overwritten). `max_steps` stops after that many iterations
    (checkpoint written, run not finished), e.g. to split a run across jobs.
    """
    cfg = copy.deepcopy(cfg)
    cfg.validate()
    run_dir = Path(run_dir)
    # Another tool's folder, or the user's own files, are refused before anything is read or written.
    claim_run_dir(run_dir, TOOL, write=False)
    gen_path = run_dir / "checkpoints" / "generator.pt"
    if _finished(run_dir):
        return gen_path
    dist_info = init_distributed(cfg.runtime.device)
    if dist_info.is_main:
        claim_run_dir(run_dir, TOOL)
        remove_stale_temporaries(run_dir)  # a killed writer's *.tmp-* files; this process owns the folder
    last = run_dir / "checkpoints" / "last.pt"
    saved = None
    if last.is_file():
        if not resume:
            raise FileExistsError(f"{run_dir} holds a partial run ({last}); resume it or choose another folder")
        saved = torch_load(last)
        saved_cfg = saved["config"]
        if cfg.train.seed is None:
            cfg.train.seed = saved_cfg["train"]["seed"]
        check_resume_config({**saved_cfg, "datasets_names": [saved_cfg["data"]["name"]] +
                             [d["name"] for d in saved_cfg["extra_data"]]}, cfg, last)
        if dist_info.is_main:  # records past the resumed step would otherwise appear twice
            drop_stats_after(run_dir, lambda r, done=int(saved["step"]): r.get("step", 0) <= done)
    if cfg.train.seed is None:
        seeds = [draw_seed()]
        if dist_info.distributed:
            dist.broadcast_object_list(seeds, src=0)
        cfg.train.seed = seeds[0]
    for sub in ("checkpoints", "samples"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    if dist_info.is_main:
        atomic_write_text(run_dir / "config.yaml", dump_config_yaml(cfg))

    trainer = Trainer(cfg, run_dir, dist_info, progress)
    trainer.build(saved)
    log = trainer.logger
    num_iters = cfg.train.num_iters
    stop = min(num_iters, max_steps) if max_steps is not None else num_iters
    log.info(f"StarGAN: {', '.join(f'{d.spec.name} ({len(d)} images, {d.spec.num_domains} {d.spec.label_type}-label domains)' for d in trainer.data)}; "
             f"G c_dim={trainer.layout.g_dim}, image {cfg.gan.image_size[0]}x{cfg.gan.image_size[1]}, "
             f"device {dist_info.device}, ranks {dist_info.world_size}, seed {cfg.train.seed}, "
             f"{'resuming at step ' + str(trainer.step) if saved else 'from scratch'}")
    last_good = str(last) if saved else "none yet"
    check_every = 1 if dist_info.device.type == "cpu" else cfg.log.log_every

    from tqdm import tqdm

    bar = tqdm(total=num_iters, initial=trainer.step, disable=not (progress and dist_info.is_main),
               dynamic_ncols=True, desc="stargan", unit="it")
    start_step, t0 = trainer.step, time.perf_counter()
    t_log, step_log = t0, trainer.step
    terms: dict[str, torch.Tensor] = {}
    try:
        for i in range(trainer.step, stop):
            new_terms = trainer.train_iteration(i)
            terms.update(new_terms)
            trainer.step = i + 1
            s = trainer.step
            want_ckpt = s % cfg.log.checkpoint_every == 0 or s == stop
            if s % check_every == 0 or want_ckpt:
                bad = [k for k, v in new_terms.items() if "loss" in k and not math.isfinite(float(v))]
                if bad:
                    raise NonFiniteLossError(
                        f"non-finite loss at step {s} ({', '.join(f'{k}={float(new_terms[k])}' for k in bad)}); "
                        f"stopped. Last good checkpoint: {last_good}")
            if s % cfg.log.log_every == 0 or s == stop:
                now = time.perf_counter()
                record = trainer.log_stats(terms, (s - step_log) / max(now - t_log, 1e-9))
                t_log, step_log = now, s
                bar.set_postfix({k.split("/", 1)[-1]: f"{record[k]:.3f}" for k in ("D/loss", "G/loss_rec") if k in record})
            if s % cfg.log.sample_every == 0 or s == stop:
                trainer.save_samples()
            if want_ckpt:
                trainer.save_checkpoint()
                last_good = str(last)
            bar.update(1)
    finally:
        bar.close()
        if trainer.tb is not None:
            trainer.tb.flush()
    seconds = time.perf_counter() - t0
    rate = (trainer.step - start_step) / max(seconds, 1e-9)
    if trainer.step < num_iters:
        log.info(f"stopped at step {trainer.step} of {num_iters} (max_steps); resume with the same run folder")
        return gen_path
    in_sync = trainer.ranks_in_sync()
    if dist_info.is_main:
        per_set = trainer.evaluate()
        n = len(per_set)
        summary = {
            "finished": True, "step": trainer.step, "num_iters": num_iters, "seed": cfg.train.seed,
            "world_size": dist_info.world_size, "device": str(dist_info.device), "ranks_in_sync": in_sync,
            "seconds_this_session": round(seconds, 2), "steps_per_s": round(rate, 4),
            "d_acc_real": round(sum(v["d_acc_real"] for v in per_set.values()) / n, 4),
            "d_acc_fake": round(sum(v["d_acc_fake"] for v in per_set.values()) / n, 4),
            "datasets": per_set, "generator": str(gen_path.relative_to(run_dir)),
            "c_dim": trainer.layout.g_dim, "image_size": list(cfg.gan.image_size),
            "unparsed_names": sum(d.unparsed_names for d in trainer.data),
        }
        atomic_write_json(run_dir / "summary.json", summary)
        log.info(f"done: D accuracy real {summary['d_acc_real']:.3f}, translated {summary['d_acc_fake']:.3f}; "
                 f"{rate:.2f} it/s; generator {gen_path}")
    if dist_info.distributed:
        dist.barrier()
    if not in_sync:
        raise RuntimeError("ranks ended with different weights: gradient averaging is broken")
    return gen_path
