"""The `data:` section shared by every tool's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reid_stargan.data.datasets import CELEBA_DEFAULT_ATTRS, build_dataset
from reid_stargan.data.records import AttributeDataset, ReidDataset


@dataclass
class DataConfig:
    name: str = "market_layout"  # a key of reid_stargan.data.datasets.DATASETS
    root: str = ""
    num_cameras: int = 0  # 0: infer from the file names (market_layout only)
    bad_names: Literal["skip", "error"] = "skip"  # file names that do not match the data set's pattern
    with_distractors: bool = False  # market1501: append the 500k distractor gallery
    use_val: bool = False  # msmt17: add list_val.txt to training
    attrs: list[str] = field(default_factory=lambda: list(CELEBA_DEFAULT_ATTRS))  # celeba
    verify_images: bool = True  # decode every image once at start; bad ones are reported and skipped
    # StarGAN: accept cameras with no training image (empty domains); refused by default
    allow_empty_cameras: bool = False

    def build(self) -> ReidDataset | AttributeDataset:
        if not self.root:
            raise ValueError("data.root is empty: set it in the config or with --set data.root=PATH")
        return build_dataset(
            self.name, self.root, num_cameras=self.num_cameras, bad_names=self.bad_names,
            with_distractors=self.with_distractors, use_val=self.use_val, attrs=self.attrs,
        )
