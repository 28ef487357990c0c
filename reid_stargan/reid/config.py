"""The typed config of `tools/train_reid.py` (YAML files under `configs/reid/`).

Defaults follow the "strong baseline" recipe (Luo et al. 2019, BNNeck + triplet + smoothed CE) with
the CamStyle (Zhong et al. CVPR 2018) and HHL (Zhong et al. ECCV 2018) additions:

    cfg = load_config(ReidConfig, "configs/reid/market_camstyle.yaml", ["optim.epochs=60"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reid_stargan.data.config import DataConfig


@dataclass
class ModelConfig:
    backbone: str = "resnet50"  # a key of reid_stargan.reid.models.BACKBONES
    pretrained: str = "none"  # "imagenet" (torchvision weights), "none", or a path to a state dict
    last_stride: int = 1  # 1 doubles the last feature map (strong-baseline trick); 2 is torchvision's
    embed_dim: int = 0  # 0: use the backbone's pooled feature directly; >0: a linear embedding first
    bn_neck: bool = True  # BatchNorm between the triplet feature and the classifier (BNNeck)


@dataclass
class LossConfig:
    triplet_weight: float = 1.0
    triplet_margin: float = 0.3
    soft_margin: bool = False  # log(1 + exp(d_ap - d_an)) instead of the hinge with a margin
    id_weight: float = 1.0  # identity cross-entropy; 0 disables the classifier loss
    label_smoothing: float = 0.1  # on real images' identity targets (strong baseline)


@dataclass
class SamplerConfig:
    num_ids: int = 16  # P identities per batch (per rank under DDP)
    num_instances: int = 4  # K images per identity


@dataclass
class CamStyleConfig:
    root: str = ""  # folder or manifest.jsonl of generated images; --camstyle overrides it
    share: float = 0.264  # generated / (real + generated) per batch; the paper's 46 of 128 + 46
    lsr_epsilon: float = 0.1  # label-smoothing regularisation on generated images' identity targets
    # "paper": mean CE over real + generated_weight x mean LSR loss over generated images (the
    # official CamStyle code; generated images carry half of the identity gradient); "pooled": one
    # mean over all images (generated ones carry their share, 26 % at share 0.264)
    loss_form: Literal["paper", "pooled"] = "paper"
    generated_weight: float = 1.0
    same_ids: bool = True  # draw the generated images from the batch's P identities (triplet positives)
    # generated images in the batch-hard triplet as positives / negatives: CamStyle has no triplet
    # on them, and as the "hardest" positives imperfect translations hurt (-0.6 mAP, docs/RESULTS.md)
    triplet: bool = False
    # Train on a CamStyle folder that generate_camstyle did not finish (camstyle_status; also the
    # hhl mode's folder): refused unless true, and then logged; metrics.json records what was used.
    allow_incomplete: bool = False


@dataclass
class HHLConfig:
    target: DataConfig = field(default_factory=DataConfig)  # the unlabelled target data set
    camstyle_root: str = ""  # the target set's CamStyle images (hhl naming); --camstyle overrides it
    num_target: int = 16  # target images per batch
    num_views: int = 3  # camera-style versions per target image (its positives)
    triplet_weight: float = 0.5  # loss = source CE + 0.5 x triplet


@dataclass
class InputConfig:
    height: int = 256
    width: int = 128
    flip: float = 0.5  # probability of a horizontal flip
    pad: int = 10  # pad-and-crop border in pixels (0 disables)
    erasing: float = 0.5  # random-erasing probability (0 disables)


@dataclass
class OptimConfig:
    lr: float = 3.5e-4  # Adam
    head_lr_mult: float = 1.0  # lr multiplier of the layers above the backbone (embedding, neck, classifier)
    weight_decay: float = 5e-4
    epochs: int = 120
    iters_per_epoch: int = 0  # 0: ceil(real training images / (P x K)), so +CamStyle keeps the schedule
    warmup_epochs: int = 10  # linear warm-up from lr * warmup_factor
    warmup_factor: float = 0.01
    milestones: list[int] = field(default_factory=lambda: [40, 70])  # epochs of the step decay
    gamma: float = 0.1


@dataclass
class EvalConfig:
    every: int = 0  # also evaluate every N epochs (0: only at the end); logged, never used to pick a model
    batch_size: int = 64
    flip: bool = True  # average the features of the image and its mirror
    metric: Literal["cosine", "euclidean"] = "cosine"
    rerank: bool = False


@dataclass
class TrainConfig:
    mode: Literal["baseline", "camstyle", "hhl"] = "baseline"
    seed: int | None = None  # null: drawn at start and written back into the run's config.yaml
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision: fp16 on CUDA, bf16 on CPUs with AVX512-BF16 / AMX
    channels_last: bool = True  # CUDA only
    num_workers: int = 4
    threads: int = 0  # torch intra-op threads on CPU (0: leave torch's default)
    log_every: int = 20  # iterations
    checkpoint_every: int = 1  # epochs
    tensorboard: bool = True


@dataclass
class ReidConfig:
    data: DataConfig = field(default_factory=DataConfig)  # the (source) training and test set
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    camstyle: CamStyleConfig = field(default_factory=CamStyleConfig)
    hhl: HHLConfig = field(default_factory=HHLConfig)
    input: InputConfig = field(default_factory=InputConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_root: str = "runs"  # the CLI makes numbered run folders here
    tag: str = ""  # run-folder suffix (default: <data>-<mode>)

    def __post_init__(self) -> None:
        if self.sampler.num_ids < 2 or self.sampler.num_instances < 1:
            raise ValueError("sampler needs num_ids >= 2 and num_instances >= 1 (batch-hard triplet)")
        if not 0.0 <= self.camstyle.share < 1.0:
            raise ValueError(f"camstyle.share must be in [0, 1), got {self.camstyle.share}")
        problems = _value_problems(self)
        if problems:
            raise ValueError("; ".join(problems))


# Total stride of each built-in backbone with last_stride=2 (halved by last_stride=1): the input must
# give the last feature map at least one cell.
BACKBONE_STRIDES = {"resnet50": 32, "resnet18": 32, "efficientnet_lite0": 32, "small": 8}


def check_device(value: str, key: str) -> str | None:
    """None when `value` is a device the tools run on (auto, cpu, cuda, cuda:N), else the problem."""
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return None
    return f"{key} must be auto, cpu, cuda or cuda:N, got {value!r}"


def _value_problems(cfg: ReidConfig) -> list[str]:
    """Values that would be accepted silently and then run wrongly (or fail deep in torch)."""
    o, t, i, m = cfg.optim, cfg.train, cfg.input, cfg.model
    problems = []
    if o.epochs < 1:
        problems.append(f"optim.epochs must be >= 1, got {o.epochs}")
    if o.iters_per_epoch < 0:
        problems.append(f"optim.iters_per_epoch must be >= 0 (0: one pass over the real images), got {o.iters_per_epoch}")
    if not o.lr > 0:
        problems.append(f"optim.lr must be > 0, got {o.lr}")
    if o.weight_decay < 0:
        problems.append(f"optim.weight_decay must be >= 0, got {o.weight_decay}")
    if o.warmup_epochs < 0 or not 0 < o.warmup_factor <= 1:
        problems.append(f"optim.warmup_epochs must be >= 0 and optim.warmup_factor in (0, 1], got "
                        f"{o.warmup_epochs} and {o.warmup_factor}")
    if not o.gamma > 0:
        problems.append(f"optim.gamma must be > 0, got {o.gamma}")
    if not 0.0 <= cfg.loss.label_smoothing < 1.0:
        problems.append(f"loss.label_smoothing must be in [0, 1), got {cfg.loss.label_smoothing}")
    if not 0.0 <= cfg.camstyle.lsr_epsilon < 1.0:
        problems.append(f"camstyle.lsr_epsilon must be in [0, 1), got {cfg.camstyle.lsr_epsilon}")
    if cfg.loss.triplet_weight < 0 or cfg.loss.id_weight < 0 or cfg.loss.triplet_margin < 0:
        problems.append("loss.triplet_weight, loss.id_weight and loss.triplet_margin must be >= 0")
    if (problem := check_device(t.device, "train.device")) is not None:
        problems.append(problem)
    if t.num_workers < 0 or t.threads < 0 or t.log_every < 0 or t.checkpoint_every < 0:
        problems.append("train.num_workers, train.threads, train.log_every and train.checkpoint_every must be >= 0")
    if m.last_stride not in (1, 2):
        problems.append(f"model.last_stride must be 1 or 2, got {m.last_stride}")
    stride = BACKBONE_STRIDES.get(m.backbone, 1) // (2 if m.last_stride == 1 else 1)
    for key, size in (("input.height", i.height), ("input.width", i.width)):
        if size < max(stride, 1):
            problems.append(f"{key}={size} is too small for model.backbone={m.backbone} (total stride {stride}): "
                            f"use at least {max(stride, 1)}")
    if not (0 <= i.flip <= 1 and 0 <= i.erasing <= 1) or i.pad < 0:
        problems.append(f"input.flip and input.erasing must be probabilities in [0, 1] and input.pad >= 0, got "
                        f"{i.flip}, {i.erasing}, {i.pad}")
    if cfg.eval.batch_size < 1 or cfg.eval.every < 0:
        problems.append(f"eval.batch_size must be >= 1 and eval.every >= 0, got {cfg.eval.batch_size}, {cfg.eval.every}")
    if cfg.camstyle.generated_weight < 0:
        problems.append(f"camstyle.generated_weight must be >= 0, got {cfg.camstyle.generated_weight}")
    return problems
