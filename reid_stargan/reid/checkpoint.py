"""Training-state files (resume exactly; trainer.py writes them) and the small inference file (`model.pt`).

`checkpoints/last.pt`: model, optimizer, scheduler, grad scaler, the next epoch, every rank's RNG
state and the resolved config (resume is epoch-level: batches are a function of seed and epoch). `checkpoints/model.pt`: the final weights + config + class count,
enough for `load_reid_model`::

    model, cfg = load_reid_model("runs/00003-market-baseline/checkpoints/model.pt")
    feats = model(images)  # (B, D), L2-normalised; the model is returned in eval mode
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from reid_stargan.config import config_to_dict, from_dict
from reid_stargan.reid.config import ReidConfig
from reid_stargan.reid.models import ReidModel, build_reid_model
from reid_stargan.utils.io import atomic_torch_save, torch_load

LAST = "last.pt"
MODEL = "model.pt"


def model_from_config(cfg: ReidConfig, num_classes: int, pretrained: str | None = None) -> ReidModel:
    m = cfg.model
    return build_reid_model(m.backbone, num_classes, pretrained=m.pretrained if pretrained is None else pretrained,
                            last_stride=m.last_stride, embed_dim=m.embed_dim, bn_neck=m.bn_neck, head=m.head,
                            dropout=m.dropout, triplet_dim=m.triplet_dim, test_feature=m.test_feature)


def save_inference_model(path: str | os.PathLike, model: ReidModel, cfg: ReidConfig, num_classes: int) -> None:
    atomic_torch_save({"format": "reid_stargan.reid/1", "config": config_to_dict(cfg), "num_classes": num_classes,
                       "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, path)


def load_reid_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[ReidModel, ReidConfig]:
    """The final model of a run (`model.pt`, or a `last.pt` training state) in eval mode, and its config."""
    path = Path(path)
    if path.is_dir():  # a run folder
        path = path / "checkpoints" / MODEL
    blob = torch_load(path, map_location="cpu")
    weights = blob.get("state_dict", blob.get("model")) if isinstance(blob, dict) else None
    if not isinstance(weights, dict) or "config" not in blob:
        raise ValueError(f"{path}: not a re-ID checkpoint written by train_reid")
    cfg = from_dict(ReidConfig, blob["config"])
    # The classifier's size is the weights' (a training state's num_classes counts identities even
    # when no classifier was built). The weights come from the file: never fetch ImageNet weights.
    classifier = weights.get("classifier.weight")
    model = model_from_config(cfg, 0 if classifier is None else classifier.shape[0], pretrained="none")
    model.load_state_dict(weights)
    return model.to(device).eval(), cfg
