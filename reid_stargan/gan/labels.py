"""Domain label layouts: one data set, or several joined by the mask vector `[c1 | c2 | ... | mask]`.

Labels travel in two forms:

- *raw* labels as the data set gives them: a class index (B,) long tensor for one-of-N domains
  (cameras, RaFD expressions; `label_type="single"`) or a (B, c) 0/1 float tensor for multi-label
  attributes (CelebA; `label_type="multi"`);
- the generator's *condition vector* (B, c_dim_g). With one data set it is the one-hot / attribute
  vector itself. With several (the paper's CelebA+RaFD setting, or two re-ID sets' cameras) it is
  every data set's block, zeros except in the block of the image's own data set, followed by the
  mask vector, a one-hot over data sets that tells G which block to read.

D's classification output has one block per data set (no mask); `LabelLayout.cls_slice(k)` picks the
block of data set k, so each data set's loss only sees its own logits.

Example::

    layout = LabelLayout([DomainSpec("market", 6, "single"), DomainSpec("duke", 8, "single")])
    layout.g_dim, layout.d_dim                        # 16, 14
    c = layout.condition(1, torch.tensor([2, 7]))     # (2, 16): zeros(6) | onehot(8) | [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")


@dataclass(frozen=True)
class DomainSpec:
    """One data set's domains: a name, its domain names (or just a count) and the label type."""

    name: str
    num_domains: int
    label_type: Literal["single", "multi"]
    domain_names: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.label_type not in ("single", "multi"):
            raise ValueError(f"{self.name}: label_type must be 'single' or 'multi', got {self.label_type!r}")
        if self.num_domains < 1:
            raise ValueError(f"{self.name}: needs at least one domain, got {self.num_domains}")
        if self.domain_names is not None and len(self.domain_names) != self.num_domains:
            raise ValueError(f"{self.name}: {len(self.domain_names)} domain names for {self.num_domains} domains")

    def names(self) -> list[str]:
        return list(self.domain_names) if self.domain_names else [f"{self.name}:{i}" for i in range(self.num_domains)]


class LabelLayout:
    """Where each data set's labels sit in G's condition vector and in D's classification output."""

    def __init__(self, specs: list[DomainSpec]):
        if not specs:
            raise ValueError("LabelLayout needs at least one DomainSpec")
        self.specs = list(specs)
        self.offsets = [sum(s.num_domains for s in specs[:k]) for k in range(len(specs))]
        self.d_dim = sum(s.num_domains for s in specs)  # D's classification outputs
        self.mask_dim = len(specs) if len(specs) > 1 else 0
        self.g_dim = self.d_dim + self.mask_dim  # G's label channels

    @property
    def multi(self) -> bool:
        return len(self.specs) > 1

    def cls_slice(self, k: int) -> slice:
        """Block of data set `k` in D's output (and in G's condition vector)."""
        return slice(self.offsets[k], self.offsets[k] + self.specs[k].num_domains)

    def domain_vector(self, k: int, raw: torch.Tensor) -> torch.Tensor:
        """Raw labels of data set `k` -> (B, c_k) float: one-hot for single, the 0/1 vector for multi."""
        spec = self.specs[k]
        if spec.label_type == "single":
            if raw.ndim != 1:
                raise ValueError(f"{spec.name}: single-label targets must be (B,) class indices, got {tuple(raw.shape)}")
            if raw.numel() and (int(raw.min()) < 0 or int(raw.max()) >= spec.num_domains):
                raise ValueError(f"{spec.name}: label {int(raw.max())} outside 0..{spec.num_domains - 1}")
            return torch.nn.functional.one_hot(raw.long(), spec.num_domains).float()
        if raw.ndim != 2 or raw.shape[1] != spec.num_domains:
            raise ValueError(f"{spec.name}: multi-label targets must be (B, {spec.num_domains}), got {tuple(raw.shape)}")
        return raw.float()

    def condition(self, k: int, raw: torch.Tensor) -> torch.Tensor:
        """G's condition vector (B, g_dim) for raw labels of data set `k`."""
        return self.embed(k, self.domain_vector(k, raw))

    def embed(self, k: int, vec: torch.Tensor) -> torch.Tensor:
        """Place a (B, c_k) domain vector of data set `k` into the full (B, g_dim) layout."""
        if not self.multi:
            return vec
        out = vec.new_zeros(vec.shape[0], self.g_dim)
        out[:, self.cls_slice(k)] = vec
        out[:, self.d_dim + k] = 1.0  # mask vector: which block is valid
        return out

    def fixed_targets(self, k: int, raw: torch.Tensor) -> list[torch.Tensor]:
        """One (B, c_k) target per domain of data set `k` for sample grids and tests.

        Single-label: every domain in turn. Multi-label (CelebA): as the official `create_labels`,
        a hair-colour column sets that colour and clears the other hair colours; any other
        attribute is flipped; all else keeps the image's own labels.
        """
        spec = self.specs[k]
        batch = raw.shape[0]
        if spec.label_type == "single":
            return [torch.nn.functional.one_hot(torch.full((batch,), i, dtype=torch.long), spec.num_domains).float()
                    for i in range(spec.num_domains)]
        base = self.domain_vector(k, raw)
        hair = [i for i, n in enumerate(spec.names()) if n in HAIR_COLOURS]
        targets = []
        for i in range(spec.num_domains):
            t = base.clone()
            if i in hair:
                t[:, hair] = 0.0
                t[:, i] = 1.0
            else:
                t[:, i] = 1.0 - t[:, i]
            targets.append(t)
        return targets

    def all_fixed_conditions(self, k: int, raw: torch.Tensor) -> list[torch.Tensor]:
        """G conditions that render images of data set `k` into every domain of every data set.

        For another data set j the targets are its plain domains (one-hot for single-label; for a
        multi-label set each attribute alone), as the official `train_multi` sample grid does.
        """
        out = []
        for j, spec in enumerate(self.specs):
            # Zeros: each attribute alone for a multi-label set; a single-label set reads only the batch size.
            labels = raw if j == k else torch.zeros(raw.shape[0], spec.num_domains)
            out += [self.embed(j, t) for t in self.fixed_targets(j, labels)]
        return out

    def column_names(self) -> list[str]:
        return [n for s in self.specs for n in s.names()]

    def to_dict(self) -> dict:
        return {"specs": [{"name": s.name, "num_domains": s.num_domains, "label_type": s.label_type,
                           "domain_names": list(s.domain_names) if s.domain_names else None} for s in self.specs]}

    @classmethod
    def from_dict(cls, d: dict) -> LabelLayout:
        return cls([DomainSpec(s["name"], s["num_domains"], s["label_type"],
                               tuple(s["domain_names"]) if s.get("domain_names") else None) for s in d["specs"]])


def permute_targets(raw: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Target labels as the official code draws them: the batch's own labels, shuffled."""
    return raw[torch.randperm(raw.shape[0], generator=generator)]


def linked_targets(raw: torch.Tensor, links: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Target cameras drawn uniformly among those linked to each image's own (`links` (c, c) bool),
    its own camera left out unless nothing else is linked. Not the official draw: see `train.targets`."""
    choices = links[raw]  # (B, c), a copy (advanced indexing)
    others = choices.clone()
    others[torch.arange(raw.shape[0]), raw] = False
    choices = torch.where(others.any(1, keepdim=True), others, choices)
    return torch.multinomial(choices.float(), 1, generator=generator).squeeze(1)
