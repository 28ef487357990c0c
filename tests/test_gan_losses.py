"""StarGAN loss terms on cases with known answers, and the learning-rate schedule's boundaries."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reid_stargan.gan.losses import classification_loss, d_loss, g_loss, gradient_penalty
from reid_stargan.gan.schedule import lr_at, official_lr_at


class LinearCritic(torch.nn.Module):
    """out_src = <w, x> per image (as a (B, 1, 1, 1) map), out_cls = fixed logits + 0 * x."""

    def __init__(self, w: torch.Tensor, logits: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w)
        self.logits = logits

    def forward(self, x):
        src = (x * self.w).flatten(1).sum(1)[:, None, None, None]
        return src, self.logits[: x.shape[0]] + 0 * src.flatten(1)


def test_gradient_penalty_known_answer():
    # d<w, x>/dx = w for every image, so GP = (||w|| - 1)^2 exactly.
    w = torch.full((3, 4, 2), 0.5)  # ||w|| = 0.5 * sqrt(24)
    x = torch.randn(5, 3, 4, 2, requires_grad=True)
    out = (x * w).flatten(1).sum(1)
    gp = gradient_penalty(out, x)
    assert gp.item() == pytest.approx((0.5 * math.sqrt(24) - 1) ** 2, rel=1e-6)
    # A unit-norm gradient has no penalty; the penalty is differentiable (double backward).
    w2 = torch.zeros(3, 4, 2, requires_grad=True)
    with torch.no_grad():
        w2[0, 0, 0] = 1.0
    out2 = (x * w2).flatten(1).sum(1)
    gp2 = gradient_penalty(out2, x)
    assert gp2.item() == pytest.approx(0.0, abs=1e-12)
    (g,) = torch.autograd.grad(gradient_penalty((x * w2 * 3).flatten(1).sum(1), x), w2)
    assert g.abs().sum() > 0


def test_classification_losses():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, -2.0]])
    multi = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    expect = F.binary_cross_entropy_with_logits(logits, multi, reduction="none").sum(1).mean()
    assert classification_loss(logits, multi, "multi").item() == pytest.approx(expect.item())
    single = torch.tensor([0, 1])
    assert classification_loss(logits, single, "single").item() == pytest.approx(F.cross_entropy(logits, single).item())
    with pytest.raises(ValueError, match="label_type"):
        classification_loss(logits, single, "both")


def test_d_loss_terms():
    torch.manual_seed(0)
    w = torch.randn(3, 4, 2) * 0.1
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [1.0, 1.0], [0.0, 0.0]])
    D = LinearCritic(w, logits)
    x_real, x_fake = torch.randn(2, 3, 4, 2), torch.randn(2, 3, 4, 2)
    labels = torch.tensor([0, 1])
    alpha = torch.full((2, 1, 1, 1), 0.3)
    total, terms, cls_logits = d_loss(D, x_real, x_fake, labels, alpha, label_type="single",
                                      lambda_cls=2.0, lambda_gp=10.0)
    real = (x_real * w).flatten(1).sum(1).mean()
    fake = (x_fake * w).flatten(1).sum(1).mean()
    cls = F.cross_entropy(logits[:2], labels)
    gp = (w.norm() - 1) ** 2
    assert terms["D/loss_real"].item() == pytest.approx(-real.item(), rel=1e-5)
    assert terms["D/loss_fake"].item() == pytest.approx(fake.item(), rel=1e-5)
    assert terms["D/loss_cls"].item() == pytest.approx(cls.item(), rel=1e-5)
    assert terms["D/loss_gp"].item() == pytest.approx(gp.item(), rel=1e-5)
    assert total.item() == pytest.approx((-real + fake + 2 * cls + 10 * gp).item(), rel=1e-5)
    assert torch.equal(cls_logits, logits[:2])
    total.backward()
    assert D.w.grad is not None and D.w.grad.abs().sum() > 0


def test_g_loss_terms_and_reconstruction():
    w = torch.full((3, 4, 2), 0.1)
    logits = torch.tensor([[0.0, 2.0, -1.0, 5.0], [1.0, 0.0, 3.0, -5.0]])
    D = LinearCritic(w, logits)

    def G(x, c):  # shifts by 0.1 per call: reconstruction is off by exactly 0.2 everywhere
        return x + 0.1 + 0 * c.sum()

    x = torch.randn(2, 3, 4, 2)
    c = torch.zeros(2, 4)
    label_trg = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    total, terms, fake = g_loss(G, D, x, c, c, label_trg, label_type="multi", cls_slice=slice(0, 2),
                                lambda_cls=1.0, lambda_rec=10.0)
    adv = -((x + 0.1) * w).flatten(1).sum(1).mean()
    cls = F.binary_cross_entropy_with_logits(logits[:, :2], label_trg, reduction="sum") / 2
    assert terms["G/loss_fake"].item() == pytest.approx(adv.item(), rel=1e-5)
    assert terms["G/loss_rec"].item() == pytest.approx(0.2, rel=1e-5)
    assert terms["G/loss_cls"].item() == pytest.approx(cls.item(), rel=1e-5)  # slice: columns 2, 3 ignored
    assert total.item() == pytest.approx((adv + 10 * 0.2 + cls).item(), rel=1e-5)
    torch.testing.assert_close(fake, x + 0.1)
    assert "G/loss_identity" not in terms  # the paper's loss: no identity-mapping term, no extra forward

    calls = []

    def G_counted(x, c):
        calls.append(1)
        return G(x, c)

    total_id, terms_id, _ = g_loss(G_counted, D, x, c, c, label_trg, label_type="multi", cls_slice=slice(0, 2),
                                   lambda_cls=1.0, lambda_rec=10.0, lambda_id=5.0)
    assert len(calls) == 3  # translation, reconstruction, and G(x, c_org) for the identity term
    assert terms_id["G/loss_identity"].item() == pytest.approx(0.1, rel=1e-5)  # |x - (x + 0.1)|
    assert total_id.item() == pytest.approx(total.item() + 5 * 0.1, rel=1e-5)


def test_lr_schedule_boundaries():
    base, n, decay = 1e-4, 200_000, 100_000
    assert lr_at(0, base, n, decay) == base
    assert lr_at(n - decay - 1, base, n, decay) == base  # last constant iteration
    assert lr_at(n - decay, base, n, decay) == pytest.approx(base * (decay - 1) / decay)  # decay starts
    assert lr_at(n - decay // 2 - 1, base, n, decay) == pytest.approx(base / 2)
    assert lr_at(n - 1, base, n, decay) == 0.0  # exactly zero at the last iteration
    assert lr_at(9, 1.0, 10, 0) == 1.0  # no decay at all
    with pytest.raises(ValueError, match="num_iters_decay"):
        lr_at(0, base, 10, 11)


def test_official_schedule_ends_at_9_99e_5():
    # yunjey/stargan: lr -= base / num_iters_decay every 1000 iterations of the decay window.
    assert official_lr_at(99_999, 1e-4, 200_000, 100_000) == 1e-4
    assert official_lr_at(101_000, 1e-4, 200_000, 100_000) == pytest.approx(1e-4 - 1e-9)
    assert official_lr_at(200_000, 1e-4, 200_000, 100_000) == pytest.approx(9.99e-5, rel=1e-9)
