"""CelebA test split as yunjey/stargan's data_loader.py makes it: seed-1234 shuffle, 1,999 test images."""

from __future__ import annotations

import random
from pathlib import Path

from reid_stargan.config import load_config
from reid_stargan.data.datasets import CELEBA_NUM_TEST, build_dataset
from reid_stargan.gan.config import StarGANConfig

ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


def write_attr_file(root: Path, num_images: int) -> list[str]:
    """A list_attr_celeba.txt of `num_images` rows (the parser needs images/ to exist, not each file)."""
    (root / "images").mkdir(parents=True)
    lines = [f"{i:06d}.jpg " + " ".join("1" if (i >> j) & 1 else "-1" for j in range(len(ATTRS)))
             for i in range(1, num_images + 1)]
    (root / "list_attr_celeba.txt").write_text(f"{num_images}\n{' '.join(ATTRS)}\n" + "\n".join(lines) + "\n")
    return lines


def official_test_names(lines: list[str]) -> list[str]:
    """The official procedure by hand: the module-level RNG seeded 1234 shuffles the attribute lines;
    line i (0-based) goes to test when i + 1 < 2000."""
    state = random.getstate()
    try:
        random.seed(1234)
        shuffled = list(lines)
        random.shuffle(shuffled)
    finally:
        random.setstate(state)
    return [line.split()[0] for i, line in enumerate(shuffled) if (i + 1) < 2000]


def test_default_split_holds_the_official_1999_images(tmp_path):
    lines = write_attr_file(tmp_path, 2600)
    ds = build_dataset("celeba", tmp_path, attrs=ATTRS)
    assert CELEBA_NUM_TEST == 1999
    assert len(ds.test) == 1999 and len(ds.train) == 2600 - 1999
    expected = official_test_names(lines)
    assert len(expected) == 1999
    assert [Path(r.path).name for r in ds.test] == expected  # same images, same order
    assert {Path(r.path).name for r in ds.train}.isdisjoint(expected)


def test_stargan_config_default_matches():
    assert load_config(StarGANConfig, None, []).data.celeba_num_test == 1999
