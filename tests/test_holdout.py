"""Held-out training identities: disjoint ids, every image used once, the test split never read."""

import pytest
from test_camstyle import make_market

from reid_stargan.data.datasets import DatasetError, build_dataset
from reid_stargan.data.holdout import write_holdout_split


def test_split_holds_out_whole_identities(tmp_path):
    root = make_market(tmp_path / "data", ids=6, per_cam=2)  # 6 ids x 3 cameras x 2 images
    info = write_holdout_split(root, tmp_path / "val", num_ids=2, seed=0)
    val = build_dataset("market_layout", tmp_path / "val")
    train_ids = {r.pid for r in val.train}
    test_ids = {r.pid for r in val.query} | {r.pid for r in val.gallery}
    assert len(test_ids) == 2 and not train_ids & test_ids and len(train_ids) == 4
    assert len(val.query) == 2 * 3 and len(val.gallery) == 2 * 3  # one query per camera, the rest gallery
    assert len(val.train) + len(val.query) + len(val.gallery) == 6 * 3 * 2
    original = build_dataset("market_layout", root)
    assert {r.path for r in original.query} .isdisjoint({str(p) for p in (tmp_path / "val").rglob("*.jpg")})
    assert sorted(info["held_out_ids"]) == sorted(test_ids)
    again = write_holdout_split(root, tmp_path / "val2", num_ids=2, seed=0)
    assert again["held_out_ids"] == info["held_out_ids"]  # seeded


def test_bad_requests_are_refused(tmp_path):
    root = make_market(tmp_path / "data", ids=3)
    with pytest.raises(DatasetError, match="num_ids"):
        write_holdout_split(root, tmp_path / "val", num_ids=3)
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError):
        write_holdout_split(root, tmp_path / "exists", num_ids=1)
