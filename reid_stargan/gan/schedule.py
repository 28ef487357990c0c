"""Learning-rate schedule: constant, then linear decay to exactly 0 at the last iteration.

`lr_at(i, ...)` is the learning rate used by iteration `i` (0-based) of `num_iters`:

    lr(i) = base                                          for i <  num_iters - num_iters_decay
    lr(i) = base * (num_iters - 1 - i) / num_iters_decay  otherwise  (last iteration: exactly 0)

The official yunjey/stargan code instead subtracts `base / num_iters_decay` once every
`lr_update_step` (1000) iterations inside the decay window, so with its defaults
(num_iters 200000, num_iters_decay 100000, base 1e-4) it takes 100 steps of 1e-9 and ends at
9.99e-5, i.e. it hardly decays at all. `official_lr_at` reproduces that for reference.
"""

from __future__ import annotations


def lr_at(i: int, base_lr: float, num_iters: int, num_iters_decay: int) -> float:
    """Learning rate of iteration `i` (0-based)."""
    if not 0 <= num_iters_decay <= num_iters:
        raise ValueError(f"num_iters_decay ({num_iters_decay}) must be within 0..num_iters ({num_iters})")
    if num_iters_decay == 0 or i < num_iters - num_iters_decay:
        return base_lr
    return base_lr * max(0, num_iters - 1 - i) / num_iters_decay


def official_lr_at(i: int, base_lr: float, num_iters: int, num_iters_decay: int,
                   lr_update_step: int = 1000) -> float:
    """Learning rate the official code uses in iteration `i` (0-based): decremented after
    iteration `k` (1-based count) whenever `k % lr_update_step == 0 and k > num_iters - num_iters_decay`."""
    start = num_iters - num_iters_decay
    # number of k in 1..i (updates happen after iteration k, so they affect iterations >= k)
    updates = sum(1 for k in range(lr_update_step, i + 1, lr_update_step) if k > start)
    return base_lr - updates * (base_lr / num_iters_decay)
