"""StarGAN (Choi et al., CVPR 2018) with cameras, attributes or expressions as domains.

Public API::

    from reid_stargan.gan import Generator, Discriminator, translate, load_generator, load_discriminator
    G, info = load_generator("runs/00001-stargan-market/checkpoints/generator.pt")
    fake = translate(G, images, labels)        # (B, 3, H, W) in [-1, 1], labels (B, info["c_dim"])

Training: `reid_stargan.gan.trainer.train_stargan(cfg, run_dir)` with a
`reid_stargan.gan.config.StarGANConfig`.
"""

from reid_stargan.gan.checkpoint import CheckpointError, check_c_dim, load_discriminator, load_generator
from reid_stargan.gan.models import Discriminator, Generator, count_parameters, translate

__all__ = ["CheckpointError", "Discriminator", "Generator", "check_c_dim", "count_parameters",
           "load_discriminator", "load_generator", "translate"]
