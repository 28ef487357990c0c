"""StarGAN generator and PatchGAN discriminator (Choi et al., CVPR 2018).

The layer layout and the module names (`main.N...`, `conv1`, `conv2`) follow the official
yunjey/stargan code, so its `*-G.ckpt` / `*-D.ckpt` state dicts load unchanged (see
`reid_stargan.gan.checkpoint`). Differences that do not change the function:

- Instance norm without running statistics (`track_running_stats=False`). The official code builds
  its norms with running statistics but never calls `G.eval()` at test time, so it always
  normalises each image by its own statistics; this module does the same in train and eval mode.
- The discriminator takes `image_size=(H, W)`; its classification head's kernel covers the whole
  final feature map `(H / 2**repeat_num, W / 2**repeat_num)`, so 256x128 person crops work
  (HHL's stargan4reid uses the same (4, 2) kernel for 256x128).

Example::

    G, D = Generator(c_dim=6), Discriminator(image_size=(256, 128), c_dim=6)
    x = torch.randn(2, 3, 256, 128)
    y = G(x, torch.eye(6)[[0, 3]])          # (2, 3, 256, 128)
    out_src, out_cls = D(y)                 # (2, 1, 4, 2), (2, 6)
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    """conv3x3 - IN - ReLU - conv3x3 - IN, plus the identity."""

    def __init__(self, dim: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            _norm(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """Image + target label -> translated image in [-1, 1]; any H, W divisible by 4."""

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6):
        super().__init__()
        self.conv_dim, self.c_dim, self.repeat_num = conv_dim, c_dim, repeat_num
        layers: list[nn.Module] = [
            nn.Conv2d(3 + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
            _norm(conv_dim),
            nn.ReLU(inplace=True),
        ]
        dim = conv_dim
        for _ in range(2):  # down-sampling
            layers += [nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1, bias=False),
                       _norm(dim * 2), nn.ReLU(inplace=True)]
            dim *= 2
        layers += [ResidualBlock(dim) for _ in range(repeat_num)]  # bottleneck
        for _ in range(2):  # up-sampling
            layers += [nn.ConvTranspose2d(dim, dim // 2, kernel_size=4, stride=2, padding=1, bias=False),
                       _norm(dim // 2), nn.ReLU(inplace=True)]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape  # (B, 3, H, W)
        if c.shape != (b, self.c_dim):
            raise ValueError(f"generator expects labels of shape ({b}, {self.c_dim}), got {tuple(c.shape)}")
        if h % 4 or w % 4:
            raise ValueError(f"generator input H, W must be divisible by 4, got {h}x{w}")
        c = c.to(x.dtype)[:, :, None, None].expand(b, self.c_dim, h, w)  # label tiled over the image
        return self.main(torch.cat([x, c], dim=1))  # (B, 3, H, W)


class Discriminator(nn.Module):
    """PatchGAN critic with an auxiliary domain classifier: x -> (out_src (B,1,h,w), out_cls (B,c_dim))."""

    def __init__(self, image_size: int | tuple[int, int] = 128, conv_dim: int = 64, c_dim: int = 5,
                 repeat_num: int = 6):
        super().__init__()
        image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        # (H, W) of the last feature map: each 4x4 stride-2 pad-1 conv halves (floor) the size.
        fh, fw = image_size[0] >> repeat_num, image_size[1] >> repeat_num
        if fh < 1 or fw < 1 or image_size[0] % (1 << repeat_num) or image_size[1] % (1 << repeat_num):
            raise ValueError(
                f"discriminator: image size {image_size[0]}x{image_size[1]} (HxW) must be divisible by "
                f"2**repeat_num = {1 << repeat_num}; lower gan.d_repeat_num or change gan.image_size"
            )
        self.image_size, self.conv_dim, self.c_dim, self.repeat_num = image_size, conv_dim, c_dim, repeat_num
        layers: list[nn.Module] = [nn.Conv2d(3, conv_dim, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
        dim = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, kernel_size=3, stride=1, padding=1, bias=False)  # real/fake per patch
        self.conv2 = nn.Conv2d(dim, c_dim, kernel_size=(fh, fw), bias=False)  # covers the whole map

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"discriminator built for {self.image_size} (HxW) images, got {tuple(x.shape[-2:])}")
        h = self.main(x)  # (B, C, h, w)
        out_src = self.conv1(h)  # (B, 1, h, w)
        out_cls = self.conv2(h)  # (B, c_dim, 1, 1)
        return out_src, out_cls.flatten(1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def set_inference(model: nn.Module) -> nn.Module:
    """eval mode + no gradients (instance norm keeps per-image statistics either way)."""
    return model.eval().requires_grad_(False)


@torch.inference_mode()
def translate(G: Generator, images: torch.Tensor, target_labels: torch.Tensor) -> torch.Tensor:
    """Render `images` (B, 3, H, W) in [-1, 1] in the domains `target_labels` (B, c_dim) -> (B, 3, H, W)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
    if target_labels.shape != (images.shape[0], G.c_dim):
        raise ValueError(
            f"target_labels must be ({images.shape[0]}, {G.c_dim}) for this generator (c_dim={G.c_dim}), "
            f"got {tuple(target_labels.shape)}"
        )
    param = next(G.parameters())
    return G(images.to(param.device, param.dtype), target_labels.to(param.device, param.dtype))
