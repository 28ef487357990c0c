"""The three training modes, in the MODES registry. Each builds its inputs (`build`), its batches and
its loss; the loop in trainer.py is shared.

* baseline: P x K (or N random) real images; smoothed identity CE + batch-hard triplet.
* camstyle (Zhong et al. CVPR 2018): + generated images at a share of the batch, with LSR targets
  (epsilon 0.1) for the identity loss, weighted as the official code does (mean over real + mean
  over generated) or pooled; optionally in the triplet as positives / negatives.
* hhl (Zhong et al. ECCV 2018): [a separate random CE batch of source images] + source P x K +
  unlabelled target images with their camera-style versions; loss = source identity CE + 0.5 x
  batch-hard triplet over source P x K and target.

`Mode.build(inputs)` reads what the mode trains on (CamStyle images, a target set) and returns the
mode; `compute_loss(feats (B, D), logits (B, N), labels (B,), generated (B,), labelled (B,))` returns
a dict of scalar tensors, "loss" being the one to back-propagate. A mode also names the set it is
evaluated on (`eval_set`: the training set's test split, or HHL's target set), the generated
images it read (`camstyle`), and `chunks`: None for one forward pass of the whole batch, or the
sizes of the leading sub-batches that get a forward pass of their own (the rest is the last one;
`ReidModel.forward(x, chunks)`), so that their BatchNorm statistics never mix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from reid_stargan.data.records import Record
from reid_stargan.registry import Registry
from reid_stargan.reid.camstyle_set import check_camstyle_complete, load_camstyle, target_versions
from reid_stargan.reid.config import LossConfig, ReidConfig
from reid_stargan.reid.data import check_records
from reid_stargan.reid.losses import batch_hard_triplet, smoothed_targets, soft_cross_entropy
from reid_stargan.reid.samplers import (
    CamStyleBatchBuilder,
    HHLBatchBuilder,
    PKBatchBuilder,
    RandomBatchBuilder,
)

MODES = Registry("train.mode")


@dataclass
class ModeInputs:
    """What every mode builds on: the parsed source set and its readable training records."""

    cfg: ReidConfig
    source: Any  # reid_stargan.data.datasets.Dataset: train / query / gallery, num_cameras, name
    train: list[Record]
    label_of: dict[int, int]  # pid -> class index
    rank: int  # the sampling seed is cfg.train.seed, resolved before the modes are built
    log: Any  # RunLogger
    readable: Callable[[list, bool, str], list]  # (records, verify?, what) -> the readable ones
    unparsed_names: dict[str, int]  # filled in by modes that parse another set


@dataclass
class CamStyleInputs:
    """The generated images a run trained on, for metrics.json."""

    location: str
    images: int
    complete: bool | None  # None: could not be judged


def _camstyle_location(location: str, what: str) -> str:
    if not location:
        raise ValueError(f"train.mode={what} needs CamStyle images: --camstyle DIR or "
                         + ("hhl.camstyle_root" if what == "hhl" else "camstyle.root"))
    return str(location)


@MODES.register("baseline")
class BaselineMode:
    def __init__(self, builder: PKBatchBuilder | RandomBatchBuilder, loss_cfg: LossConfig, num_classes: int):
        self.builder, self.loss_cfg, self.num_classes = builder, loss_cfg, num_classes
        self.eval_set: Any = None
        self.camstyle: CamStyleInputs | None = None
        self.chunks: list[int] | None = None  # one forward pass of the whole batch

    @classmethod
    def build(cls, d: ModeInputs) -> BaselineMode:
        c, s = d.cfg, d.cfg.sampler
        if s.kind == "random":
            builder = RandomBatchBuilder(d.train, d.label_of, s.batch_size, c.train.seed, d.rank)
        else:
            builder = PKBatchBuilder(d.train, d.label_of, s.num_ids, s.num_instances, c.train.seed, d.rank)
        return cls(builder, c.loss, len(d.label_of))._evaluated_on(d.source)

    def _evaluated_on(self, dataset, camstyle: CamStyleInputs | None = None):
        self.eval_set, self.camstyle = dataset, camstyle
        return self

    def build_batches(self, epoch: int, num_batches: int):
        return self.builder.epoch_batches(epoch, num_batches)

    def _id_loss(self, logits, labels, epsilon: float | torch.Tensor):
        """Soft CE against the one-hot targets smoothed by `epsilon`: one value, or (B,) one per image."""
        if not isinstance(epsilon, torch.Tensor):
            epsilon = torch.full(labels.shape, epsilon, device=labels.device)
        return soft_cross_entropy(logits, smoothed_targets(labels, self.num_classes, epsilon[:, None]))  # (B, N)

    def _id_terms(self, logits, labels, generated) -> dict[str, torch.Tensor]:
        return {"id": self._id_loss(logits, labels, self.loss_cfg.label_smoothing)}

    def _triplet(self, feats, labels, generated) -> torch.Tensor:
        return batch_hard_triplet(feats, labels, self.loss_cfg.triplet_margin, self.loss_cfg.soft_margin)

    def compute_loss(self, feats: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor,
                     generated: torch.Tensor, labelled: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.loss_cfg
        out = {}
        total = feats.new_zeros(())
        if cfg.id_weight > 0:
            out.update(self._id_terms(logits, labels, generated))
            total = total + cfg.id_weight * out["id"]
        if cfg.triplet_weight > 0:
            out["triplet"] = self._triplet(feats, labels, generated)
            total = total + cfg.triplet_weight * out["triplet"]
        out["loss"] = total
        return out


@MODES.register("camstyle")
class CamStyleMode(BaselineMode):
    @classmethod
    def build(cls, d: ModeInputs) -> CamStyleMode:
        c, source = d.cfg, d.source
        location = _camstyle_location(c.camstyle.root, "camstyle")
        complete = check_camstyle_complete(location, c.camstyle.allow_incomplete, d.log)
        generated = load_camstyle(location, d.train, source.num_cameras, source.name)
        if not c.camstyle.own_camera:  # CamStyle: the C - 1 other cameras only
            generated = [g for g in generated if g.src_camid != g.dst_camid]
        generated = d.readable(generated, c.data.verify_images, "camstyle")
        check_records(generated, f"CamStyle set {location}")
        s = c.sampler
        builder = CamStyleBatchBuilder(d.train, generated, d.label_of, s.num_ids, s.num_instances,
                                       c.camstyle.share, c.train.seed, d.rank, same_ids=c.camstyle.same_ids,
                                       real_batch=s.batch_size if s.kind == "random" else 0)
        mode = cls(builder, c.loss, len(d.label_of), c.camstyle.lsr_epsilon, c.camstyle.triplet,
                   c.camstyle.loss_form, c.camstyle.generated_weight)
        if c.camstyle.separate_forward:  # the official CamStyleTrainer: model(real), model(generated)
            mode.chunks = [builder.real_size]
        return mode._evaluated_on(source, CamStyleInputs(location, len(generated), complete))

    def __init__(self, builder: CamStyleBatchBuilder, loss_cfg: LossConfig, num_classes: int,
                 lsr_epsilon: float = 0.1, triplet_with_generated: bool = True, loss_form: str = "pooled",
                 generated_weight: float = 1.0):
        super().__init__(builder, loss_cfg, num_classes)
        if loss_form not in ("paper", "pooled"):
            raise ValueError(f"camstyle.loss_form must be 'paper' or 'pooled', got {loss_form!r}")
        self.lsr_epsilon, self.triplet_with_generated = lsr_epsilon, triplet_with_generated
        self.loss_form, self.generated_weight = loss_form, generated_weight

    def _id_terms(self, logits, labels, generated) -> dict[str, torch.Tensor]:
        """Real images: the baseline's smoothing; generated ones: LSR with lsr_epsilon.

        "paper" (the official CamStyle code): mean CE over the real images + weight x mean LSR loss
        over the generated ones, so at weight 1 generated images carry half of the identity gradient
        whatever their share. "pooled": one mean over all images (generated ones weigh by their share)."""
        smoothing = self.loss_cfg.label_smoothing
        if self.loss_form == "pooled":
            eps = torch.where(generated, torch.tensor(self.lsr_epsilon), torch.tensor(smoothing)).to(labels.device)
            return {"id": self._id_loss(logits, labels, eps)}
        real = ~generated
        out = {"id_real": self._id_loss(logits[real], labels[real], smoothing)}
        if generated.any():
            out["id_generated"] = self._id_loss(logits[generated], labels[generated], self.lsr_epsilon)
            out["id"] = out["id_real"] + self.generated_weight * out["id_generated"]
        else:
            out["id"] = out["id_real"]
        return out

    def _triplet(self, feats, labels, generated) -> torch.Tensor:
        cfg = self.loss_cfg
        if self.triplet_with_generated:  # real anchors; generated images as positives / negatives
            return batch_hard_triplet(feats, labels, cfg.triplet_margin, cfg.soft_margin, anchor_mask=~generated)
        real = ~generated
        return batch_hard_triplet(feats[real], labels[real], cfg.triplet_margin, cfg.soft_margin)


@MODES.register("hhl")
class HHLMode(BaselineMode):
    @classmethod
    def build(cls, d: ModeInputs) -> HHLMode:
        c = d.cfg
        target = c.hhl.target.build()
        if target.skipped:
            d.unparsed_names.update({f"target {k}": len(v) for k, v in target.skipped.items()})
            d.log.info(target.skipped_note())
        location = _camstyle_location(c.hhl.camstyle_root, "hhl")
        target_train = d.readable(target.train, c.hhl.target.verify_images, "target train")
        complete = check_camstyle_complete(location, c.camstyle.allow_incomplete, d.log)
        versions = target_versions(location, target_train, target.num_cameras, target.name)
        if c.hhl.target.verify_images:
            flat = [Record(p, -1, -1) for vs in versions.values() for p in vs]
            ok = {r.path for r in d.readable(flat, True, "target camstyle")}
            versions = {t: [p for p in vs if p in ok] for t, vs in versions.items()}
        h, s = c.hhl, c.sampler
        builder = HHLBatchBuilder(d.train, d.label_of, versions, s.num_ids, s.num_instances,
                                  h.num_target, h.num_views, c.train.seed, d.rank, ce_batch=h.ce_batch)
        mode = cls(builder, c.loss, len(d.label_of), h.triplet_weight, ce_batch=h.ce_batch,
                   separate_forward=h.separate_forward, pk_size=builder.P * builder.K)
        images = sum(len(vs) for vs in versions.values())
        return mode._evaluated_on(target, CamStyleInputs(location, images, complete))  # cross-domain: tested on the target

    def __init__(self, builder: HHLBatchBuilder, loss_cfg: LossConfig, num_classes: int,
                 triplet_weight: float = 0.5, ce_batch: int = 0, separate_forward: bool = False, pk_size: int = 0):
        """The batch is [ce_batch | pk_size source | target] (`HHLBatchBuilder`); with `ce_batch` = 0 the
        P x K source images serve both losses. `separate_forward`: one forward per part (HHL)."""
        super().__init__(builder, loss_cfg, num_classes)
        self.triplet_weight, self.ce_batch = triplet_weight, ce_batch
        if separate_forward:
            if pk_size < 1:
                raise ValueError("HHL separate_forward needs the P x K size (pk_size)")
            self.chunks = [ce_batch, pk_size] if ce_batch else [pk_size]

    def compute_loss(self, feats, logits, labels, generated, labelled):
        cfg, n = self.loss_cfg, self.ce_batch
        if n:  # HHL: CE on the first n (random source) images, the triplet on the rest
            assert bool(labelled[:n].all()), "the CE batch must be labelled source images"
            ce_logits, ce_labels = logits[:n], labels[:n]
            feats, labels = feats[n:], labels[n:]
        else:
            ce_logits, ce_labels = logits[labelled], labels[labelled]  # source images only
        id_loss = self._id_loss(ce_logits, ce_labels, cfg.label_smoothing)
        # Pseudo-labels make target groups their own classes: one batch-hard triplet covers
        # target->own versions (positives), target->others and source<->target (negatives).
        triplet = batch_hard_triplet(feats, labels, cfg.triplet_margin, cfg.soft_margin)
        return {"id": id_loss, "triplet": triplet, "loss": id_loss + self.triplet_weight * triplet}
