"""Offline CamStyle generation: every training image rendered in every camera's style.

The work is split so the model never waits on I/O: a thread pool decodes the next batch of
source images while the generator translates the current one, and another pool encodes and writes
the outputs. All target cameras of a batch go through the generator in one forward pass.

Guarantees:
* every output is written to a temporary name and renamed (`reid_stargan.utils.io`), so a file with
  a final name is always complete; a rerun skips complete outputs, so a killed run just resumes;
* the bytes of an output depend only on the checkpoint and its source image, not on batch size,
  sharding or order (inputs are resized with PIL, the CPU forward pass is per-sample exact);
* an unreadable source image is counted and reported, never stops the run.

Example::

    from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle
    summary = generate_camstyle("runs/00001-stargan/checkpoints/generator.pt", dataset.train,
                                "data/market/bounding_box_train_camstyle", num_cameras=6)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reid_stargan.camstyle.naming import (
    INFO_NAME,
    NAMINGS,
    SUMMARY_NAME,
    camstyle_status,
    lock_name,
    manifest_entry,
    output_name,
    write_manifest,
)
from reid_stargan.config import dump_config_yaml
from reid_stargan.data.imageio import IMAGE_SUFFIXES, BadImageError, load_rgb
from reid_stargan.data.preprocess import from_gan_range, load_resized, resize, to_gan_range
from reid_stargan.data.records import Record, camera_links
from reid_stargan.utils.io import (
    TMP_MARKER,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_sha256,
)
from reid_stargan.utils.lock import FolderLock
from reid_stargan.utils.run import channels_last, progress_bar


class CamStyleError(ValueError):
    """A generation request that cannot be carried out as asked (wrong checkpoint, foreign folder)."""


@dataclass
class GenerateOptions:
    naming: str = "camstyle"  # "camstyle": <stem>_fake_<src>to<dst>.jpg, "hhl": <stem>_fake_<dst>.jpg
    include_own: bool = False  # also render each image in its own camera (HHL did)
    targets_per_image: int = 0  # 0: every target camera; K: a fixed, name-seeded K of them (big sets on CPU)
    # "all": every other camera (CamStyle). "linked": only the cameras that share a training identity
    # with the source's camera (`data.records.camera_links`). Where identities are nested in camera
    # groups (CUHK03: each person in one of 5 camera pairs), StarGAN's domain classifier tells the
    # groups apart by who walks there, so a translation out of the group changes the person.
    targets: str = "all"
    resize_back: bool = False  # write each output at its source image's size, not the generator's
    # Write at the source's size as source + upsampled (G(x) - x), x the generator-size input: the
    # translation's low-frequency change (colour, light, tone) on the source's own detail. Not in
    # StarGAN / CamStyle: for generators trained below the source resolution (CPU runs), whose
    # outputs otherwise lose the fine detail that identifies a person (docs/RESULTS.md measures it).
    keep_detail: bool = False
    image_format: str = "jpg"  # "jpg" or "png"
    jpeg_quality: int = 95
    batch_size: int = 16  # source images per forward pass (x number of target cameras)
    workers: int = 2  # decode and encode threads each
    shard_index: int = 0
    num_shards: int = 1
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    cpu_bf16: bool = False  # bf16 autocast on CPU too: ~2x faster at 256x128 where the CPU has AVX512-BF16/AMX,
    #                         outputs differ from fp32 by a few grey levels (docs/BENCHMARKS.md)
    channels_last: bool = True  # CUDA only
    overwrite: bool = False  # regenerate everything, also in a folder written by another checkpoint
    judge: bool = True  # score outputs with the checkpoint's discriminator when it has one
    progress: bool = True
    image_size: tuple[int, int] | None = None  # (H, W) for official checkpoints without a D file

    def __post_init__(self):
        if self.naming not in NAMINGS:
            raise CamStyleError(f"unknown naming '{self.naming}'; valid: {', '.join(NAMINGS)}")
        if self.targets not in ("all", "linked"):
            raise CamStyleError(f"targets must be 'all' or 'linked', got '{self.targets}'")
        if self.image_format not in ("jpg", "png"):
            raise CamStyleError(f"image_format must be jpg or png, got '{self.image_format}'")
        if not 0 <= self.shard_index < self.num_shards:
            raise CamStyleError(f"shard {self.shard_index}/{self.num_shards}: index must be in 0..{self.num_shards - 1}")


# The options that decide what a folder holds (recorded in camstyle_info.json; a rerun must agree),
# with the value a folder written before the key existed holds.
OUTPUT_KEYS = ("naming", "include_own", "resize_back", "keep_detail", "image_format", "targets_per_image", "targets")
OLDER_FOLDERS = {"keep_detail": False, "targets": "all"}


@dataclass
class _Job:
    record: Record
    targets: list[tuple[int, str]]  # (dst camid, output file name) still to write


def planned_outputs(record: Record, num_cameras: int, options: GenerateOptions,
                    links: dict[int, frozenset[int]] | None = None) -> list[tuple[int, str]]:
    """(target camid, output name) for every output `record` should have; `links` (camera_links of the
    whole set) is needed for ``options.targets == "linked"``."""
    suffix = "." + options.image_format
    name = os.path.basename(record.path)
    targets = [dst for dst in range(num_cameras) if options.include_own or dst != record.camid]
    if options.targets == "linked":
        targets = [dst for dst in targets if dst in links.get(record.camid, ())]
    if 0 < options.targets_per_image < len(targets):
        # Seeded by the file name alone, so every run and every shard picks the same cameras.
        seed = int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "little")
        targets = sorted(random.Random(seed).sample(targets, options.targets_per_image))
    return [(dst, output_name(name, record.camid, dst, options.naming, suffix)) for dst in targets]


def generate_camstyle(checkpoint: str | os.PathLike, records: Sequence[Record], out_dir: str | os.PathLike,
                      num_cameras: int, options: GenerateOptions | None = None,
                      protected_dirs: Sequence[str | os.PathLike] = (), unparsed_names: int = 0) -> dict:
    """Render `records` into every target camera with the generator in `checkpoint`.

    `unparsed_names`: how many file names of the data set did not parse (the caller's count),
    recorded in the summary beside the images that were rendered.

    `out_dir` must not be (or lie inside) a folder a parser reads: the source images' folders and
    `protected_dirs` (the CLI adds the query and gallery folders) are refused, so fakes never join
    a data split. A folder with images but no `camstyle_info.json` (not ours) is refused too.

    Returns (and writes as `summary*.json`) counts, timing and the discriminator's target-camera
    accuracy on the outputs (None when the checkpoint has no discriminator), and `complete`: every
    output of the manifest is on disk (bar those of unreadable sources, `unmade_outputs`).

    A run holds a lock file in `out_dir` (`naming.lock_name`): a second run into the same folder
    (and shard) is refused, naming the holder; a lock left by a dead process on this host is removed.
    """
    from reid_stargan.gan import load_generator

    options = options or GenerateOptions()
    device = _pick_device(options.device)
    generator, info = load_generator(checkpoint, device=device, image_size=options.image_size)
    if info["c_dim"] != num_cameras:
        raise CamStyleError(
            f"checkpoint {checkpoint} was trained for c_dim={info['c_dim']} domains but the data set has "
            f"{num_cameras} cameras; use a generator trained on this data set's cameras"
        )
    if info["image_size"] is None:
        raise CamStyleError(f"{checkpoint}: the image size cannot be read from the weights (no sibling "
                            "*-D.ckpt); give it with --image-size H W (HHL stargan4reid: 256 128)")
    out_dir = Path(out_dir)
    _refuse_data_folder(out_dir, records, protected_dirs)
    checkpoint_hash = file_sha256(checkpoint)
    if not options.overwrite and (done := _complete_summary(out_dir, checkpoint_hash, options)) is not None:
        return done  # this stage owns its completion: a finished folder is not read or written again
    out_dir.mkdir(parents=True, exist_ok=True)
    with FolderLock(out_dir / lock_name(options.shard_index, options.num_shards), "generate_camstyle"):
        return _generate_locked(checkpoint, checkpoint_hash, generator, info, records, out_dir, num_cameras, options,
                                device, unparsed_names)


def _generate_locked(checkpoint, checkpoint_hash: str, generator, info: dict, records: Sequence[Record],
                     out_dir: Path, num_cameras: int, options: GenerateOptions, device: torch.device,
                     unparsed_names: int = 0) -> dict:
    """generate_camstyle's work, with the folder's lock held."""
    from reid_stargan.gan import load_discriminator

    _claim_folder(out_dir, checkpoint, checkpoint_hash, info, num_cameras, options)
    # The options this folder was written with, in the form a config's `generate:` section takes.
    atomic_write_text(out_dir / "config.yaml", dump_config_yaml({"generate": asdict(options)}))

    # Sorted by path, then every num_shards-th: the union over shards is the whole set.
    own = sorted(records, key=lambda r: r.path)[options.shard_index::options.num_shards]
    links = camera_links(records)  # from the whole set, so every shard plans the same targets
    jobs, skipped = _jobs_to_do(own, out_dir, num_cameras, options, links)
    found = load_discriminator(checkpoint, device=device) if options.judge else None
    tally = _translate_jobs(jobs, channels_last(generator, device, options.channels_last),
                            found[0] if found is not None else None, out_dir, num_cameras, info["image_size"],
                            options, device)

    planned = _write_manifest(out_dir, records, num_cameras, options, links)
    unreadable = {path for path, _ in tally.failed}
    unmade = sum(len(job.targets) for job in jobs if job.record.path in unreadable)
    missing = sum(not (out_dir / name).is_file() for name in planned)
    written, seconds = tally.written, tally.seconds
    summary = {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": checkpoint_hash,
        "shard": f"{options.shard_index}/{options.num_shards}",
        "images_in": len(own),
        "images_out": written,
        "skipped_existing": skipped,
        "failed": len(tally.failed),
        "unparsed_names": unparsed_names,
        "failed_files": [{"path": p, "reason": r} for p, r in tally.failed[:50]],
        # The whole folder at the end of this run (a shard's summary: all shards' outputs).
        "planned_outputs": len(planned),
        "missing_outputs": missing,
        "unmade_outputs": unmade,
        "complete": missing <= unmade,
        "seconds": round(seconds, 3),
        "images_per_second": round(written / seconds, 3) if seconds > 0 else None,
        "d_target_accuracy": round(100.0 * tally.correct / tally.judged, 2) if tally.judged else None,
        "device": str(device),
        "options": asdict(options),
    }
    name = "summary.json" if options.num_shards == 1 else f"summary.shard-{options.shard_index}-of-{options.num_shards}.json"
    atomic_write_json(out_dir / name, summary)
    return summary


def _jobs_to_do(own: list[Record], out_dir: Path, num_cameras: int, options: GenerateOptions,
                links: dict) -> tuple[list[_Job], int]:
    """This shard's images with the outputs still to write (all of them with `overwrite`), and how many
    outputs already exist; leftover temporaries of the planned outputs are removed first."""
    plans = {record: planned_outputs(record, num_cameras, options, links) for record in own}
    _remove_stale_temporaries(out_dir, {name for targets in plans.values() for _, name in targets})
    jobs, skipped = [], 0
    for record, targets in plans.items():
        todo = targets if options.overwrite else [t for t in targets if not (out_dir / t[1]).exists()]
        skipped += len(targets) - len(todo)
        if todo:
            jobs.append(_Job(record, todo))
    return jobs, skipped


@dataclass
class _Tally:
    written: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source path, reason)
    correct: int = 0  # translations the judge D places in their target camera
    judged: int = 0
    seconds: float = 0.0


def _translate_jobs(jobs: list[_Job], generator, judge, out_dir: Path, num_cameras: int, image_size,
                    options: GenerateOptions, device: torch.device) -> _Tally:
    """Translate every job's image into its target cameras and write the files (threaded decode and
    encode around one generator forward per batch)."""
    from reid_stargan.gan import translate

    tally, start = _Tally(), time.time()
    pending: list[Future] = []
    bar = progress_bar(sum(len(j.targets) for j in jobs), 0, options.progress, "camstyle", unit="img")
    with ThreadPoolExecutor(options.workers) as readers, ThreadPoolExecutor(options.workers) as writers:
        for batch, images in _prefetched_batches(jobs, options.batch_size, readers, image_size):
            ok = [(job, img) for job, img in zip(batch, images) if not isinstance(img, BadImageError)]
            tally.failed += [(job.record.path, img.reason) for job, img in zip(batch, images)
                             if isinstance(img, BadImageError)]
            if not ok:
                continue
            x, labels, flat = _flatten_targets(ok, num_cameras)  # (N,3,H,W), (N,c_dim)
            x = channels_last(x.to(device), device, options.channels_last)
            labels = labels.to(device)
            with torch.inference_mode(), _autocast(device, options):
                fake = translate(generator, x, labels).float()
            # Same rounding as torchvision.utils.save_image: x*255 + 0.5, clamped, truncated.
            pixels = from_gan_range(fake).permute(0, 2, 3, 1).cpu().numpy()  # (N,H,W,3) uint8
            if judge is not None:
                tally.correct += _judge(judge, pixels, labels, device)
                tally.judged += len(flat)
            for (job, _dst, name), array in zip(flat, pixels):
                pending.append(writers.submit(_write_output, array, out_dir / name, job.record, options))
            tally.written += len(flat)
            bar.update(len(flat))
            pending = _drain(pending, keep=4 * options.batch_size * num_cameras)
        _drain(pending, keep=0)
    bar.close()
    tally.seconds = time.time() - start
    return tally


# ----------------------------------------------------------------------------- pieces
def _complete_summary(out_dir: Path, checkpoint_hash: str, options: GenerateOptions) -> dict | None:
    """The summary of a finished whole-folder run with this checkpoint and these output options whose
    folder is complete (`camstyle_status`), marked `already_complete`; else None."""
    info_path, summary_path = out_dir / INFO_NAME, out_dir / SUMMARY_NAME
    if options.num_shards != 1 or not (info_path.is_file() and summary_path.is_file()):
        return None
    info = json.loads(info_path.read_text())
    same = info.get("checkpoint_sha256") == checkpoint_hash and all(
        info.get(k, OLDER_FOLDERS.get(k)) == getattr(options, k) for k in OUTPUT_KEYS)
    if not (same and camstyle_status(out_dir).complete):
        return None
    return {**json.loads(summary_path.read_text()), "already_complete": True}


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(name)


def _claim_folder(out_dir: Path, checkpoint, checkpoint_hash: str, info, num_cameras: int,
                  options: GenerateOptions) -> None:
    """Refuse a folder that holds another checkpoint's images; otherwise record ours in it."""
    info_path = out_dir / INFO_NAME
    if not info_path.exists() and out_dir.is_dir():
        foreign = sorted(p.name for p in out_dir.iterdir()
                         if p.suffix.lower() in IMAGE_SUFFIXES and TMP_MARKER not in p.name)
        if foreign:
            raise CamStyleError(
                f"{out_dir} holds {len(foreign)} image(s) ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}) "
                f"but no {INFO_NAME}: not a CamStyle folder of this tool; choose an empty or new --out")
    if info_path.exists() and not options.overwrite:
        previous = json.loads(info_path.read_text())
        if previous.get("checkpoint_sha256") != checkpoint_hash:
            raise CamStyleError(
                f"{out_dir} holds images of another checkpoint ({previous.get('checkpoint')}, sha256 "
                f"{previous.get('checkpoint_sha256', '?')[:12]}...); pass --overwrite to replace them or choose --out"
            )
        for key in OUTPUT_KEYS:
            if previous.get(key, OLDER_FOLDERS.get(key)) != getattr(options, key):
                raise CamStyleError(f"{out_dir} was written with {key}={previous.get(key)!r}, this run asks "
                                    f"{getattr(options, key)!r}; pass --overwrite or choose --out")
    atomic_write_json(info_path, {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": checkpoint_hash,
        "c_dim": info["c_dim"],
        "image_size": list(info["image_size"]),
        "num_cameras": num_cameras,
        **{key: getattr(options, key) for key in OUTPUT_KEYS},
    })


def _refuse_data_folder(out_dir: Path, records: Sequence[Record], protected_dirs: Sequence[str | os.PathLike]) -> None:
    """Refuse an output folder that is, or lies inside, a folder of source or test images."""
    out = out_dir.resolve()
    folders = {Path(r.path).parent.resolve() for r in records} | {Path(d).resolve() for d in protected_dirs}
    for folder in sorted(folders):
        if out == folder or folder in out.parents:
            raise CamStyleError(
                f"--out {out_dir} is {'inside ' if out != folder else ''}the data folder {folder}, which a data set "
                f"parser reads: the generated images would become data (and a rerun would translate them again); "
                f"choose a folder outside the data splits, e.g. the default bounding_box_train_camstyle")


def _autocast(device: torch.device, options: GenerateOptions):
    enabled = options.amp if device.type == "cuda" else options.cpu_bf16
    return torch.autocast(device.type, torch.bfloat16, enabled=enabled)


def _remove_stale_temporaries(out_dir: Path, own_names: set[str]) -> None:
    """Delete half-written files a killed run left for this shard's outputs (no one else writes them)."""
    for path in out_dir.iterdir():
        if TMP_MARKER in path.name and path.name.split(TMP_MARKER)[0] in own_names:
            path.unlink(missing_ok=True)


def _load_resized(record: Record, size_hw: tuple[int, int]) -> np.ndarray | BadImageError:
    try:
        return np.asarray(load_resized(record.path, size_hw), dtype=np.uint8)  # (H,W,3)
    except BadImageError as exc:
        return exc


def _prefetched_batches(jobs: list[_Job], batch_size: int, pool: ThreadPoolExecutor,
                        size_hw: tuple[int, int]) -> Iterator[tuple[list[_Job], list]]:
    """Yield (jobs, decoded images) while the next batch is already being decoded."""
    def submit(batch: list[_Job]) -> list[Future]:
        return [pool.submit(_load_resized, j.record, size_hw) for j in batch]

    batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    upcoming = submit(batches[0]) if batches else []
    for i, batch in enumerate(batches):
        current, upcoming = upcoming, (submit(batches[i + 1]) if i + 1 < len(batches) else [])
        yield batch, [f.result() for f in current]


def _flatten_targets(ok: list[tuple[_Job, np.ndarray]], c_dim: int):
    """One generator input per (image, target camera): images repeated, one-hot labels."""
    images = torch.from_numpy(np.stack([img for _, img in ok]))  # (B,H,W,3) uint8
    images = to_gan_range(images.permute(0, 3, 1, 2))  # (B,3,H,W) in [-1,1]
    flat = [(job, dst, name) for job, _ in ok for dst, name in job.targets]
    index = torch.repeat_interleave(torch.arange(len(ok)), torch.tensor([len(job.targets) for job, _ in ok]))
    labels = torch.zeros(len(flat), c_dim)
    labels[torch.arange(len(flat)), torch.tensor([dst for _, dst, _ in flat])] = 1.0
    return images[index], labels, flat


def _judge(discriminator, pixels: np.ndarray, labels: torch.Tensor, device: torch.device) -> int:
    """How many saved outputs the discriminator's classifier assigns to their target camera."""
    x = to_gan_range(torch.from_numpy(pixels).to(device).permute(0, 3, 1, 2))
    with torch.inference_mode():
        _, logits = discriminator(x)
    return int((logits.argmax(1) == labels.argmax(1)).sum().item())


def with_source_detail(fake: np.ndarray, source: Image.Image) -> np.ndarray:
    """source + bilinear-upsampled (fake - source at fake's size), rounded to uint8 (H, W, 3).

    `fake` (h, w, 3) uint8 is the generator's output for the source resized to (w, h) with PIL's
    bilinear filter, exactly as the generator's input was made.
    """
    h, w = fake.shape[:2]
    low = np.asarray(resize(source, (h, w)), dtype=np.float32)  # (h, w, 3), as the generator input was made
    delta = torch.from_numpy(fake.astype(np.float32) - low).permute(2, 0, 1)[None]  # (1, 3, h, w)
    up = torch.nn.functional.interpolate(delta, size=(source.height, source.width), mode="bilinear",
                                         align_corners=False)[0].permute(1, 2, 0).numpy()  # (H, W, 3)
    return np.clip(np.asarray(source, dtype=np.float32) + up + 0.5, 0, 255).astype(np.uint8)


def encode_image(image: Image.Image, image_format: str = "jpg", jpeg_quality: int = 95, **jpeg_options) -> bytes:
    """PNG or JPEG bytes of `image` (the one encoder of every CamStyle image this toolkit writes)."""
    buffer = io.BytesIO()
    if image_format == "png":
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=jpeg_quality, **jpeg_options)
    return buffer.getvalue()


def _write_output(array: np.ndarray, path: Path, record: Record, options: GenerateOptions) -> None:
    if options.keep_detail:
        array = with_source_detail(array, load_rgb(record.path))
    image = Image.fromarray(array)
    if options.resize_back and not options.keep_detail:
        with Image.open(record.path) as src:
            image = image.resize(src.size, Image.BILINEAR)
    atomic_write_bytes(path, encode_image(image, options.image_format, options.jpeg_quality))


def _drain(pending: list[Future], keep: int) -> list[Future]:
    """Wait for writes until at most `keep` are in flight (bounded memory); re-raise their errors."""
    while len(pending) > keep:
        pending.pop(0).result()
    return pending


def _write_manifest(out_dir: Path, records: Sequence[Record], num_cameras: int, options: GenerateOptions,
                    links: dict[int, frozenset[int]]) -> list[str]:
    """The planned outputs of the whole set (identical from every shard; readers skip missing files);
    returns their names. `links`: camera_links of `records`."""
    entries = [manifest_entry(record.path, record.pid, record.camid, dst, name)
               for record in sorted(records, key=lambda r: r.path)
               for dst, name in planned_outputs(record, num_cameras, options, links)]
    write_manifest(out_dir, entries)
    return [e["output"] for e in entries]
