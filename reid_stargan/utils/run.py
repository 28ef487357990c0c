"""The run lifecycle both trainers share (StarGAN and re-ID), so that they cannot drift apart.

    info = open_run(run_dir, TOOL, cfg.train.device, finished=lambda d: (d / METRICS).is_file())
    if info is None: ...                                 # finished: nothing to do
    cfg, changes = resume_config(ReidConfig, saved["config"], cfg, FROZEN_KEYS, where, overrides)
    seed = resolve_seed(cfg.train.seed, info)            # drawn once, the same on every rank

One resume rule for both trainers: a resumed run continues on the config it saved. Keys that define
the models or the data order (the trainer's FROZEN_KEYS) may not differ; other keys change only when
the caller names them as overrides, and every change is logged and recorded in the run folder.
The rest is the plumbing around the loop: progress bars with a whole-run ETA, the TensorBoard
writer (one folder name, `tb/`), autocast and channels_last, and the DDP weight checksum.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from reid_stargan.config import apply_overrides, config_to_dict, from_dict
from reid_stargan.utils.distributed import DistInfo, bf16_supported, init_distributed
from reid_stargan.utils.io import append_jsonl
from reid_stargan.utils.rundir import RunLogger, claim_run_dir, remove_stale_temporaries
from reid_stargan.utils.seed import draw_seed

T = TypeVar("T")
TENSORBOARD_DIR = "tb"
CHANGES = "config_changes.jsonl"  # one record per resume that changed keys


class ResumeConfigError(ValueError):
    """A resume would change a key that defines the models or the data order."""


# ----------------------------------------------------------------------------- folder
def open_run(run_dir: Path, tool: str, device: str, finished: Callable[[Path], bool]) -> DistInfo | None:
    """Claim `run_dir` for `tool` and start the process group; None when the run is already finished.

    Another tool's folder, or the user's own files, are refused before anything is read or written.
    """
    claim_run_dir(run_dir, tool, write=False)
    if finished(run_dir):
        return None
    info = init_distributed(device)
    if info.is_main:
        claim_run_dir(run_dir, tool)
        remove_stale_temporaries(run_dir)  # a killed writer's *.tmp-* files; this process owns the folder
    return info


def resolve_seed(seed: int | None, info: DistInfo) -> int:
    """The config's seed, or one drawn on rank 0 and broadcast, so that every rank agrees."""
    if seed is not None:
        return seed
    box = [draw_seed()]
    if info.distributed:
        dist.broadcast_object_list(box, src=0)
    return box[0]


# ----------------------------------------------------------------------------- resume
def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}: dotted keys, as `--set` writes them."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resume_config(cls: type[T], saved: dict, given: Any, frozen_keys: Sequence[str], where: Path,
                  overrides: Iterable[str] = (), error: type[Exception] = ResumeConfigError) -> tuple[T, dict]:
    """The config a resumed run continues on, and its changes to the saved one: {key: [saved, new]}.

    The result is the run's `saved` config with `overrides` applied. Refused (as `error`): a frozen key
    that `overrides` would change, or that the caller's config `given` (None: none) sets to a value
    other than both its default and the saved one; the message names both sides. Other keys where
    `given` differs are not taken unless named in `overrides` (`ignored_differences` lists them).
    """
    cfg = from_dict(cls, apply_overrides(saved, list(overrides)))
    # `saved` as this toolkit reads it: keys added since are at their defaults, moved keys at their new names.
    old, new = flatten(config_to_dict(from_dict(cls, saved))), flatten(config_to_dict(cfg))
    frozen: dict[str, str] = {}
    trees = [new]
    if given is not None:  # a default value is not a request to change the run
        defaults = flatten(config_to_dict(from_dict(cls, {})))
        trees.append({k: v for k, v in flatten(config_to_dict(given)).items() if v != defaults.get(k)})
    for tree in trees:
        for key, value in _differences(old, tree):
            if any(key == f or key.startswith(f + ".") for f in frozen_keys):  # a frozen key or inside one
                frozen.setdefault(key, f"{key}: checkpoint {old.get(key)!r} vs config {value!r}")
    if frozen:
        raise error(f"{where} does not match the config: {'; '.join(frozen.values())}. {', '.join(frozen)} "
                    "cannot change in a resumed run (they define the models or the data order); start a new "
                    "run instead")
    return cfg, {key: [old.get(key), value] for key, value in _differences(old, new)}


def _differences(old: dict, new: dict) -> list[tuple[str, Any]]:
    """(key, new value) where `new` differs from `old`; a seed left unset (None) differs from nothing."""
    return [(k, v) for k, v in sorted(new.items()) if old.get(k) != v and not (k.endswith(".seed") and v is None)]


def ignored_differences(saved_cfg: Any, given: Any) -> list[str]:
    """Keys where the caller's config differs from the resumed run's and was not taken (for the log)."""
    old, new = flatten(config_to_dict(saved_cfg)), flatten(config_to_dict(given))
    return [f"{k}={v!r} (run: {old.get(k)!r})" for k, v in _differences(old, new)]


def record_changes(run_dir: Path, changes: dict, step: int | None, log: RunLogger | None = None) -> None:
    """Log each change a resume makes to the saved config, and append it to config_changes.jsonl."""
    if not changes:
        return
    for key, (a, b) in changes.items():
        (log.info if log is not None else print)(f"resume: {key}: {a!r} -> {b!r}")
    append_jsonl(run_dir / CHANGES, {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "at_step": step,
                                     "changes": changes})


# ----------------------------------------------------------------------------- the loop's plumbing
def progress_bar(total: int, initial: int, enabled: bool, desc: str, unit: str = "it"):
    """A tqdm bar over the whole run (so its ETA is the run's), or a no-op object when disabled."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, dynamic_ncols=True, desc=desc, unit=unit)


def tensorboard_writer(run_dir: Path, enabled: bool, log: RunLogger):
    """A SummaryWriter in run_dir/tb/, or None (disabled, or TensorBoard not installed)."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter  # lazy: a heavy import
    except ImportError as exc:  # optional: stats.jsonl has the same numbers
        log.info(f"TensorBoard unavailable ({exc}); logging to stats.jsonl only")
        return None
    return SummaryWriter(str(run_dir / TENSORBOARD_DIR))


def amp_dtype(device: torch.device, enabled: bool, cuda_dtype: torch.dtype) -> torch.dtype | None:
    """The autocast dtype of a run: `cuda_dtype` on CUDA, bf16 on CPUs with bf16 kernels, else None."""
    if not enabled:
        return None
    if device.type == "cuda":
        return cuda_dtype
    return torch.bfloat16 if bf16_supported(device) else None


def precision_name(requested: bool, dtype: torch.dtype | None) -> str:
    """How a run computes, for its first log line: the autocast dtype, or fp32 and why."""
    if dtype is not None:
        return f"{str(dtype).removeprefix('torch.')} autocast"
    if requested:  # amp_dtype gives None for a request only on CPUs without bf16 kernels
        return "fp32 (amp requested, but this CPU has no bf16 kernels: no AVX512-BF16 or AMX)"
    return "fp32"


def autocast(device: torch.device, dtype: torch.dtype | None):
    """The autocast context of `amp_dtype`'s result (a no-op for None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def channels_last(x, device: torch.device, enabled: bool):
    """channels_last for a module or a 4-d batch on CUDA; on CPU it measured slower (docs/RESULTS.md)."""
    if not (enabled and device.type == "cuda"):
        return x
    if isinstance(x, torch.nn.Module):
        return x.to(memory_format=torch.channels_last)
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


def replicas_in_sync(params: Iterable[torch.Tensor], info: DistInfo) -> bool:
    """DDP invariant: every rank holds the same weights (an all-reduced float64 checksum, min == max)."""
    if not info.distributed:
        return True
    total = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1).cpu()
    if dist.get_backend() == "nccl":
        total = total.to(info.device)
    lo, hi = total.clone(), total.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(lo.item() == hi.item())
