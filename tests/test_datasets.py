import shutil
from pathlib import Path

import pytest
from conftest import real_dataset, write_image

from reid_stargan.data.config import DataConfig
from reid_stargan.data.datasets import DATASETS, DatasetError, build_dataset
from reid_stargan.data.imageio import BadImageError, format_bad, load_rgb, scan_images


def market_tree(root: Path, names: dict[str, list[str]]) -> Path:
    for sub, files in names.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name in files:
            write_image(root / sub / name)
    return root


MARKET_NAMES = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c6s3_085392_01.jpg",
                           "Thumbs.db.jpg"],
    "query": ["0001_c1s1_001051_00.jpg", "0001_c5s1_001051_00.jpg"],
    "bounding_box_test": ["-1_c1s1_000401_03.jpg", "0000_c1s1_000151_01.jpg", "0001_c2s1_000301_01.jpg",
                          "0001_c3s1_000551_01.jpg"],
}


def test_market1501_drops_junk_keeps_distractors_and_counts_bad_names(tmp_path):
    root = market_tree(tmp_path / "Market-1501-v15.09.15", MARKET_NAMES)
    ds = build_dataset("market1501", tmp_path)  # the parent folder is accepted too
    assert ds.num_cameras == 6
    assert [(r.pid, r.camid) for r in ds.train] == [(2, 0), (2, 1), (7, 5)]
    assert ds.num_train_pids == 2 and ds.train_pid_map() == {2: 0, 7: 1}
    assert {r.pid for r in ds.gallery} == {0, 1}  # -1 junk dropped, 0 distractor kept
    assert ds.skipped == {"train": ["Thumbs.db.jpg"]}
    assert all(Path(r.path).is_file() for r in ds.train)
    with pytest.raises(DatasetError, match="Thumbs.db.jpg"):
        build_dataset("market1501", root, bad_names="error")


def test_market1501_500k_distractors_are_appended(tmp_path):
    root = market_tree(tmp_path, MARKET_NAMES)
    for name in ("00000000.jpg", "0000_c3s1_000000_00.jpg"):
        write_image(root / "images" / name)
    plain = build_dataset("market1501", root)
    big = build_dataset("market1501", root, with_distractors=True)
    assert len(big.gallery) == len(plain.gallery) + 2
    assert all(r.pid == 0 for r in big.gallery[len(plain.gallery):])
    with pytest.raises(DatasetError, match="500k"):
        build_dataset("market1501", tmp_path / "elsewhere", with_distractors=True)
    # StarGAN reads the training split alone (DataConfig.build(train_only=True)): no distractor folder needed.
    shutil.rmtree(root / "images")
    assert build_dataset("market1501", root, with_distractors=True, train_only=True).train == plain.train


def test_duke_names_and_camera_range(tmp_path):
    names = {"bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c8_f0046300.jpg"],
             "query": ["0005_c2_f0046985.jpg"], "bounding_box_test": ["0005_c5_f0047000.jpg"]}
    ds = build_dataset("dukemtmc", market_tree(tmp_path / "DukeMTMC-reID", names).parent)
    assert ds.num_cameras == 8 and [r.camid for r in ds.train] == [1, 7]
    write_image(tmp_path / "DukeMTMC-reID" / "query" / "0005_c9_f0046985.jpg")
    with pytest.raises(DatasetError, match=r"0005_c9_f0046985.jpg.*c1..c8"):
        build_dataset("dukemtmc", tmp_path)


def test_market_layout_infers_camera_count_or_checks_it(tmp_path):
    names = {"bounding_box_train": ["0001_c1s1_000000_00.jpg", "0001_c10s1_000000_00.jpg"],
             "query": ["0003_c4s1_000000_00.jpg"], "bounding_box_test": ["0003_c7s1_000000_00.jpg"]}
    root = market_tree(tmp_path / "any", names)
    assert build_dataset("market_layout", root).num_cameras == 10
    with pytest.raises(DatasetError, match=r"0001_c10s1_000000_00.jpg.*outside"):
        build_dataset("market_layout", root, num_cameras=6)


def test_missing_and_empty_folders_name_the_path_and_layout(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist[\s\S]*bounding_box_train"):
        build_dataset("market_layout", tmp_path / "nope")
    root = market_tree(tmp_path / "m", {"bounding_box_train": ["0001_c1s1_000000_00.jpg"], "query": []})
    with pytest.raises(DatasetError, match=r"no images in .*query"):
        build_dataset("market_layout", root)
    (root / "query" / "0001_c1s1_000000_00.jpg").touch()
    with pytest.raises(DatasetError, match=r"missing folder .*bounding_box_test"):
        build_dataset("market_layout", root)


@pytest.mark.parametrize("version, folders", [("V1", ("train", "test")), ("V2", ("mask_train_v2", "mask_test_v2"))])
def test_msmt17_list_files(tmp_path, version, folders):
    root = tmp_path / f"MSMT17_{version}"
    train_dir, test_dir = (root / f for f in folders)
    lists = {
        "list_train.txt": [("0000/0000_000_01_0303morning_0015_0.jpg", 0), ("0000/0000_011_15_0303noon_0016_1.jpg", 0)],
        "list_val.txt": [("0001/0001_002_03_0303morning_0020_0.jpg", 1)],
        "list_query.txt": [("0000/0000_000_07_0303morning_0015_0.jpg", 0)],
        "list_gallery.txt": [("0000/0000_000_02_0303morning_0016_0.jpg", 0)],
    }
    for list_name, rows in lists.items():
        image_dir = train_dir if list_name in ("list_train.txt", "list_val.txt") else test_dir
        for rel, _ in rows:
            write_image(image_dir / rel)
        (root / list_name).parent.mkdir(parents=True, exist_ok=True)
        (root / list_name).write_text("".join(f"{rel} {pid}\n" for rel, pid in rows))
    ds = build_dataset("msmt17", tmp_path)
    assert ds.num_cameras == 15
    assert [r.camid for r in ds.train] == [0, 14]
    assert ds.query[0].camid == 6 and Path(ds.query[0].path).is_file()
    assert len(build_dataset("msmt17", root, use_val=True).train) == 3
    (root / "list_query.txt").write_text("garbage-line\n")
    with pytest.raises(DatasetError, match=r"list_query.txt:1"):
        build_dataset("msmt17", root)


def test_celeba_selects_attributes_and_splits_like_stargan(tmp_path):
    attr_names = ["5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    rows = []
    for i in range(10):
        vals = ["1" if (i + j) % 2 else "-1" for j in range(len(attr_names))]
        rows.append(f"{i:06d}.jpg " + " ".join(vals))
        write_image(tmp_path / "images" / f"{i:06d}.jpg")
    (tmp_path / "list_attr_celeba.txt").write_text(f"10\n{' '.join(attr_names)}\n" + "\n".join(rows) + "\n")
    ds = build_dataset("celeba", tmp_path, num_test=3)
    assert ds.label_type == "multi" and ds.c_dim == 5
    assert len(ds.train) == 7 and len(ds.test) == 3
    rec = next(r for r in ds.train + ds.test if r.path.endswith("000000.jpg"))
    assert rec.label == (1.0, 0.0, 1.0, 0.0, 1.0)  # Black_Hair.. Young for row 0
    with pytest.raises(DatasetError, match="Bald"):
        build_dataset("celeba", tmp_path, attrs=["Bald"])


def test_rafd_one_folder_per_expression(tmp_path):
    for split in ("train", "test"):
        for expr in ("angry", "happy", "neutral"):
            write_image(tmp_path / split / expr / f"{split}_{expr}.jpg")
    ds = build_dataset("rafd", tmp_path)
    assert ds.domain_names == ["angry", "happy", "neutral"] and ds.label_type == "single"
    assert sorted(r.label for r in ds.train) == [(0.0,), (1.0,), (2.0,)]
    assert len(ds.test) == 3
    with pytest.raises(DatasetError, match="one folder per expression"):
        build_dataset("rafd", tmp_path / "empty")


def test_unknown_dataset_lists_the_registry():
    with pytest.raises(KeyError, match="market1501"):
        build_dataset("market1502", ".")
    assert {"market1501", "dukemtmc", "msmt17", "market_layout", "celeba", "rafd"} <= set(DATASETS.names())
    with pytest.raises(ValueError, match="data.root"):
        DataConfig().build()


def test_truncated_and_garbage_images_are_reported(tmp_path):
    good = write_image(tmp_path / "good.jpg", size=(64, 128))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    assert load_rgb(good).size == (64, 128)
    with pytest.raises(BadImageError, match="truncated.jpg"):
        load_rgb(truncated)
    ok, bad = scan_images([str(good), str(truncated), str(garbage)])
    assert ok == [str(good)]
    assert [Path(p).name for p, _ in bad] == ["truncated.jpg", "garbage.jpg"]
    assert format_bad(bad).startswith("2 unreadable image(s) skipped: truncated.jpg")


@pytest.mark.parametrize("name, cams, train_ids, test_ids, counts", [
    ("cuhk03_market", 10, 767, 700, (7380, 1400, 5317)),
    ("pku_market", 2, 62, 12, (992, 24, 168)),
])
def test_real_sets_parse_with_documented_counts(name, cams, train_ids, test_ids, counts):
    ds = DataConfig(root=str(real_dataset(name))).build()
    assert ds.num_cameras == cams
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == counts
    assert ds.num_train_pids == train_ids
    assert len({r.pid for r in ds.query}) == test_ids
    assert not ({r.pid for r in ds.train} & {r.pid for r in ds.gallery})
    assert not ds.skipped
    assert {r.camid for r in ds.train} == set(range(cams))
