"""CamStyle generation throughput: the toolkit vs a loop written like stargan4reid's test mode.

Both sides use the same weights, the same source images and produce the same set of outputs (every
image in every camera, own camera included, as stargan4reid does). The reference loop follows the
official test mode: a DataLoader with one worker, one forward pass per target camera, and each
image saved with torchvision's save_image in the main thread.

    python bench/camstyle_throughput.py                      # both generator sizes, CPU
    python bench/camstyle_throughput.py --sizes cpu --images 64 --json out.json

Prints images/s and the speed-up; --json writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle
from reid_stargan.data.datasets import build_dataset
from reid_stargan.gan.checkpoint import save_inference
from reid_stargan.gan.models import Generator

# name -> (H, W, conv_dim, repeat_num): the paper / HHL size and the CPU demo size.
SIZES = {"full": (256, 128, 64, 6), "cpu": (64, 32, 32, 3)}
CAMERAS = 6


def make_sources(root: Path, count: int, size=(64, 128)) -> None:
    """Market-layout folder of random images at Market-1501's 64x128 (W x H)."""
    rng = np.random.default_rng(0)
    train = root / "bounding_box_train"
    train.mkdir(parents=True)
    for i in range(count):
        arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).save(train / f"{i // 4 + 1:04d}_c{i % CAMERAS + 1}s1_{i:06d}_00.jpg", quality=95)
    for sub in ("query", "bounding_box_test"):
        (root / sub).mkdir()
        Image.fromarray(rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)).save(root / sub / "0999_c1s1_000000_00.jpg")


def reference_loop(generator: Generator, folder: Path, out: Path, image_size, batch_size: int) -> int:
    """stargan4reid-style test mode: per-camera forward passes, save_image per output in the main thread."""
    import torchvision.transforms as T
    from torch.utils.data import DataLoader, Dataset
    from torchvision.utils import save_image

    class Folder(Dataset):
        def __init__(self):
            self.paths = sorted(folder.glob("*.jpg"))
            self.tf = T.Compose([T.Resize(image_size), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            return self.tf(Image.open(self.paths[i])), self.paths[i].name

    out.mkdir(parents=True)
    written = 0
    loader = DataLoader(Folder(), batch_size=batch_size, num_workers=1)
    with torch.no_grad():
        for x, names in loader:
            for cam in range(CAMERAS):
                c = torch.zeros(x.size(0), CAMERAS)
                c[:, cam] = 1
                fake = generator(x, c)
                for k, name in enumerate(names):
                    save_image(((fake[k] + 1) / 2).clamp(0, 1), out / f"{name[:-4]}_fake_{cam + 1}.jpg")
                    written += 1
    return written


def bench_size(name: str, images: int, batch_size: int, workdir: Path, threads: int) -> dict:
    h, w, conv_dim, repeat = SIZES[name]
    torch.manual_seed(0)
    generator = Generator(conv_dim, CAMERAS, repeat).eval()
    meta = {"c_dim": CAMERAS, "image_size": [h, w], "g_conv_dim": conv_dim, "g_repeat_num": repeat,
            "domain_names": None, "layout": None, "step": 0}
    ckpt = save_inference(workdir / f"{name}-generator.pt", generator, "generator", meta)
    root = workdir / f"{name}-data"
    make_sources(root, images)
    ds = build_dataset("market_layout", root, num_cameras=CAMERAS)
    result = {"size": name, "image_hw": [h, w], "conv_dim": conv_dim, "repeat_num": repeat,
              "source_images": images, "outputs": images * CAMERAS}

    start = time.perf_counter()
    n = reference_loop(generator, root / "bounding_box_train", workdir / f"{name}-ref", (h, w), batch_size)
    result["reference_ips"] = round(n / (time.perf_counter() - start), 2)

    for label, bf16 in (("toolkit_fp32_ips", False), ("toolkit_cpu_bf16_ips", True)):
        opts = GenerateOptions(include_own=True, naming="hhl", batch_size=batch_size, workers=2,
                               progress=False, judge=False, cpu_bf16=bf16, device="cpu")
        start = time.perf_counter()
        summary = generate_camstyle(ckpt, ds.train, workdir / f"{name}-{label}", CAMERAS, opts)
        result[label] = round(summary["images_out"] / (time.perf_counter() - start), 2)
    result["speedup_fp32"] = round(result["toolkit_fp32_ips"] / result["reference_ips"], 2)
    result["speedup_cpu_bf16"] = round(result["toolkit_cpu_bf16_ips"] / result["reference_ips"], 2)
    # How far bf16 moves the pixels (uint8 levels) from fp32.
    a = [np.asarray(Image.open(p), dtype=np.int16) for p in sorted((workdir / f"{name}-toolkit_fp32_ips").glob("*_fake_*"))]
    b = [np.asarray(Image.open(p), dtype=np.int16) for p in sorted((workdir / f"{name}-toolkit_cpu_bf16_ips").glob("*_fake_*"))]
    diff = np.abs(np.stack(a) - np.stack(b))
    result["bf16_vs_fp32_mean_abs_levels"] = round(float(diff.mean()), 3)
    result["threads"] = threads
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["cpu", "full"])
    p.add_argument("--images", type=int, default=0, help="source images (default: 192 cpu, 24 full)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sizes:
            images = args.images or (192 if name == "cpu" else 24)
            r = bench_size(name, images, args.batch_size, Path(tmp), args.threads)
            print(json.dumps(r))
            results.append(r)
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
