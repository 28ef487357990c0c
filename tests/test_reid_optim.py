"""The optimiser's two lr groups: backbone at optim.lr, new layers at optim.lr x head_lr_mult."""

from pathlib import Path

import pytest

from reid_stargan.config import load_config
from reid_stargan.reid.checkpoint import model_from_config
from reid_stargan.reid.config import ReidConfig
from reid_stargan.reid.trainer import make_optimizer

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "reid"


@pytest.mark.parametrize("mult", [1.0, 10.0])
def test_head_layers_get_their_own_lr(mult):
    cfg = load_config(ReidConfig, CONFIGS / "synthetic_cpu_baseline.yaml",
                      [f"optim.head_lr_mult={mult}", "optim.warmup_epochs=0"])
    model = model_from_config(cfg, num_classes=7)
    opt, _ = make_optimizer(model, cfg)
    body, head = opt.param_groups
    assert body["lr"] == pytest.approx(cfg.optim.lr) and head["lr"] == pytest.approx(cfg.optim.lr * mult)
    backbone = {id(p) for p in model.backbone.parameters()}
    assert all(id(p) in backbone for p in body["params"])
    assert {id(p) for p in head["params"]} == {id(p) for p in model.parameters() if p.requires_grad} - backbone
    assert any(p is model.classifier.weight for p in head["params"])
