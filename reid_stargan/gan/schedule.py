"""Learning-rate schedules of the StarGAN loop (`train.lr_schedule`).

Both are pure functions of the iteration, so a resumed run uses exactly the lr a straight run would.
`i` is the 0-based iteration of `num_iters`; the returned value is the lr that iteration's updates use.

``linear`` (the default, :func:`lr_at`): constant, then linear decay to exactly 0 at the last iteration::

    lr(i) = base                                          for i <  num_iters - num_iters_decay
    lr(i) = base * (num_iters - 1 - i) / num_iters_decay  otherwise  (last iteration: exactly 0)

``official`` (:func:`official_lr_at`): the schedule of yunjey/stargan ``solver.py`` and of HHL's
stargan4reid copy. After (1-based) iteration ``k`` it subtracts ``base / num_iters_decay`` whenever
``k % lr_update_step == 0 and k > num_iters - num_iters_decay``; so iteration ``i`` uses::

    lr(i) = base - u(i) * base / num_iters_decay,   u(i) = #{k <= i : k % lr_update_step == 0, k > num_iters - num_iters_decay}

With the official defaults (num_iters 200000, num_iters_decay 100000, lr_update_step 1000, base 1e-4)
that is 99 steps of 1e-9 inside training: the last iteration uses 9.9901e-5, and the 100th step, taken
after the last iteration, leaves 9.99e-5 (the value the official log prints last). HHL's 220000 / 110000
gives 9.990091e-5 in the last iteration. Either way the lr is constant in effect.
"""

from __future__ import annotations

LR_SCHEDULES = ("linear", "official")


def lr_at(i: int, base_lr: float, num_iters: int, num_iters_decay: int) -> float:
    """Learning rate of iteration `i` (0-based) under the ``linear`` schedule."""
    if not 0 <= num_iters_decay <= num_iters:
        raise ValueError(f"num_iters_decay ({num_iters_decay}) must be within 0..num_iters ({num_iters})")
    if num_iters_decay == 0 or i < num_iters - num_iters_decay:
        return base_lr
    return base_lr * max(0, num_iters - 1 - i) / num_iters_decay


def official_lr_at(i: int, base_lr: float, num_iters: int, num_iters_decay: int,
                   lr_update_step: int = 1000) -> float:
    """Learning rate of iteration `i` (0-based) under the ``official`` schedule (see the module docstring).

    Equal to the official running subtraction up to float rounding (one product here instead of
    u(i) subtractions: a relative difference of a few 1e-15).
    """
    if not 0 <= num_iters_decay <= num_iters:
        raise ValueError(f"num_iters_decay ({num_iters_decay}) must be within 0..num_iters ({num_iters})")
    if lr_update_step < 1:
        raise ValueError(f"lr_update_step must be >= 1, got {lr_update_step}")
    if num_iters_decay == 0:  # the official code would divide by zero; nothing decays
        return base_lr
    start = num_iters - num_iters_decay
    # multiples k of lr_update_step with start < k <= i: each was applied after iteration k (1-based)
    updates = max(0, i // lr_update_step - start // lr_update_step)
    return base_lr - updates * (base_lr / num_iters_decay)


def schedule_lr(schedule: str, i: int, base_lr: float, num_iters: int, num_iters_decay: int,
                lr_update_step: int = 1000) -> float:
    """Learning rate of iteration `i` under the named schedule (one of :data:`LR_SCHEDULES`)."""
    if schedule == "linear":
        return lr_at(i, base_lr, num_iters, num_iters_decay)
    if schedule == "official":
        return official_lr_at(i, base_lr, num_iters, num_iters_decay, lr_update_step)
    raise ValueError(f"lr schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
