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
    # "imagenet" (torchvision's DEFAULT weights: IMAGENET1K_V2 for resnet50), "imagenet_v1" (the
    # torchvision ResNets' IMAGENET1K_V1, what CamStyle / HHL trained from), "none", or a path to a state dict
    pretrained: str = "none"
    last_stride: int = 1  # 1 doubles the last feature map (strong-baseline trick); 2 is torchvision's
    # "bnneck": the strong-baseline head, [linear embedding] -> [BN neck] -> classifier (no bias).
    # "ide": CamStyle / HHL's IDE head, FC embed_dim -> BN -> ReLU -> dropout -> classifier (with bias).
    head: Literal["bnneck", "ide"] = "bnneck"
    embed_dim: int = 0  # bnneck: 0 uses the pooled feature directly, >0 a linear embedding first; ide: FC width (1024)
    bn_neck: bool = True  # bnneck head: BatchNorm between the triplet feature and the classifier (BNNeck)
    dropout: float = 0.0  # before the classifier (IDE: 0.5)
    # >0: a linear head of this size gives the triplet feature (HHL: 128, on the IDE's ReLU output);
    # 0: the triplet loss sees the head's feature (bnneck: before the neck; ide: the ReLU output)
    triplet_dim: int = 0
    # the test feature, L2-normalised: "head" (bnneck: the neck's output; ide: the ReLU output) or
    # "pool5" (the pooled backbone feature, CamStyle / HHL's --output_feature pool5)
    test_feature: Literal["head", "pool5"] = "head"


@dataclass
class LossConfig:
    triplet_weight: float = 1.0
    triplet_margin: float = 0.3
    soft_margin: bool = False  # log(1 + exp(d_ap - d_an)) instead of the hinge with a margin
    id_weight: float = 1.0  # identity cross-entropy; 0 disables the classifier loss
    label_smoothing: float = 0.1  # on real images' identity targets (strong baseline)


@dataclass
class SamplerConfig:
    # The real-image batch of the baseline and camstyle modes: "pk" (P identities x K images) or
    # "random" (batch_size images at random, without replacement within an epoch: the open-reid
    # DataLoader(shuffle=True) of CamStyle's IDE). The hhl mode's triplet batch is always P x K.
    kind: Literal["pk", "random"] = "pk"
    num_ids: int = 16  # P identities per batch (per rank under DDP)
    num_instances: int = 4  # K images per identity
    batch_size: int = 128  # images per batch of kind "random"


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
    # Use images rendered into their source's own camera when the folder has them (generated with
    # include_own, as stargan4reid does); CamStyle trains on the C - 1 other cameras only.
    own_camera: bool = True
    # One forward pass for the real images and another for the generated ones, so their BatchNorm
    # statistics stay apart (the official CamStyleTrainer); false: one forward of the whole batch.
    separate_forward: bool = False


@dataclass
class HHLConfig:
    target: DataConfig = field(default_factory=DataConfig)  # the unlabelled target data set
    camstyle_root: str = ""  # the target set's CamStyle images (hhl naming); --camstyle overrides it
    num_target: int = 16  # target images per batch
    # camera-style versions per target image (its positives); 0: all it has (HHL: every camera, its
    # own included when the set was generated with include_own)
    num_views: int = 3
    triplet_weight: float = 0.5  # loss = source CE + 0.5 x triplet
    # 0: the identity CE on the source P x K batch (which also serves the triplet); N > 0: CE on a
    # separate batch of N random source images (HHL: 128), the P x K batch for the triplet only
    ce_batch: int = 0
    # One forward pass each for the CE batch, the source triplet batch and the target batch, so
    # source and target BatchNorm statistics never mix (HHL's trainer); false: one mixed forward.
    separate_forward: bool = False


@dataclass
class InputConfig:
    height: int = 256
    width: int = 128
    flip: float = 0.5  # probability of a horizontal flip
    pad: int = 10  # pad-and-crop border in pixels (0 disables)
    erasing: float = 0.5  # random-erasing probability (0 disables)
    # A camera's light, never the clothes' hue (colour identifies people): brightness and contrast
    # factors from [1 - x, 1 + x] (torchreid's color_jitter: 0.2 / 0.15; fast-reid's CJ: 0.15) and a
    # white-balance cast, per-channel gains from [1 - x/2, 1 + x/2]. 0 disables.
    color_jitter: float = 0.0
    # CamStyle / HHL's RandomSizedRectCrop instead of the plain resize: a crop of 64-100 % of the
    # source image's area with aspect (h / w) 2-3, resized to (height, width); resize after 10 misses
    sized_rect_crop: bool = False


@dataclass
class OptimConfig:
    name: Literal["adam", "sgd"] = "adam"  # sgd: with momentum (and Nesterov), as CamStyle / HHL
    lr: float = 3.5e-4  # of the backbone
    # lr multiplier of the layers above the backbone (embedding, neck, triplet head, classifier);
    # CamStyle / HHL: 10 (0.1 new layers, 0.01 base)
    head_lr_mult: float = 1.0
    weight_decay: float = 5e-4
    epochs: int = 120
    iters_per_epoch: int = 0  # 0: ceil(real training images / (P x K)), so +CamStyle keeps the schedule
    warmup_epochs: int = 10  # linear warm-up from lr * warmup_factor
    warmup_factor: float = 0.01
    milestones: list[int] = field(default_factory=lambda: [40, 70])  # epochs of the step decay
    gamma: float = 0.1
    momentum: float = 0.9  # sgd only
    nesterov: bool = True  # sgd only (CamStyle / HHL)


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
        if problems := _value_problems(self):
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
    if cfg.sampler.num_ids < 2 or cfg.sampler.num_instances < 1:
        problems.append("sampler needs num_ids >= 2 and num_instances >= 1 (batch-hard triplet)")
    for key, value in (("camstyle.share", cfg.camstyle.share), ("camstyle.lsr_epsilon", cfg.camstyle.lsr_epsilon),
                       ("loss.label_smoothing", cfg.loss.label_smoothing), ("input.color_jitter", i.color_jitter)):
        if not 0.0 <= value < 1.0:
            problems.append(f"{key} must be in [0, 1), got {value}")
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
    return problems + _recipe_problems(cfg)


def _recipe_problems(cfg: ReidConfig) -> list[str]:
    """The paper-recipe options: heads, random batches, SGD, HHL's separate batches."""
    m, s, o, h, mode = cfg.model, cfg.sampler, cfg.optim, cfg.hhl, cfg.train.mode
    problems = []
    if m.head == "ide" and m.embed_dim < 1:
        problems.append(f"model.head=ide needs model.embed_dim >= 1 (the FC width; IDE: 1024), got {m.embed_dim}")
    if not 0.0 <= m.dropout < 1.0 or m.triplet_dim < 0:
        problems.append(f"model.dropout must be in [0, 1) and model.triplet_dim >= 0, got {m.dropout}, {m.triplet_dim}")
    if not 0.0 <= o.momentum < 1.0 or (o.name == "sgd" and o.nesterov and o.momentum == 0):
        problems.append(f"optim.momentum must be in [0, 1) and > 0 with optim.nesterov, got {o.momentum}")
    if s.batch_size < 1 or h.ce_batch < 0 or h.num_views < 0:
        problems.append(f"sampler.batch_size must be >= 1, hhl.ce_batch and hhl.num_views >= 0, got "
                        f"{s.batch_size}, {h.ce_batch}, {h.num_views}")
    # The default epoch length counts P x K batches (trainer._Setup); other batches need it set.
    if s.kind == "random" and mode != "hhl" and o.iters_per_epoch == 0:
        problems.append("sampler.kind=random needs optim.iters_per_epoch > 0 (the official epoch: "
                        "floor(training images / sampler.batch_size))")
    if s.kind == "random" and mode != "hhl" and cfg.loss.triplet_weight > 0:
        problems.append("sampler.kind=random batches have no identity structure for the batch-hard triplet: "
                        "set loss.triplet_weight=0 or sampler.kind=pk")
    if s.kind == "random" and mode == "camstyle" and cfg.camstyle.same_ids:
        problems.append("camstyle.same_ids draws generated images of the batch's P identities: it needs "
                        "sampler.kind=pk (set camstyle.same_ids=false with random batches)")
    if mode == "hhl" and s.kind != "pk":
        problems.append("train.mode=hhl trains its triplet on P x K source batches: sampler.kind must be pk "
                        "(hhl.ce_batch gives the separate random CE batch)")
    if mode == "hhl" and h.ce_batch > 0 and o.iters_per_epoch == 0:
        problems.append("hhl.ce_batch > 0 needs optim.iters_per_epoch > 0 (HHL's epoch: "
                        "floor(source training images / hhl.ce_batch))")
    return problems
