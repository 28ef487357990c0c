"""StarGAN losses: WGAN-GP adversarial, domain classification, L1 reconstruction.

    L_D = -E[D_src(x)] + E[D_src(G(x, c'))] + lambda_cls * L_cls(D_cls(x), c) + lambda_gp * GP
    L_G = -E[D_src(G(x, c'))] + lambda_cls * L_cls(D_cls(G(x, c')), c') + lambda_rec * |x - G(G(x, c'), c)|_1
          [+ lambda_id * |x - G(x, c)|_1]

The bracketed identity-mapping term is not StarGAN's (its weight is 0 by default, which is the paper).
It is the loss CamStyle added to CycleGAN (after Taigman et al., ICLR 2017) so that a camera-style
translation keeps the colours of the person: asked for the image's own camera, G must return the image.

`L_cls` is BCE-with-logits summed over attributes and averaged over the batch for multi-label
domains (CelebA), cross-entropy for one-of-N domains (cameras, RaFD expressions). With several data
sets `cls_slice` selects the image's own data set's block of D's classification output.

The gradient penalty is always evaluated in float32 (autocast off), because its double backward
through bf16 activations loses the precision the penalty's `(|grad| - 1)^2` needs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Module = Callable[..., object]


def classification_loss(logits: torch.Tensor, target: torch.Tensor, label_type: str) -> torch.Tensor:
    """logits (B, c); target (B,) class indices ("single") or (B, c) 0/1 floats ("multi")."""
    logits = logits.float()
    if label_type == "multi":
        return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="sum") / logits.shape[0]
    if label_type == "single":
        return F.cross_entropy(logits, target.long())
    raise ValueError(f"label_type must be 'single' or 'multi', got {label_type!r}")


def classification_correct(logits: torch.Tensor, target: torch.Tensor, label_type: str) -> torch.Tensor:
    """(B,) accuracy per image: argmax hit (single) or fraction of attributes right at p > 0.5 (multi)."""
    if label_type == "single":
        return (logits.argmax(1) == target.long()).float()
    return ((logits > 0).float() == target.float()).float().mean(1)


def gradient_penalty(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """mean over the batch of (||d out / d x||_2 - 1)^2, with the graph kept for the backward pass."""
    grad = torch.autograd.grad(outputs=out, inputs=x, grad_outputs=torch.ones_like(out),
                               retain_graph=True, create_graph=True, only_inputs=True)[0]
    norm = grad.flatten(1).pow(2).sum(1).sqrt()  # (B,)
    return (norm - 1.0).pow(2).mean()


def interpolate(x_real: torch.Tensor, x_fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """x_hat = alpha * x_real + (1 - alpha) * x_fake, detached, float32, requiring grad. alpha (B,1,1,1)."""
    return (alpha * x_real.detach().float() + (1 - alpha) * x_fake.detach().float()).requires_grad_(True)


def d_loss(D: Module, x_real: torch.Tensor, x_fake: torch.Tensor, label_org: torch.Tensor, alpha: torch.Tensor, *,
           label_type: str, cls_slice: slice = slice(None), lambda_cls: float = 1.0, lambda_gp: float = 10.0,
           D_gp: Module | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Discriminator loss on a batch. Returns (total, {term: detached value}, D's real-image logits).

    `x_fake` is G's output for the target labels (detached here). Real and fake go through D in one
    batch (D has no batch-dependent layers, so this equals two calls). `D_gp` is the module used for
    the penalty's double backward (the uncompiled D when `D` is a torch.compile wrapper).
    """
    b = x_real.shape[0]
    out_src, out_cls = D(torch.cat([x_real, x_fake.detach()]))  # (2B, 1, h, w), (2B, c)
    loss_real = -out_src[:b].float().mean()
    loss_fake = out_src[b:].float().mean()
    cls_logits = out_cls[:b, cls_slice]
    loss_cls = classification_loss(cls_logits, label_org, label_type)
    x_hat = interpolate(x_real, x_fake, alpha)
    with torch.autocast(device_type=x_hat.device.type, enabled=False):
        gp_src, _ = (D_gp or D)(x_hat)
        loss_gp = gradient_penalty(gp_src.float(), x_hat)
    total = loss_real + loss_fake + lambda_cls * loss_cls + lambda_gp * loss_gp
    terms = {"D/loss_real": loss_real, "D/loss_fake": loss_fake, "D/loss_cls": loss_cls, "D/loss_gp": loss_gp,
             "D/loss": total}
    return total, {k: v.detach() for k, v in terms.items()}, cls_logits.detach()


def identity_mapping_loss(G: Module, x_real: torch.Tensor, c_org: torch.Tensor) -> torch.Tensor:
    """|x - G(x, c_org)|_1, mean: asked for the image's own domain, G should return the image."""
    return (x_real.float() - G(x_real, c_org).float()).abs().mean()


def g_loss(G: Module, D: Module, x_real: torch.Tensor, c_org: torch.Tensor, c_trg: torch.Tensor,
           label_trg: torch.Tensor, *, label_type: str, cls_slice: slice = slice(None), lambda_cls: float = 1.0,
           lambda_rec: float = 10.0, lambda_id: float = 0.0
           ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Generator loss on a batch. Returns (total, {term: detached value}, x_fake detached).

    c_org / c_trg are G's condition vectors (B, g_dim); label_trg the raw target labels for D's classifier.
    With lambda_id = 0 (the paper) the identity-mapping forward is skipped, so the step costs what it did.
    """
    x_fake = G(x_real, c_trg)  # (B, 3, H, W)
    out_src, out_cls = D(x_fake)
    loss_fake = -out_src.float().mean()
    loss_cls = classification_loss(out_cls[:, cls_slice], label_trg, label_type)
    x_rec = G(x_fake, c_org)
    loss_rec = (x_real.float() - x_rec.float()).abs().mean()
    total = loss_fake + lambda_rec * loss_rec + lambda_cls * loss_cls
    terms = {"G/loss_fake": loss_fake, "G/loss_cls": loss_cls, "G/loss_rec": loss_rec}
    if lambda_id > 0:
        loss_id = identity_mapping_loss(G, x_real, c_org)
        total = total + lambda_id * loss_id
        terms["G/loss_identity"] = loss_id
    terms["G/loss"] = total
    return total, {k: v.detach() for k, v in terms.items()}, x_fake.detach()
