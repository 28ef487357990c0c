"""Batch builders: P identities x K images (PK) or N random images, plus CamStyle images, plus HHL
target groups (and HHL's separate random CE batch).

Each builder returns one epoch's batches as lists of `Sample`s, drawn from a generator seeded by
(run seed, rank, epoch): an epoch's batches are a pure function of those three numbers, so a run
resumed mid-epoch rebuilds the same list and skips what it already did. Under DDP every rank
draws its own P x K batch (seed differs by rank).

    pk = PKBatchBuilder(records, label_of, num_ids=16, num_instances=4, seed=0)
    batches = pk.epoch_batches(epoch=0, num_batches=100)   # list[list[Sample]], each 64 long
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from reid_stargan.reid.data import Sample, sample_seed


def _samples(slots: Sequence[tuple], seed: int, epoch: int, it: int, rank: int, start: int = 0) -> list[Sample]:
    """`Sample`s of the (path, label, generated, labelled) `slots` that start at position `start` of
    batch `it`; each slot's augmentation is seeded by its position in the batch."""
    return [Sample(*slot, sample_seed(seed, epoch, it, start + i, rank)) for i, slot in enumerate(slots)]


class _Pool:
    """Draws items of one group without replacement, reshuffling when exhausted."""

    def __init__(self, items: Sequence, rng: np.random.Generator):
        self.items, self.rng, self.order = list(dict.fromkeys(items)), rng, []

    def draw(self, n: int) -> list:
        if len(self.items) < n:  # too few: sample with replacement, as torchreid does
            return [self.items[i] for i in self.rng.integers(0, len(self.items), size=n)]
        out: list = []
        while len(out) < n:
            if not self.order:
                self.order = list(self.rng.permutation(len(self.items)))
            i = self.order.pop()
            if self.items[i] not in out:
                out.append(self.items[i])
        return out


class PKBatchBuilder:
    """P distinct identities x K images each, identities cycled in a shuffled order.

    `records` have `.path` and `.pid`; `label_of` maps pid -> contiguous label. Identities with
    fewer than K images are sampled with replacement; `replacement_note` says so (log it once).
    """

    def __init__(self, records: Sequence, label_of: dict[int, int], num_ids: int, num_instances: int,
                 seed: int, rank: int = 0):
        self.by_pid: dict[int, list[str]] = defaultdict(list)
        for r in records:
            self.by_pid[r.pid].append(r.path)
        self.pids = sorted(self.by_pid)
        if len(self.pids) < num_ids:
            raise ValueError(f"PK sampler: P={num_ids} identities per batch but only {len(self.pids)} in the set")
        self.label_of, self.P, self.K, self.seed, self.rank = label_of, num_ids, num_instances, seed, rank
        few = [p for p in self.pids if len(self.by_pid[p]) < num_instances]
        self.replacement_note = (
            f"PK sampler: {len(few)} of {len(self.pids)} identities have fewer than K={num_instances} images; "
            "their K slots are drawn with replacement" if few else ""
        )

    def _rng(self, epoch: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.rank, epoch, stream])

    def pid_batches(self, epoch: int, num_batches: int) -> list[list[int]]:
        """The P identities of every batch of `epoch`."""
        rng, queue, out = self._rng(epoch), [], []
        for _ in range(num_batches):
            chosen: list[int] = []
            deferred: list[int] = []  # met again within this batch after a reshuffle: kept for later
            while len(chosen) < self.P:
                if not queue:
                    queue = [self.pids[i] for i in rng.permutation(len(self.pids))]
                pid = queue.pop()
                (deferred if pid in chosen else chosen).append(pid)
            queue = deferred + queue
            out.append(chosen)
        return out

    def epoch_batches(self, epoch: int, num_batches: int) -> list[list[Sample]]:
        rng = self._rng(epoch, 1)
        pools = {pid: _Pool(paths, rng) for pid, paths in self.by_pid.items()}
        batches = []
        for it, pids in enumerate(self.pid_batches(epoch, num_batches)):
            slots = [(path, self.label_of[pid], False, True) for pid in pids for path in pools[pid].draw(self.K)]
            batches.append(_samples(slots, self.seed, epoch, it, self.rank))
        return batches


class RandomBatchBuilder:
    """`batch_size` images at random, without replacement within an epoch (a fresh permutation per
    epoch): the open-reid `DataLoader(shuffle=True, drop_last=True)` batch of CamStyle's IDE and of
    HHL's identity loss. Labels are the images' identities, as in the PK builder."""

    replacement_note = ""

    def __init__(self, records: Sequence, label_of: dict[int, int], batch_size: int, seed: int, rank: int = 0):
        if len(records) < batch_size:
            raise ValueError(f"random batches of {batch_size} images but only {len(records)} in the set")
        self.slots = [(r.path, label_of[r.pid], False, True) for r in records]
        self.N, self.seed, self.rank = batch_size, seed, rank

    def epoch_batches(self, epoch: int, num_batches: int) -> list[list[Sample]]:
        # RNG stream 5: apart from the streams 0-4 of the P x K, CamStyle and HHL draws of the same epoch
        pool = _Pool(range(len(self.slots)), np.random.default_rng([self.seed, self.rank, epoch, 5]))
        return [_samples([self.slots[i] for i in pool.draw(self.N)], self.seed, epoch, it, self.rank)
                for it in range(num_batches)]


def _reseeded(batch: list[Sample], seed: int, epoch: int, it: int, rank: int) -> list[Sample]:
    """`batch` with every slot's augmentation seeded by its final position (parts built apart
    would otherwise repeat each other's seeds)."""
    return [s._replace(aug_seed=sample_seed(seed, epoch, it, slot, rank)) for slot, s in enumerate(batch)]


def num_generated(real_batch: int, share: float) -> int:
    """Generated images to add to `real_batch` real ones so they make `share` of the batch."""
    return int(round(real_batch * share / (1.0 - share)))


class CamStyleBatchBuilder(PKBatchBuilder):
    """A real batch plus G generated images, G / (real + G) = `share`; the real images come first.

    The real batch is P x K, or with `real_batch` > 0 that many random images (`RandomBatchBuilder`,
    CamStyle's IDE: 128 real + 46 generated). With `same_ids` (P x K only) the generated images
    belong to the batch's own P identities (spread evenly, so they act as cross-camera positives);
    otherwise they are drawn from the whole generated set, as the official CamStyle loader does.
    """

    def __init__(self, records: Sequence, generated: Sequence, label_of: dict[int, int], num_ids: int,
                 num_instances: int, share: float, seed: int, rank: int = 0, same_ids: bool = True,
                 real_batch: int = 0):
        if real_batch and same_ids:
            raise ValueError("same_ids needs P x K real batches (real_batch=0)")
        if real_batch:  # no P x K batch is drawn: P needs no identities and K no replacement note
            num_ids = min(num_ids, len({r.pid for r in records}))
        super().__init__(records, label_of, num_ids, num_instances, seed, rank)
        self.random = RandomBatchBuilder(records, label_of, real_batch, seed, rank) if real_batch else None
        if self.random is not None:
            self.replacement_note = ""
        self.gen_by_pid: dict[int, list[str]] = defaultdict(list)
        for g in generated:
            self.gen_by_pid[g.pid].append(g.path)
        self.gen_pids = sorted(self.gen_by_pid)
        self.G = num_generated(self.real_size, share)
        self.same_ids = same_ids
        if self.G and not self.gen_pids:
            raise ValueError("CamStyle mode with share > 0 needs at least one generated image")

    @property
    def real_size(self) -> int:
        return self.random.N if self.random is not None else self.P * self.K

    @property
    def batch_size(self) -> int:
        return self.real_size + self.G

    def epoch_batches(self, epoch: int, num_batches: int) -> list[list[Sample]]:
        if self.random is not None:
            real, pid_lists = self.random.epoch_batches(epoch, num_batches), [[]] * num_batches
        else:
            real, pid_lists = super().epoch_batches(epoch, num_batches), self.pid_batches(epoch, num_batches)
        rng = self._rng(epoch, 2)
        pools = {pid: _Pool(paths, rng) for pid, paths in self.gen_by_pid.items()}
        everything = _Pool([(pid, p) for pid in self.gen_pids for p in self.gen_by_pid[pid]], rng)
        out = []
        for it, (batch, pids) in enumerate(zip(real, pid_lists)):
            picks: list[tuple[int, str]] = []
            if self.same_ids:
                # G over P identities: G // P each, the remainder to identities chosen at random.
                counts = np.full(self.P, self.G // self.P)
                counts[rng.permutation(self.P)[: self.G % self.P]] += 1
                for pid, n in zip(pids, counts):
                    if n and pid in pools:
                        picks += [(pid, p) for p in pools[pid].draw(int(n))]
            picks += everything.draw(self.G - len(picks))  # the rest (without same_ids: all G) from the whole set
            slots = [(p, self.label_of[pid], True, True) for pid, p in picks]
            out.append(batch + _samples(slots, self.seed, epoch, it, self.rank, start=len(batch)))
        return out


class HHLBatchBuilder(PKBatchBuilder):
    """[CE source batch] + source P x K (labelled) + T target images, each with V of its camera-style
    versions (V = 0: all of them).

    Target groups get pseudo-labels `num_source_classes + t` (t = the group's slot in the batch),
    so one batch-hard triplet over P x K + target gives HHL's pairs: a target image's positives are
    its own versions, its negatives every other target and source image; a source anchor's negatives
    include the target images. `target_versions` maps a target image path -> its generated paths.
    With `ce_batch` > 0 the batch starts with that many random source images for the identity loss
    (HHL's separate CE loader); the layout is then [ce_batch | P x K | target groups].
    """

    def __init__(self, records: Sequence, label_of: dict[int, int], target_versions: dict[str, list[str]],
                 num_ids: int, num_instances: int, num_target: int, num_views: int, seed: int, rank: int = 0,
                 ce_batch: int = 0):
        super().__init__(records, label_of, num_ids, num_instances, seed, rank)
        self.targets = sorted(t for t, v in target_versions.items() if v)
        if len(self.targets) < num_target:
            raise ValueError(f"HHL: {num_target} target images per batch but only {len(self.targets)} "
                             "have camera-style versions")
        self.versions = target_versions
        self.T, self.V = num_target, num_views
        self.num_source_classes = len(label_of)
        self.ce = RandomBatchBuilder(records, label_of, ce_batch, seed, rank) if ce_batch else None

    @property
    def batch_size(self) -> int:
        """The batch's size (with V = 0: the largest, every target image having the most versions)."""
        views = self.V or max(len(v) for v in self.versions.values())
        ce = self.ce.N if self.ce is not None else 0
        return ce + self.P * self.K + self.T * (1 + views)

    def epoch_batches(self, epoch: int, num_batches: int) -> list[list[Sample]]:
        source = super().epoch_batches(epoch, num_batches)
        target_pool, view_rng = _Pool(self.targets, self._rng(epoch, 3)), self._rng(epoch, 4)
        ce = self.ce.epoch_batches(epoch, num_batches) if self.ce is not None else None
        out = []
        for it, batch in enumerate(source):
            extra = []
            for t, target in enumerate(target_pool.draw(self.T)):
                label = self.num_source_classes + t
                views = _Pool(self.versions[target], view_rng).draw(self.V) if self.V else list(self.versions[target])
                extra += [(target, label, False, False)] + [(v, label, True, False) for v in views]
            batch = batch + _samples(extra, self.seed, epoch, it, self.rank, start=len(batch))
            out.append(batch if ce is None else _reseeded(ce[it] + batch, self.seed, epoch, it, self.rank))
        return out


def describe_batch(batch: Sequence[Sample]) -> dict:
    """Counts of one batch: identities, real/generated images, target images (for logs and tests)."""
    labelled = [s for s in batch if s.labelled]
    return {
        "size": len(batch),
        "ids": len({s.label for s in labelled if not s.generated}),
        "real": sum(not s.generated for s in labelled),
        "generated": sum(s.generated for s in labelled),
        "target": sum(not s.labelled for s in batch),
    }
