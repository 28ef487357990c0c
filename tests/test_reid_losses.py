"""Re-ID losses against brute force, LSR targets, and the HHL loss terms' signs."""

from __future__ import annotations

import math

import pytest
import torch

from reid_stargan.reid.config import LossConfig
from reid_stargan.reid.losses import batch_hard_triplet, smoothed_targets, soft_cross_entropy
from reid_stargan.reid.modes import CamStyleMode, HHLMode


def brute_force_triplet(feats, labels, margin, soft, anchors=None):
    terms = []
    for a in range(len(labels)):
        if anchors is not None and not anchors[a]:
            continue
        pos = [math.dist(feats[a].tolist(), feats[p].tolist()) for p in range(len(labels))
               if p != a and labels[p] == labels[a]]
        neg = [math.dist(feats[a].tolist(), feats[n].tolist()) for n in range(len(labels)) if labels[n] != labels[a]]
        if not pos or not neg:
            continue
        diff = max(pos) - min(neg)
        terms.append(math.log1p(math.exp(diff)) if soft else max(0.0, diff + margin))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_triplet_matches_brute_force(soft):
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(24, 8, generator=g, dtype=torch.float64)
    labels = torch.tensor([i // 4 for i in range(20)] + [99, 5, 5, 6])  # 99: an anchor without positive
    anchors = torch.rand(24, generator=g) > 0.3
    for mask in (None, anchors):
        got = batch_hard_triplet(feats, labels, margin=0.3, soft_margin=soft, anchor_mask=mask)
        want = brute_force_triplet(feats, labels.tolist(), 0.3, soft, None if mask is None else mask.tolist())
        assert got.item() == pytest.approx(want, rel=1e-5)


def test_triplet_gradient_pulls_positive_and_pushes_negative():
    feats = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.2]], requires_grad=True)
    loss = batch_hard_triplet(feats, torch.tensor([0, 0, 1]), margin=0.5, anchor_mask=torch.tensor([True, False, False]))
    loss.backward()
    # anchor at 0, positive at (1, 0), negative at (0, 1.2): the positive moves towards the anchor (-x),
    # the negative away from it (+y).
    assert feats.grad[1, 0] > 0 and feats.grad[2, 1] < 0


def test_smoothed_targets_are_lsr():
    t = smoothed_targets(torch.tensor([2, 0]), num_classes=5, epsilon=0.1)
    assert torch.allclose(t.sum(1), torch.ones(2))
    assert t[0, 2].item() == pytest.approx(0.9 + 0.02) and t[0, 1].item() == pytest.approx(0.02)
    assert torch.equal(smoothed_targets(torch.tensor([1]), 3, 0.0), torch.tensor([[0.0, 1.0, 0.0]]))


def test_camstyle_identity_loss_uses_lsr_on_generated_only():
    n, g = 6, torch.Generator().manual_seed(1)
    logits = torch.randn(4, n, generator=g)
    labels = torch.tensor([0, 1, 2, 3])
    generated = torch.tensor([False, False, True, True])
    mode = CamStyleMode(None, LossConfig(label_smoothing=0.0, triplet_weight=0.0), n, lsr_epsilon=0.1)
    got = mode.compute_loss(torch.randn(4, 3), logits, labels, generated, torch.ones(4, dtype=torch.bool))["id"]
    targets = torch.cat([smoothed_targets(labels[:2], n, 0.0), smoothed_targets(labels[2:], n, 0.1)])
    want = -(targets * logits.log_softmax(1)).sum(1).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert soft_cross_entropy(logits, targets).item() == pytest.approx(want.item(), rel=1e-6)


def test_hhl_loss_terms_and_signs():
    # 2 source identities x 2 images (labels 0, 1) + one target group (pseudo-label 2): real + 1 version.
    feats = torch.tensor([[0.0, 0.0], [0.1, 0.0], [3.0, 0.0], [3.1, 0.0], [0.0, 0.5], [0.0, 1.2]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    generated = torch.tensor([False, False, False, False, False, True])
    labelled = torch.tensor([True, True, True, True, False, False])
    logits = torch.randn(6, 2)
    mode = HHLMode(None, LossConfig(label_smoothing=0.1, triplet_margin=0.3), num_classes=2, triplet_weight=0.5)
    out = mode.compute_loss(feats, logits, labels, generated, labelled)
    assert out["loss"].item() == pytest.approx(out["id"].item() + 0.5 * out["triplet"].item())
    # The identity loss sees the source images only: target logits do not change it.
    logits2 = logits.clone()
    logits2[4:] += 100.0
    assert mode.compute_loss(feats, logits2, labels, generated, labelled)["id"].item() == pytest.approx(out["id"].item())
    # Target positive (its own camera-style version) closer -> lower triplet; a source image closer
    # to the target anchor (a negative) -> higher triplet.
    closer_pos = feats.clone()
    assert out["triplet"] > 0
    closer_pos[5] = torch.tensor([0.0, 0.8])
    assert mode.compute_loss(closer_pos, logits, labels, generated, labelled)["triplet"] < out["triplet"]
    closer_neg = feats.clone()
    closer_neg[2] = torch.tensor([0.3, 0.5])
    assert mode.compute_loss(closer_neg, logits, labels, generated, labelled)["triplet"] > out["triplet"]
