"""The three training modes. Each owns its batch builder and its loss; the loop in trainer.py is shared.

* baseline: P x K real images; smoothed identity CE + batch-hard triplet.
* camstyle (Zhong et al. CVPR 2018): + generated images at a share of the batch, with LSR targets
  (epsilon 0.1) for the identity loss, weighted as the official code does (mean over real + mean
  over generated) or pooled; optionally in the triplet as positives / negatives.
* hhl (Zhong et al. ECCV 2018): source P x K + unlabelled target images with their camera-style
  versions; loss = source identity CE + 0.5 x batch-hard triplet over source and target.

`compute_loss(feats (B, D), logits (B, N), labels (B,), generated (B,), labelled (B,))` returns a dict
of scalar tensors; "loss" is the one to back-propagate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reid_stargan.reid.config import LossConfig
from reid_stargan.reid.losses import batch_hard_triplet, smoothed_targets, soft_cross_entropy
from reid_stargan.reid.samplers import CamStyleBatchBuilder, HHLBatchBuilder, PKBatchBuilder


class BaselineMode:
    name = "baseline"

    def __init__(self, builder: PKBatchBuilder, loss_cfg: LossConfig, num_classes: int):
        self.builder, self.loss_cfg, self.num_classes = builder, loss_cfg, num_classes

    def build_batches(self, epoch: int, num_batches: int):
        return self.builder.epoch_batches(epoch, num_batches)

    def _id_loss(self, logits, labels, epsilons):
        targets = smoothed_targets(labels, self.num_classes, 0.0)
        targets = targets * (1.0 - epsilons[:, None]) + epsilons[:, None] / self.num_classes  # (B, N)
        return soft_cross_entropy(logits, targets)

    def compute_loss(self, feats: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor,
                     generated: torch.Tensor, labelled: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.loss_cfg
        out = {}
        total = feats.new_zeros(())
        if cfg.id_weight > 0:
            eps = torch.full(labels.shape, cfg.label_smoothing, device=labels.device)
            out["id"] = self._id_loss(logits, labels, eps)
            total = total + cfg.id_weight * out["id"]
        if cfg.triplet_weight > 0:
            out["triplet"] = batch_hard_triplet(feats, labels, cfg.triplet_margin, cfg.soft_margin)
            total = total + cfg.triplet_weight * out["triplet"]
        out["loss"] = total
        return out


class CamStyleMode(BaselineMode):
    name = "camstyle"

    def __init__(self, builder: CamStyleBatchBuilder, loss_cfg: LossConfig, num_classes: int,
                 lsr_epsilon: float = 0.1, triplet_with_generated: bool = True, loss_form: str = "pooled",
                 generated_weight: float = 1.0):
        super().__init__(builder, loss_cfg, num_classes)
        if loss_form not in ("paper", "pooled"):
            raise ValueError(f"camstyle.loss_form must be 'paper' or 'pooled', got {loss_form!r}")
        self.lsr_epsilon, self.triplet_with_generated = lsr_epsilon, triplet_with_generated
        self.loss_form, self.generated_weight = loss_form, generated_weight

    def _camstyle_id_loss(self, logits, labels, generated) -> dict[str, torch.Tensor]:
        """"paper" (the official CamStyle code): mean CE over the real images + weight x mean LSR loss
        over the generated ones, so at weight 1 generated images carry half of the identity gradient
        whatever their share. "pooled": one mean over all images (generated ones weigh by their share)."""
        smoothing, device = self.loss_cfg.label_smoothing, labels.device
        if self.loss_form == "pooled":
            eps = torch.where(generated, torch.tensor(self.lsr_epsilon), torch.tensor(smoothing)).to(device)
            return {"id": self._id_loss(logits, labels, eps)}
        real = ~generated
        out = {"id_real": self._id_loss(logits[real], labels[real],
                                        torch.full((int(real.sum()),), smoothing, device=device))}
        if generated.any():
            out["id_generated"] = self._id_loss(logits[generated], labels[generated],
                                                torch.full((int(generated.sum()),), self.lsr_epsilon, device=device))
            out["id"] = out["id_real"] + self.generated_weight * out["id_generated"]
        else:
            out["id"] = out["id_real"]
        return out

    def compute_loss(self, feats, logits, labels, generated, labelled):
        cfg = self.loss_cfg
        out = {}
        total = feats.new_zeros(())
        if cfg.id_weight > 0:
            # Real images: the baseline's smoothing; generated ones: LSR with lsr_epsilon.
            out.update(self._camstyle_id_loss(logits, labels, generated))
            total = total + cfg.id_weight * out["id"]
        if cfg.triplet_weight > 0:
            if self.triplet_with_generated:  # real anchors; generated images as positives / negatives
                out["triplet"] = batch_hard_triplet(feats, labels, cfg.triplet_margin, cfg.soft_margin,
                                                    anchor_mask=~generated)
            else:
                real = ~generated
                out["triplet"] = batch_hard_triplet(feats[real], labels[real], cfg.triplet_margin, cfg.soft_margin)
            total = total + cfg.triplet_weight * out["triplet"]
        out["loss"] = total
        return out


class HHLMode(BaselineMode):
    name = "hhl"

    def __init__(self, builder: HHLBatchBuilder, loss_cfg: LossConfig, num_classes: int,
                 triplet_weight: float = 0.5):
        super().__init__(builder, loss_cfg, num_classes)
        self.triplet_weight = triplet_weight

    def compute_loss(self, feats, logits, labels, generated, labelled):
        cfg = self.loss_cfg
        eps = torch.full((int(labelled.sum()),), cfg.label_smoothing, device=labels.device)
        id_loss = self._id_loss(logits[labelled], labels[labelled], eps)  # source images only
        # Pseudo-labels make target groups their own classes: one batch-hard triplet covers
        # target->own versions (positives), target->others and source<->target (negatives).
        triplet = batch_hard_triplet(feats, labels, cfg.triplet_margin, cfg.soft_margin)
        return {"id": id_loss, "triplet": triplet, "loss": id_loss + self.triplet_weight * triplet}


def batch_tensors(batch: Sequence, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """labels, generated, labelled tensors of a list of `Sample`s (for tests and tools)."""
    labels = torch.tensor([s.label for s in batch], device=device)
    generated = torch.tensor([s.generated for s in batch], device=device)
    labelled = torch.tensor([s.labelled for s in batch], device=device)
    return labels, generated, labelled
