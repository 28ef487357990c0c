"""Data set parsers, chosen by name from the `DATASETS` registry.

Each re-ID parser returns a `ReidDataset` of `Record(path, pid, camid)` lists; each face parser an
`AttributeDataset`. Parsers only read file names and list files; pixels are read later, through
`reid_stargan.data.imageio`, which reports bad files instead of crashing.

Example::

    from reid_stargan.data.datasets import build_dataset
    ds = build_dataset("market_layout", "../shared/data/cuhk03_market")
    print(ds.summary())
"""

from __future__ import annotations

import importlib
import os
import random
import re
from pathlib import Path

from reid_stargan.data.imageio import list_images
from reid_stargan.data.records import AttributeDataset, AttributeRecord, Record, ReidDataset
from reid_stargan.registry import Registry

DATASETS = Registry("data set")

# "0002_c1s1_000451_03.jpg" (Market-1501), "0001_c2_f0046182.jpg" (DukeMTMC-reID), "-1_c3s2_..." (junk).
MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")

MARKET_SPLITS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
MARKET_LAYOUT_HELP = (
    "expected Market-1501 layout:\n"
    "  ROOT/bounding_box_train/PPPP_cC..._NN.jpg\n"
    "  ROOT/query/PPPP_cC..._NN.jpg\n"
    "  ROOT/bounding_box_test/PPPP_cC..._NN.jpg\n"
    "(see datasets/README.md)"
)

# The official StarGAN default attribute set for CelebA.
CELEBA_DEFAULT_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
RAFD_EXPRESSIONS = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")


class DatasetError(ValueError):
    """A data set folder or list file that does not match the expected layout."""


def build_dataset(name: str, root: str | os.PathLike, **options) -> ReidDataset | AttributeDataset:
    """Parse the data set `name` found at `root`: a registered parser (`DATASETS.names()`), or
    `package.module:function` for one of the user's own (imported, then called like the built-in ones:
    `function(root, **options)` returning a ReidDataset; options it does not take go to `**_`)."""
    if ":" not in name:
        return DATASETS.get(name)(root, **options)
    module_name, _, attr = name.partition(":")
    try:
        parser = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise DatasetError(f"data.name={name!r}: cannot load the parser {attr!r} from module {module_name!r} "
                           f"({exc}); is the module on PYTHONPATH?") from exc
    if not callable(parser):
        raise DatasetError(f"data.name={name!r}: {attr} is not a function")
    return parser(root, **options)


# ----------------------------------------------------------------------------- Market-style folders
def parse_market_folder(folder: Path, *, bad_names: str = "skip",
                        unparsed_as_distractor: bool = False) -> tuple[list[Record], list[str]]:
    """Records of one Market-style folder, plus the file names that did not match the pattern.

    pid -1 (junk) is dropped; pid 0 (distractors) is kept. With `bad_names="error"` a non-matching
    name raises; with "skip" it is counted and returned.
    """
    if not folder.is_dir():
        raise DatasetError(f"missing folder {folder}\n{MARKET_LAYOUT_HELP}")
    names = list_images(folder)
    if not names:
        raise DatasetError(f"no images in {folder}\n{MARKET_LAYOUT_HELP}")
    records, unmatched = [], []
    for name in names:
        match = MARKET_NAME.match(name)
        if match is None:
            if unparsed_as_distractor:
                records.append(Record(str(folder / name), 0, -1))
                continue
            if bad_names == "error":
                raise DatasetError(f"{folder / name}: name does not match PPPP_cC... (Market-1501 pattern)")
            unmatched.append(name)
            continue
        pid, cam = int(match.group(1)), int(match.group(2))
        if pid == -1:
            continue
        if cam < 1:
            raise DatasetError(f"{folder / name}: camera id c{cam} is out of range (cameras count from c1)")
        records.append(Record(str(folder / name), pid, cam - 1))
    return records, unmatched


def _check_cameras(records: list[Record], num_cameras: int) -> None:
    for r in records:
        if not 0 <= r.camid < num_cameras and r.camid != -1:
            raise DatasetError(
                f"{r.path}: camera c{r.camid + 1} is outside the configured range c1..c{num_cameras}"
            )


def _market_dataset(name: str, root: Path, num_cameras: int | None, bad_names: str,
                    extra_gallery: Path | None = None, train_only: bool = False) -> ReidDataset:
    if not root.is_dir():
        raise DatasetError(f"data set root {root} does not exist\n{MARKET_LAYOUT_HELP}")
    splits, skipped = {}, {}
    for split, sub in MARKET_SPLITS.items():
        if train_only and split != "train":  # StarGAN reads the training split only
            splits[split] = []
            continue
        splits[split], bad = parse_market_folder(root / sub, bad_names=bad_names)
        if bad:
            skipped[split] = bad
    if extra_gallery is not None and not train_only:
        extra, _ = parse_market_folder(extra_gallery, unparsed_as_distractor=True)
        splits["gallery"] = splits["gallery"] + extra
    if not splits["train"]:
        raise DatasetError(f"{root / MARKET_SPLITS['train']}: no usable training images")
    # The cameras (StarGAN's domains) are the training split's: a stray file in query/ or the
    # gallery must not add a domain that has no training image.
    inferred = 1 + max(r.camid for r in splits["train"])
    for split in ("query", "gallery"):
        stray = [r for r in splits[split] if r.camid >= inferred]
        if stray and not num_cameras:
            raise DatasetError(
                f"{stray[0].path}: camera c{stray[0].camid + 1} has no training image (the training split "
                f"{root / MARKET_SPLITS['train']} has cameras c1..c{inferred}); remove the file, or set "
                f"data.num_cameras={1 + max(r.camid for r in stray)} if the test split really has more cameras")
    num_cameras = num_cameras or inferred
    for recs in splits.values():
        _check_cameras(recs, num_cameras)
    return ReidDataset(name, splits["train"], splits["query"], splits["gallery"], num_cameras, skipped)


def _find_root(root: str | os.PathLike, *candidates: str) -> Path:
    """Accept either the data set folder itself or its parent holding the official folder name."""
    root = Path(root)
    for sub in candidates:
        if (root / sub).is_dir():
            return root / sub
    return root


@DATASETS.register("market_layout")
def market_layout(root: str | os.PathLike, num_cameras: int = 0, bad_names: str = "skip",
                  train_only: bool = False, **_: object) -> ReidDataset:
    """Any folder in Market-1501 layout; the camera count is inferred unless given.

    `train_only`: read bounding_box_train/ alone (query and gallery empty, their folders not needed).
    """
    return _market_dataset(Path(root).name or "market_layout", Path(root), num_cameras or None, bad_names,
                           train_only=train_only)


@DATASETS.register("market1501")
def market1501(root: str | os.PathLike, with_distractors: bool = False, bad_names: str = "skip",
               train_only: bool = False, **_: object) -> ReidDataset:
    """Market-1501 (6 cameras). `with_distractors` appends the 500k distractor folder `images/`."""
    root = _find_root(root, "Market-1501-v15.09.15", "market1501", "Market-1501")
    extra = None
    if with_distractors and not train_only:  # the distractors are gallery images: StarGAN's reading skips them
        extra = root / "images"
        if not extra.is_dir():
            raise DatasetError(f"with_distractors=true but {extra} (the Market-1501 500k distractors) is missing")
    return _market_dataset("market1501", root, 6, bad_names, extra, train_only)


@DATASETS.register("dukemtmc")
def dukemtmc(root: str | os.PathLike, bad_names: str = "skip", train_only: bool = False,
             **_: object) -> ReidDataset:
    """DukeMTMC-reID (8 cameras), Market-1501 layout with names like 0001_c2_f0046182.jpg."""
    return _market_dataset("dukemtmc", _find_root(root, "DukeMTMC-reID"), 8, bad_names, train_only=train_only)


# ----------------------------------------------------------------------------- MSMT17 (list files)
MSMT_FOLDERS = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}


@DATASETS.register("msmt17")
def msmt17(root: str | os.PathLike, use_val: bool = False, train_only: bool = False, **_: object) -> ReidDataset:
    """MSMT17 from its list files (V1 `train/ test/` or V2 `mask_train_v2/ mask_test_v2/` folders).

    `use_val` adds list_val.txt to training; the conventional protocol (and the default) leaves it out.
    `train_only`: the test lists are not read (query and gallery empty).
    """
    root = _find_root(root, "MSMT17_V2", "MSMT17_V1", "MSMT17")
    folders = next(((tr, te) for tr, te in MSMT_FOLDERS.values() if (root / tr).is_dir()), None)
    if folders is None:
        raise DatasetError(
            f"{root}: no MSMT17 image folder; expected train/ + test/ (V1) or mask_train_v2/ + "
            "mask_test_v2/ (V2) beside list_train.txt, list_val.txt, list_query.txt, list_gallery.txt"
        )
    train_sub, test_sub = folders
    train = _msmt_list(root / train_sub, root / "list_train.txt")
    if use_val:
        train += _msmt_list(root / train_sub, root / "list_val.txt")
    query = [] if train_only else _msmt_list(root / test_sub, root / "list_query.txt")
    gallery = [] if train_only else _msmt_list(root / test_sub, root / "list_gallery.txt")
    for recs in (train, query, gallery):
        _check_cameras(recs, 15)
    return ReidDataset("msmt17", train, query, gallery, 15)


def _msmt_list(image_dir: Path, list_path: Path) -> list[Record]:
    if not list_path.is_file():
        raise DatasetError(f"missing MSMT17 list file {list_path}")
    records = []
    for line_no, line in enumerate(list_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rel, pid = line.split()
            # 0000/0000_000_01_0303morning_0015_0.jpg: the third field is the 1-based camera.
            cam = int(Path(rel).name.split("_")[2])
            records.append(Record(str(image_dir / rel), int(pid), cam - 1))
        except (ValueError, IndexError) as exc:
            raise DatasetError(f"{list_path}:{line_no}: cannot parse '{line}' ({exc})") from exc
    return records


# ----------------------------------------------------------------------------- face data sets
CELEBA_NUM_TEST = 1999  # official: lines with (i + 1) < 2000 after the shuffle, i.e. 1,999 images


@DATASETS.register("celeba")
def celeba(root: str | os.PathLike, attrs: list[str] | tuple[str, ...] = CELEBA_DEFAULT_ATTRS,
           num_test: int = CELEBA_NUM_TEST, split_seed: int = 1234, **_: object) -> AttributeDataset:
    """CelebA: `ROOT/images/*.jpg` and `ROOT/list_attr_celeba.txt`; multi-label over `attrs`.

    As in the official StarGAN code (yunjey/stargan data_loader.py), the attribute lines are shuffled
    with Python's Mersenne Twister seeded 1234 (the same permutation as its `random.seed(1234);
    random.shuffle(lines)`) and the first `num_test` images form the test split. The official code
    keeps line `i` (0-based) for test when `i + 1 < 2000`, so its test split holds 1,999 images:
    the default here.
    """
    root = Path(root)
    attr_file, image_dir = root / "list_attr_celeba.txt", root / "images"
    if not attr_file.is_file() or not image_dir.is_dir():
        raise DatasetError(f"{root}: expected images/ and list_attr_celeba.txt (see datasets/README.md)")
    lines = attr_file.read_text().splitlines()
    all_names = lines[1].split()
    if missing := [a for a in attrs if a not in all_names]:
        raise DatasetError(f"unknown CelebA attribute(s) {missing}; valid: {', '.join(all_names)}")
    columns = [all_names.index(a) for a in attrs]
    rows = [ln.split() for ln in lines[2:] if ln.strip()]
    random.Random(split_seed).shuffle(rows)
    records = []
    for row in rows:
        values = row[1:]
        if len(values) != len(all_names):
            raise DatasetError(f"{attr_file}: line for {row[0]} has {len(values)} values, expected {len(all_names)}")
        records.append(AttributeRecord(str(image_dir / row[0]), tuple(float(values[c] == "1") for c in columns)))
    return AttributeDataset("celeba", records[num_test:], records[:num_test], list(attrs), "multi")


@DATASETS.register("rafd")
def rafd(root: str | os.PathLike, **_: object) -> AttributeDataset:
    """RaFD: one folder per expression (`ROOT/train/<expression>/`, `ROOT/test/<expression>/`,
    or the expression folders directly under ROOT, then everything is training data)."""
    root = Path(root)
    split_dirs = {"train": root / "train", "test": root / "test"} if (root / "train").is_dir() else {"train": root}
    classes = sorted(p.name for p in split_dirs["train"].iterdir() if p.is_dir()) if split_dirs["train"].is_dir() else []
    if not classes:
        raise DatasetError(f"{root}: expected one folder per expression, e.g. {', '.join(RAFD_EXPRESSIONS)}")
    splits: dict[str, list[AttributeRecord]] = {"train": [], "test": []}
    for split, folder in split_dirs.items():
        for index, cls in enumerate(classes):
            cls_dir = folder / cls
            if cls_dir.is_dir():
                splits[split] += [AttributeRecord(str(cls_dir / n), (float(index),)) for n in list_images(cls_dir)]
    return AttributeDataset("rafd", splits["train"], splits["test"], classes, "single")
