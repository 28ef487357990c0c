"""Seeding and RNG state capture, so a resumed run continues the exact random stream."""

from __future__ import annotations

import random

import numpy as np
import torch


def draw_seed() -> int:
    """A fresh seed for configs that left it unset (the caller writes it back into the config)."""
    return int(np.random.SeedSequence().entropy % (2**31 - 1))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def capture_rng_state() -> dict:
    """Python, numpy, torch CPU (and CUDA when present) generator states, checkpoint-safe types."""
    np_state = np.random.get_state()
    state = {
        "python": list(_tuple_to_list(random.getstate())),
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(_list_to_tuple(state["python"]))
    np_state = state["numpy"]
    np.random.set_state(
        ("MT19937", np_state["key"].numpy().astype(np.uint32), np_state["pos"], np_state["has_gauss"],
         np_state["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuple_to_list(value):
    # random.getstate() nests tuples; weights_only checkpoints accept lists and ints.
    return [_tuple_to_list(v) for v in value] if isinstance(value, tuple) else value


def _list_to_tuple(value):
    return tuple(_list_to_tuple(v) for v in value) if isinstance(value, list) else value
