"""Batch builders: exactly P ids x K images, CamStyle share, HHL composition, determinism."""

from __future__ import annotations

from collections import Counter

import pytest

from reid_stargan.camstyle.naming import CamStyleRecord
from reid_stargan.data.records import Record
from reid_stargan.reid.samplers import (
    CamStyleBatchBuilder,
    HHLBatchBuilder,
    PKBatchBuilder,
    describe_batch,
    num_generated,
)


def make_records(num_ids=10, per_id=5, short_id=3, short_count=2):
    recs = []
    for pid in range(1, num_ids + 1):
        n = short_count if pid == short_id else per_id
        recs += [Record(f"/x/{pid:04d}_c{i % 3 + 1}_{i}.jpg", pid, i % 3) for i in range(n)]
    return recs


def label_map(recs):
    return {pid: i for i, pid in enumerate(sorted({r.pid for r in recs}))}


def test_every_pk_batch_is_exactly_p_ids_by_k_images():
    recs = make_records()
    pk = PKBatchBuilder(recs, label_map(recs), num_ids=4, num_instances=4, seed=3)
    assert "1 of 10 identities" in pk.replacement_note and "with replacement" in pk.replacement_note
    paths_of = {r.path: r.pid for r in recs}
    batches = pk.epoch_batches(epoch=0, num_batches=30)
    assert len(batches) == 30
    seen = Counter()
    for batch in batches:
        counts = Counter(s.label for s in batch)
        assert len(counts) == 4 and set(counts.values()) == {4}
        for s in batch:
            assert label_map(recs)[paths_of[s.path]] == s.label and s.labelled and not s.generated
        for label in counts:  # identities with >= K images never repeat an image within the batch
            paths = [s.path for s in batch if s.label == label]
            if label != label_map(recs)[3]:
                assert len(set(paths)) == 4
        seen.update(counts)
    assert len(seen) == 10  # every identity shows up over an epoch
    assert pk.epoch_batches(0, 30) == batches  # a pure function of (seed, rank, epoch)
    assert pk.epoch_batches(1, 30) != batches
    assert PKBatchBuilder(recs, label_map(recs), 4, 4, seed=3, rank=1).epoch_batches(0, 30) != batches
    assert len({s.aug_seed for b in batches for s in b}) == 30 * 16


def test_pk_refuses_too_few_identities():
    recs = make_records(num_ids=3)
    with pytest.raises(ValueError, match="only 3"):
        PKBatchBuilder(recs, label_map(recs), num_ids=4, num_instances=2, seed=0)


@pytest.mark.parametrize("share,same_ids", [(0.264, True), (0.5, False), (0.1, True)])
def test_camstyle_share_per_batch(share, same_ids):
    recs = make_records()
    gen = [CamStyleRecord(f"/g/{r.pid:04d}_{i}_fake_{d}.jpg", r.pid, r.camid, d, r.path)
           for i, r in enumerate(recs) for d in range(3) if d != r.camid]
    builder = CamStyleBatchBuilder(recs, gen, label_map(recs), 4, 4, share, seed=0, same_ids=same_ids)
    G = num_generated(16, share)
    assert G == round(16 * share / (1 - share))
    gen_label = {g.path: label_map(recs)[g.pid] for g in gen}
    for batch in builder.epoch_batches(2, 20):
        d = describe_batch(batch)
        assert d["real"] == 16 and d["generated"] == G and d["ids"] == 4 and d["size"] == 16 + G
        assert abs(G / len(batch) - share) <= 0.5 / len(batch) + 1e-9
        real_labels = {s.label for s in batch if not s.generated}
        for s in batch:
            if s.generated:
                assert gen_label[s.path] == s.label
                if same_ids:
                    assert s.label in real_labels


def test_hhl_batch_composition():
    source = make_records()
    target = [Record(f"/t/{i:04d}_c1_{i}.jpg", 500 + i, 0) for i in range(12)]
    versions = {t.path: [f"{t.path[:-4]}_fake_{c}.jpg" for c in (2, 3, 4)] for t in target}
    builder = HHLBatchBuilder(source, label_map(source), versions, 4, 4, num_target=5, num_views=2, seed=0)
    for batch in builder.epoch_batches(0, 10):
        src = [s for s in batch if s.labelled]
        tgt = [s for s in batch if not s.labelled]
        assert len(src) == 16 and len({s.label for s in src}) == 4 and all(s.label < 10 for s in src)
        groups = Counter(s.label for s in tgt)
        assert len(groups) == 5 and set(groups.values()) == {3} and min(groups) >= 10
        for label in groups:
            members = [s for s in tgt if s.label == label]
            real = [s for s in members if not s.generated]
            assert len(real) == 1  # the target image itself, plus 2 of its own versions
            assert all(s.path in versions[real[0].path] for s in members if s.generated)
        assert len({s.path for s in tgt if not s.generated}) == 5
