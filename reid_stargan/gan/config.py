"""Typed config of a StarGAN run (`configs/stargan/*.yaml`).

Sections: `data` (the first data set) and `extra_data` (further data sets; when present the
generator reads the mask vector `[c1 | c2 | ... | mask]`), `augment`, `gan` (architecture and loss
weights), `train` (optimisation), `runtime` (device and speed switches), `log` (intervals).

Example::

    from reid_stargan.config import load_config
    from reid_stargan.gan.config import StarGANConfig
    cfg = load_config(StarGANConfig, "configs/stargan/market.yaml", ["data.root=data/market", "gan.lambda_rec=5"])
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reid_stargan.data.config import DataConfig
from reid_stargan.gan.schedule import LR_SCHEDULES


@dataclass
class AugmentConfig:
    # Per data set center-crop size before resizing (official: 178 for CelebA, 256 for RaFD); [] or 0 = none.
    center_crop: list[int] = field(default_factory=list)
    # HHL stargan4reid: resize to 9/8 of the image size, then random-crop back (288x144 -> 256x128).
    random_crop: bool = False
    hflip: bool = True


@dataclass
class GanConfig:
    image_size: tuple[int, int] = (128, 128)  # (H, W)
    c_dim: int = 0  # 0: from the data; otherwise must equal the data's domain count (checked)
    g_conv_dim: int = 64
    d_conv_dim: int = 64
    g_repeat_num: int = 6  # residual blocks in G
    d_repeat_num: int = 6  # strided convs in D
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    lambda_id: float = 0.0  # CamStyle's identity-mapping loss |x - G(x, c_org)|_1; 0 = the paper's StarGAN


@dataclass
class TrainConfig:
    batch_size: int = 16  # global batch; split evenly over torchrun ranks
    num_iters: int = 200000  # iterations (one D update per data set each; G every n_critic-th)
    num_iters_decay: int = 100000  # last iterations over which lr decays (see lr_schedule)
    # linear: to exactly 0 at the last iteration. official: yunjey/stargan's base/num_iters_decay
    # subtracted every lr_update_step iterations, which ends at 0.999 x base (gan/schedule.py)
    lr_schedule: str = "linear"
    lr_update_step: int = 1000  # official schedule only (official default 1000)
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 5
    # Not in the paper (default 0 = off): the first N iterations train G alone to reproduce its input
    # under its own label (L1), so a short CPU run starts adversarial training from an
    # identity-preserving G instead of spending its few G updates rediscovering the person.
    identity_warmup: int = 0
    # "all": the official draw, the batch's labels shuffled. "linked" (camera sets): each image's
    # target among the cameras that share a training identity with its own. Where identities are
    # nested in camera groups (CUHK03's 5 pairs), D's classifier tells the groups apart by who walks
    # there, so translations across groups learn to change the person (docs/RESULTS.md).
    targets: str = "all"
    seed: int | None = None  # null: drawn at start and written back into the run's config.yaml


@dataclass
class RuntimeConfig:
    device: str = "auto"  # auto | cpu | cuda
    # bf16 autocast where the device has bf16 kernels (CUDA, or a CPU with AVX512-BF16 / AMX); the
    # gradient penalty stays fp32. Off by default: the paper trained in fp32 (docs/RESULTS.md has
    # the bf16-vs-fp32 comparison that lets the CPU configs opt in).
    amp: bool = False
    channels_last: bool = True  # CUDA only
    compile: bool = False  # torch.compile G and D (CUDA only; the GP uses the uncompiled D)
    in_memory: bool = False  # decode every image once into a uint8 tensor
    num_workers: int = 4  # loader processes when not in memory
    threads: int = 0  # torch CPU threads; 0 = leave torch's default


@dataclass
class LogConfig:
    log_every: int = 10  # iterations between stats.jsonl / TensorBoard records
    sample_every: int = 1000
    checkpoint_every: int = 10000
    # also keep checkpoints/generator_<step>.pt at every multiple of this (0: only the latest), so
    # that translation quality can be measured against iterations and a checkpoint chosen
    snapshot_every: int = 0
    sample_rows: int = 8  # fixed inputs per data set in the sample grid
    eval_images: int = 256  # images per data set for the final D accuracy in summary.json
    tensorboard: bool = True


@dataclass
class StarGANConfig:
    data: DataConfig = field(default_factory=DataConfig)
    extra_data: list[DataConfig] = field(default_factory=list)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    log: LogConfig = field(default_factory=LogConfig)
    out_root: str = "runs"  # the CLI makes runs/NNNNN-<tag>/ here
    tag: str = "stargan"

    def __post_init__(self) -> None:
        # At load, so a bad device is named before anything runs (the other checks are in validate()).
        from reid_stargan.reid.config import check_device

        t, r, lg, g = self.train, self.runtime, self.log, self.gan
        problems = []
        if (problem := check_device(r.device, "runtime.device")) is not None:
            problems.append(problem)
        if not (t.g_lr > 0 and t.d_lr > 0):  # torch.optim.Adam would refuse them without naming the key
            problems.append(f"train.g_lr and train.d_lr must be > 0, got {t.g_lr} and {t.d_lr}")
        if not (0 <= t.beta1 < 1 and 0 <= t.beta2 < 1):
            problems.append(f"train.beta1 and train.beta2 must be in [0, 1), got {t.beta1} and {t.beta2}")
        if min(lg.log_every, lg.sample_every, lg.checkpoint_every) < 1 or lg.snapshot_every < 0:
            problems.append("log.log_every, log.sample_every and log.checkpoint_every must be >= 1 "
                            f"(got {lg.log_every}, {lg.sample_every}, {lg.checkpoint_every}), log.snapshot_every >= 0")
        if lg.sample_rows < 1 or lg.eval_images < 1:
            problems.append(f"log.sample_rows and log.eval_images must be >= 1, got {lg.sample_rows}, {lg.eval_images}")
        if r.num_workers < 0 or r.threads < 0:  # the loader would refuse them without naming the key
            problems.append(f"runtime.num_workers and runtime.threads must be >= 0, got {r.num_workers}, {r.threads}")
        if min(g.lambda_cls, g.lambda_rec, g.lambda_gp, g.lambda_id) < 0:
            problems.append("gan.lambda_cls, gan.lambda_rec, gan.lambda_gp and gan.lambda_id must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def datasets(self) -> list[DataConfig]:
        """All data sets of the run in label-layout order."""
        return [self.data, *self.extra_data]

    def validate(self) -> None:
        t, g = self.train, self.gan
        problems = []
        if t.num_iters < 1:
            problems.append(f"train.num_iters must be >= 1, got {t.num_iters}")
        if not 0 <= t.num_iters_decay <= t.num_iters:
            problems.append(f"train.num_iters_decay ({t.num_iters_decay}) must be within 0..train.num_iters ({t.num_iters})")
        if t.targets not in ("all", "linked"):
            problems.append(f"train.targets must be 'all' or 'linked', got {t.targets!r}")
        if not 0 <= t.identity_warmup < t.num_iters:
            problems.append(f"train.identity_warmup ({t.identity_warmup}) must be within 0..train.num_iters - 1")
        if t.lr_schedule not in LR_SCHEDULES:
            problems.append(f"train.lr_schedule must be one of {list(LR_SCHEDULES)}, got {t.lr_schedule!r}")
        if t.lr_update_step < 1:
            problems.append(f"train.lr_update_step must be >= 1, got {t.lr_update_step}")
        if t.n_critic < 1 or t.batch_size < 1:
            problems.append("train.n_critic and train.batch_size must be >= 1")
        if any(s < 4 or s % 4 for s in g.image_size):
            problems.append(f"gan.image_size {list(g.image_size)} (H, W) must be positive multiples of 4")
        if self.augment.center_crop and len(self.augment.center_crop) != len(self.datasets):
            problems.append(f"augment.center_crop has {len(self.augment.center_crop)} entries for "
                            f"{len(self.datasets)} data sets")
        if problems:
            raise ValueError("invalid StarGAN config: " + "; ".join(problems))
