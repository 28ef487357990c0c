#!/usr/bin/env python
"""StarGAN training speed: iterations per second, one iteration = 5 D updates + 1 G update.

For each config (the full 256x128 person-crop model and the CPU demo model) it times the toolkit's
training loop (`reid_stargan.gan.trainer.Trainer`: in-memory uint8 images, batched augmentation,
real and fake through D in one call, no D gradients in the G step, bf16/channels_last on CUDA) and,
in the same process on the same images and networks, a plain reference loop written the way the
official yunjey/stargan / HHL stargan4reid code runs: PIL transforms per image in a DataLoader with
one worker, three separate D calls per D update, G's fake image built with a graph and detached,
D's gradients computed in the G update, fp32, no channels_last.

Example::

    python bench/stargan_step.py --data-root data/synthetic            # makes the set if missing
    python bench/stargan_step.py --configs cpu --cycles 4 --threads 2 --json bench.json
    python bench/stargan_step.py --configs cuhk03 --threads 1 --amp true     # the real-image CPU config
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from reid_stargan.config import load_config
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.gan.losses import gradient_penalty
from reid_stargan.gan.models import Discriminator, Generator
from reid_stargan.gan.trainer import Trainer
from reid_stargan.utils.distributed import init_distributed

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"full": REPO / "configs/stargan/market.yaml", "cpu": REPO / "configs/stargan/synthetic_cpu.yaml",
           # the real-image CPU config on its own data (bf16 autocast on AVX512-BF16 CPUs, as shipped)
           "cuhk03": REPO / "configs/stargan/cuhk03_cpu.yaml"}


def toolkit_rate(cfg: StarGANConfig, cycles: int, device: str) -> tuple[float, float]:
    """(cycles per second, warm-up seconds) of the toolkit's loop."""
    trainer = Trainer(cfg, Path("/nonexistent"), init_distributed(device), progress=False)
    if cfg.runtime.compile and trainer.device.type == "cpu":
        # The trainer compiles on CUDA only. On CPU this measures why: convolutions are ~80 % of the
        # step and inductor calls the same oneDNN kernels (docs/bench/stargan.md: no gain).
        trainer.G_run, trainer.D_run = torch.compile(trainer.G), torch.compile(trainer.D)
    n = cfg.train.n_critic
    # Warm-up: the allocator and oneDNN / cuDNN kernel choice; with torch.compile also the graphs
    # (G with and without grad, D with and without weight grads: two cycles see them all).
    warmup = n * (2 if cfg.runtime.compile else 1)
    t0 = time.perf_counter()
    for i in range(warmup):
        trainer.train_iteration(i)
    _sync(trainer.device)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(warmup, warmup + n * cycles):
        trainer.train_iteration(i)
    _sync(trainer.device)
    return cycles / (time.perf_counter() - t0), warm_s


class _PerImageDataset(torch.utils.data.Dataset):
    """The official loaders' way: open with PIL and run torchvision transforms per image."""

    def __init__(self, paths, cams, transform):
        self.paths, self.cams, self.transform = paths, cams, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.open(self.paths[i]).convert("RGB")), self.cams[i]


def reference_rate(cfg: StarGANConfig, paths, cams, cycles: int, device: str) -> float:
    from torchvision import transforms as T

    dev = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
    g, t = cfg.gan, cfg.train
    c_dim = int(max(cams)) + 1
    h, w = g.image_size
    transform = T.Compose([T.RandomHorizontalFlip(), T.Resize((round(h * 9 / 8), round(w * 9 / 8))),
                           T.RandomCrop((h, w)), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    loader = torch.utils.data.DataLoader(_PerImageDataset(paths, cams, transform), batch_size=t.batch_size,
                                         shuffle=True, num_workers=1, drop_last=True, pin_memory=dev.type == "cuda")
    G = Generator(g.g_conv_dim, c_dim, g.g_repeat_num).to(dev)
    D = Discriminator(g.image_size, g.d_conv_dim, c_dim, g.d_repeat_num).to(dev)
    g_opt = torch.optim.Adam(G.parameters(), t.g_lr, (t.beta1, t.beta2))
    d_opt = torch.optim.Adam(D.parameters(), t.d_lr, (t.beta1, t.beta2))
    data_iter = iter(loader)

    def iteration(i):
        nonlocal data_iter
        try:
            x_real, label_org = next(data_iter)
        except StopIteration:
            data_iter = iter(loader)
            x_real, label_org = next(data_iter)
        label_trg = label_org[torch.randperm(label_org.size(0))]
        c_org, c_trg = F.one_hot(label_org, c_dim).float(), F.one_hot(label_trg, c_dim).float()
        x_real, c_org, c_trg = x_real.to(dev), c_org.to(dev), c_trg.to(dev)
        label_org, label_trg = label_org.to(dev), label_trg.to(dev)
        out_src, out_cls = D(x_real)
        d_loss_real, d_loss_cls = -out_src.mean(), F.cross_entropy(out_cls, label_org)
        x_fake = G(x_real, c_trg)
        out_src, _ = D(x_fake.detach())
        d_loss_fake = out_src.mean()
        alpha = torch.rand(x_real.size(0), 1, 1, 1, device=dev)
        x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data).requires_grad_(True)
        out_src, _ = D(x_hat)
        d_loss = d_loss_real + d_loss_fake + g.lambda_cls * d_loss_cls + g.lambda_gp * gradient_penalty(out_src, x_hat)
        g_opt.zero_grad()
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        if (i + 1) % t.n_critic == 0:
            x_fake = G(x_real, c_trg)
            out_src, out_cls = D(x_fake)
            x_rec = G(x_fake, c_org)
            g_loss = (-out_src.mean() + g.lambda_rec * (x_real - x_rec).abs().mean()
                      + g.lambda_cls * F.cross_entropy(out_cls, label_trg))
            g_opt.zero_grad()
            d_opt.zero_grad()
            g_loss.backward()
            g_opt.step()

    n = t.n_critic
    for i in range(n):
        iteration(i)
    _sync(dev)
    t0 = time.perf_counter()
    for i in range(n, n * (cycles + 1)):
        iteration(i)
    _sync(dev)
    return cycles / (time.perf_counter() - t0)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default="data/synthetic", help="Market-layout set (made with the demo preset if missing)")
    p.add_argument("--configs", default="full,cpu", help="comma list of: full, cpu, cuhk03 (reads ../shared/data)")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D in the toolkit loop (on CPU too, to measure it)")
    p.add_argument("--amp", choices=["true", "false"], default=None,
                   help="override runtime.amp (bf16 autocast) of the toolkit loop; the reference stays fp32")
    p.add_argument("--cycles", type=int, default=0, help="timed cycles (5 D + 1 G); 0 = 1 for full on CPU, 3 otherwise")
    p.add_argument("--full-batch-cpu", type=int, default=2, help="batch of the full config on CPU (16 takes minutes)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.data_root)
    if not (root / "bounding_box_train").is_dir():
        from reid_stargan.data.synthetic import PRESETS, make_synthetic

        make_synthetic(root, **PRESETS["demo"])
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    results = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
               + (f", {torch.cuda.get_device_name()}" if device == "cuda" else ", no GPU"),
               "torch": torch.__version__, "device": device, "rows": []}
    for name in args.configs.split(","):
        own_data = name == "cuhk03"
        over = [*([] if own_data else [f"data.root={root}"]), "train.seed=0", f"runtime.device={device}", "runtime.num_workers=0",
                "log.tensorboard=false", "data.verify_images=false", "data.name=market_layout", "data.num_cameras=0",
                "train.n_critic=5", *([f"runtime.threads={args.threads}"] if args.threads else [])]
        if args.amp is not None:
            over.append(f"runtime.amp={args.amp}")
        if args.compile:
            over.append("runtime.compile=true")  # one timed unit = 5 D updates + 1 G update for every config
        if name == "full" and device == "cpu":
            over.append(f"train.batch_size={args.full_batch_cpu}")
        cfg = load_config(StarGANConfig, CONFIGS[name], over)
        cycles = args.cycles or (1 if name == "full" and device == "cpu" else 3)
        torch.manual_seed(0)
        tk, warm_s = toolkit_rate(cfg, cycles, device)
        from reid_stargan.gan.data import build_domain_data

        data = build_domain_data(cfg.data)
        torch.manual_seed(0)
        ref = reference_rate(cfg, data.paths, data.labels.tolist(), cycles, device)
        row = {"config": name, "image_size": list(cfg.gan.image_size), "batch": cfg.train.batch_size,
               "cycles": cycles, "toolkit_it_per_s": round(tk, 4), "reference_it_per_s": round(ref, 4),
               "speedup": round(tk / ref, 3), "toolkit_warmup_s": round(warm_s, 1),
               "amp": cfg.runtime.amp, "compile": cfg.runtime.compile}
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"machine: {results['machine']}; torch {results['torch']}")
    return results


if __name__ == "__main__":
    main()
