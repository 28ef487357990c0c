"""Re-ID losses: batch-hard triplet (Hermans et al. 2017) and identity cross-entropy with smoothed targets.

`smoothed_targets` covers both label smoothing of real images (strong baseline) and the
label-smoothing regularisation (LSR) that CamStyle applies to generated images:
q(k) = (1 - eps) * [k == y] + eps / N.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_distances(feats: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (B, B) of (B, D) features; the clamp keeps sqrt's gradient finite at 0."""
    sq = feats.pow(2).sum(dim=1, keepdim=True)  # (B, 1)
    d2 = sq + sq.t() - 2.0 * feats @ feats.t()  # (B, B)
    return d2.clamp_min(1e-12).sqrt()


def batch_hard_triplet(feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.3,
                       soft_margin: bool = False, anchor_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over anchors of [d(a, hardest positive) - d(a, hardest negative) + margin]_+.

    feats (B, D), labels (B,). With `soft_margin` the hinge becomes log(1 + exp(.)). `anchor_mask`
    (B,) bool limits which samples act as anchors (all samples still serve as positives/negatives).
    Anchors without a positive or a negative in the batch are left out.
    """
    assert feats.dim() == 2 and labels.shape == (feats.shape[0],), (feats.shape, labels.shape)
    if len(labels) < 2:  # e.g. no real image in a batch: nothing to compare
        return feats.sum() * 0.0
    dist = pairwise_distances(feats.float())  # (B, B)
    same = labels[:, None] == labels[None, :]  # (B, B)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos_mask, neg_mask = same & ~eye, ~same
    # Hardest positive: the largest distance among positives; hardest negative: the smallest.
    d_ap = torch.where(pos_mask, dist, torch.full_like(dist, -1.0)).max(dim=1).values  # (B,)
    d_an = torch.where(neg_mask, dist, torch.full_like(dist, float("inf"))).min(dim=1).values  # (B,)
    valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
    if anchor_mask is not None:
        valid = valid & anchor_mask
    if not valid.any():
        return feats.sum() * 0.0
    diff = d_ap[valid] - d_an[valid]
    losses = F.softplus(diff) if soft_margin else F.relu(diff + margin)
    return losses.mean()


def smoothed_targets(labels: torch.Tensor, num_classes: int, epsilon: float | torch.Tensor) -> torch.Tensor:
    """(B, N) target distributions (1 - eps) * one_hot + eps / N; `epsilon` a float or (B, 1) per image."""
    return F.one_hot(labels, num_classes).float() * (1.0 - epsilon) + epsilon / num_classes


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k q(k) log p(k); logits and targets (B, N)."""
    assert logits.shape == targets.shape, (logits.shape, targets.shape)
    return -(targets * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
