#!/usr/bin/env python
"""Training throughput of the re-ID model: images per second of one optimisation step (forward,
batch-hard triplet + identity CE, backward, Adam) on random P x K batches, on CPU and, when
present, on GPU (mixed precision + channels_last there, as the trainer does). Data loading is
not included (measure it with the trainer's log, which prints img/s per epoch).

Example::

    python bench/reid_step.py --threads 2                                  # CPU: small net at 64x32
    python bench/reid_step.py --backbone resnet50 --height 256 --width 128 --steps 5
    python bench/reid_step.py --backbone resnet50 --height 256 --width 128 --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext

import torch

from reid_stargan.reid.config import LossConfig
from reid_stargan.reid.models import BACKBONES, build_reid_model
from reid_stargan.reid.modes import BaselineMode


def measure(backbone: str, height: int, width: int, P: int, K: int, steps: int, warmup: int,
            device: str, num_classes: int = 751) -> dict:
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    model = build_reid_model(backbone, num_classes, pretrained="none", last_stride=2 if backbone == "small" else 1).to(dev)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=3.5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    mode = BaselineMode(None, LossConfig(), num_classes)
    images = torch.randn(P * K, 3, height, width, device=dev)  # (B, 3, H, W)
    if cuda:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.arange(P, device=dev).repeat_interleave(K)
    flags = torch.zeros(P * K, dtype=torch.bool, device=dev)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if cuda else nullcontext
    model.train()
    for step in range(warmup + steps):
        if step == warmup:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with autocast():
            feats, logits = model(images)
        loss = mode.compute_loss(feats.float(), logits.float(), labels, flags, ~flags)["loss"]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"backbone": backbone, "image_size": [height, width], "batch": P * K, "device": device,
            "amp": cuda, "steps": steps, "images_per_s": round(P * K * steps / seconds, 1),
            "ms_per_step": round(1000 * seconds / steps, 1), "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="small", choices=BACKBONES.names())
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--P", type=int, default=16)
    parser.add_argument("--K", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--device", default="all", help="cpu, cuda, or all (cpu + cuda when available)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    results = []
    for device in devices:
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(json.dumps({"device": device, "skipped": "no CUDA device"}))
            continue
        results.append(measure(args.backbone, args.height, args.width, args.P, args.K, args.steps, args.warmup, device))
        print(json.dumps(results[-1]))
    return results


if __name__ == "__main__":
    main()
