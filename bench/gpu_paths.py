#!/usr/bin/env python
"""CUDA paths that no other bench script covers, each printed as one JSON line (part of gpu_check.sh).

* generation: the toolkit's `generate_camstyle` at 256x128 on CUDA (bf16 autocast and fp32)
  against a stargan4reid-style loop (one image at a time through PIL, one forward per target camera);
* evaluation: exact metrics with the torch backend on CUDA and FAISS on GPU, which must equal the
  CPU numbers, and re-ranking on the GPU path against the CPU one.

On a machine without CUDA `--cpu-fallback` runs the same code on the CPU at tiny sizes, so the
script is checked where no GPU is (`tests/test_gpu_check.py`).

    python bench/gpu_paths.py --work runs/gpu_check            # on a GPU machine
    python bench/gpu_paths.py --work runs/gpu_check --cpu-fallback
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def _emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


def generation(work: Path, device: str, size: tuple[int, int], images: int, conv_dim: int, repeat: int) -> None:
    from PIL import Image

    from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle
    from reid_stargan.data.records import Record
    from reid_stargan.gan.checkpoint import save_inference
    from reid_stargan.gan.models import Discriminator, Generator, translate

    cams, (h, w) = 6, size
    torch.manual_seed(0)
    g = Generator(conv_dim, cams, repeat)
    meta = {"c_dim": cams, "image_size": [h, w], "g_conv_dim": conv_dim, "g_repeat_num": repeat, "d_c_dim": cams,
            "d_conv_dim": conv_dim, "d_repeat_num": 6 if h >= 128 else 3, "domain_names": None, "layout": None,
            "step": 0}
    ckpt_dir = work / "ckpt"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    save_inference(ckpt_dir / "discriminator.pt", Discriminator((h, w), conv_dim, cams, meta["d_repeat_num"]),
                   "discriminator", meta)
    ckpt = save_inference(ckpt_dir / "generator.pt", g, "generator", meta)
    src = work / "src"
    src.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(images):
        path = src / f"{i:04d}_c{i % cams + 1}s1_000000_00.jpg"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        records.append(Record(str(path), i, i % cams))
    for amp in (True, False):
        out = work / f"out_amp{int(amp)}"
        summary = generate_camstyle(ckpt, records, out, cams, GenerateOptions(device=device, amp=amp, progress=False,
                                                                              batch_size=16, judge=False))
        _emit({"check": "generation", "device": device, "amp": amp, "images_per_s": summary["images_per_second"],
               "images": summary["images_out"]})
    # stargan4reid-style reference: per image, per target camera, fp32, PIL in and out.
    dev = torch.device(device)
    g = g.to(dev).eval()
    t0 = time.perf_counter()
    n = 0
    with torch.no_grad():
        for r in records:
            x = torch.from_numpy(np.asarray(Image.open(r.path).convert("RGB").resize((w, h)), np.float32))
            x = (x.permute(2, 0, 1)[None] / 127.5 - 1).to(dev)
            for dst in range(cams):
                if dst == r.camid:
                    continue
                c = torch.zeros(1, cams, device=dev)
                c[0, dst] = 1
                fake = translate(g, x, c)
                Image.fromarray(((fake[0].permute(1, 2, 0).cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8))
                n += 1
    if dev.type == "cuda":
        torch.cuda.synchronize()
    _emit({"check": "generation_reference", "device": device, "images_per_s": round(n / (time.perf_counter() - t0), 2)})


def evaluation(device: str, num_q: int, num_g: int, dim: int) -> None:
    from reid_stargan.eval.evaluator import evaluate

    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(0, num_q // 2, num_q), rng.integers(0, num_q // 2, num_g)
    q_cams, g_cams = rng.integers(0, 6, num_q), rng.integers(0, 6, num_g)
    centres = rng.standard_normal((num_q // 2, dim)).astype(np.float32)
    qf = centres[q_pids] + rng.standard_normal((num_q, dim)).astype(np.float32)
    gf = centres[g_pids] + rng.standard_normal((num_g, dim)).astype(np.float32)
    cpu = evaluate(qf, gf, q_pids, g_pids, q_cams, g_cams, backend="torch", device="cpu")
    for backend in ("torch", "faiss", "auto"):
        t0 = time.perf_counter()
        try:
            got = evaluate(qf, gf, q_pids, g_pids, q_cams, g_cams, backend=backend, device=device)
        except Exception as exc:  # noqa: BLE001 - report and go on: the script is a survey of paths
            _emit({"check": f"eval_{backend}", "device": device, "error": str(exc)[:200]})
            continue
        _emit({"check": f"eval_{backend}", "device": device, "seconds": round(time.perf_counter() - t0, 3),
               "backend_used": got.get("backend"), "mAP": round(got["mAP"], 4),
               "max_abs_diff_vs_cpu": max(abs(got[k] - cpu[k]) for k in ("mAP", "mAP_trapezoid", "rank1", "mINP"))})
    small = slice(0, min(num_q, 500)), slice(0, min(num_g, 3000))
    args = (qf[small[0]], gf[small[1]], q_pids[small[0]], g_pids[small[1]], q_cams[small[0]], g_cams[small[1]])
    ref = evaluate(*args, rerank=True, device="cpu")
    t0 = time.perf_counter()
    got = evaluate(*args, rerank=True, device=device)
    _emit({"check": "rerank", "device": device, "seconds": round(time.perf_counter() - t0, 3),
           "mAP_diff_vs_cpu": abs(got["mAP"] - ref["mAP"])})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, required=True, help="scratch folder")
    p.add_argument("--cpu-fallback", action="store_true", help="run on the CPU at tiny sizes (no GPU here)")
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.cpu_fallback
    if not cuda and not args.cpu_fallback:
        raise SystemExit("error: no CUDA device; pass --cpu-fallback to check the script on the CPU")
    device = "cuda" if cuda else "cpu"
    args.work.mkdir(parents=True, exist_ok=True)
    if cuda:
        generation(args.work, device, (256, 128), images=64, conv_dim=64, repeat=6)
        evaluation(device, num_q=3368, num_g=15913, dim=2048)
    else:
        generation(args.work, device, (32, 16), images=6, conv_dim=8, repeat=1)
        evaluation(device, num_q=40, num_g=200, dim=16)


if __name__ == "__main__":
    main()
