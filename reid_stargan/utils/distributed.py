"""torchrun / DistributedDataParallel helpers. No home-made launcher: `torchrun` sets the env vars."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group that `torchrun` describes in the environment, or run single-process.

    `device` is "auto" (CUDA when available), "cpu" or "cuda". Backend: nccl on CUDA, gloo on CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    require_device(device)
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world_size, local_rank, dev)


class DeviceUnavailableError(ValueError):
    """A config asks for a device this machine does not have."""


def require_device(device: str, key: str = "train.device / runtime.device") -> None:
    """Refuse, in one sentence, a CUDA device on a machine without one (instead of a CUDA error later)."""
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise DeviceUnavailableError(f"{key}={device!r}: use auto, cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"{key}={device!r} asks for a CUDA GPU, and this machine has none (torch.cuda.is_available() is "
            "False); run a CPU config (configs/pipeline/*_cpu.yaml) or pass --set <section>.device=cpu")


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast has fast kernels here (CUDA bf16, or oneDNN bf16 on AVX512-BF16 / AMX CPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
