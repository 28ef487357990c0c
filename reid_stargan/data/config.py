"""The `data:` section shared by every tool's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reid_stargan.config import ConfigError
from reid_stargan.data.datasets import CELEBA_DEFAULT_ATTRS, CELEBA_NUM_TEST, build_dataset
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
    celeba_num_test: int = CELEBA_NUM_TEST  # celeba: images held out as its test split (official: 1999)
    verify_images: bool = True  # decode every image once at start; bad ones are reported and skipped
    # StarGAN: accept cameras with no training image (empty domains); refused by default
    allow_empty_cameras: bool = False

    def build(self, train_only: bool = False) -> ReidDataset | AttributeDataset:
        """The data set parsed from its file names (no pixels). `train_only`: the training split alone
        (StarGAN's reading), so the query and gallery folders need not exist."""
        if not self.root:
            raise ConfigError(f"data set '{self.name}' has an empty root: set it with --set data.root=PATH")
        return build_dataset(self.name, self.root, num_cameras=self.num_cameras, bad_names=self.bad_names,
                             with_distractors=self.with_distractors, use_val=self.use_val, attrs=self.attrs,
                             num_test=self.celeba_num_test, train_only=train_only)
