"""Loading official yunjey/stargan and HHL stargan4reid `*-G.ckpt` / `*-D.ckpt` files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reid_stargan.gan import CheckpointError, check_c_dim, load_discriminator, load_generator, translate
from reid_stargan.gan.models import Discriminator, Generator


class OfficialStyleG(nn.Module):
    """The official network as it runs at test time: IN with running stats, left in train mode."""

    def __init__(self, conv_dim, c_dim, repeat_num):
        super().__init__()
        self.c_dim = c_dim

        def norm(ch):
            return nn.InstanceNorm2d(ch, affine=True, track_running_stats=True)

        class Res(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.main = nn.Sequential(nn.Conv2d(d, d, 3, 1, 1, bias=False), norm(d), nn.ReLU(inplace=True),
                                          nn.Conv2d(d, d, 3, 1, 1, bias=False), norm(d))

            def forward(self, x):
                return x + self.main(x)

        layers = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False), norm(conv_dim), nn.ReLU(inplace=True)]
        d = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), norm(2 * d), nn.ReLU(inplace=True)]
            d *= 2
        layers += [Res(d) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False), norm(d // 2), nn.ReLU(inplace=True)]
            d //= 2
        layers += [nn.Conv2d(d, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x, c):
        c = c[:, :, None, None].repeat(1, 1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


def _official_files(folder, conv_dim=8, c_dim=6, repeat_num=2, image_size=(64, 32), d_repeat=5, prefix=""):
    torch.manual_seed(0)
    ref = OfficialStyleG(conv_dim, c_dim, repeat_num)
    for m in ref.modules():  # non-trivial affine parameters and running statistics
        if isinstance(m, nn.InstanceNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.2)
            nn.init.normal_(m.bias, 0.0, 0.2)
            m.running_mean.normal_()
            m.num_batches_tracked += 7
    D = Discriminator(image_size, 4, c_dim, d_repeat)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({prefix + k: v for k, v in ref.state_dict().items()}, folder / "1000-G.ckpt")
    torch.save({prefix + k: v for k, v in D.state_dict().items()}, folder / "1000-D.ckpt")
    return ref.train(), D


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_generator_loads_and_matches(tmp_path, prefix):
    ref, _ = _official_files(tmp_path / "models", prefix=prefix)
    assert any("running_mean" in k for k in ref.state_dict())  # the official key set, buffers included
    G, info = load_generator(tmp_path / "models" / "1000-G.ckpt")
    assert info["format"] == "official" and info["domain_names"] is None
    assert (info["c_dim"], info["conv_dim"], info["repeat_num"], info["step"]) == (6, 8, 2, 1000)
    assert info["image_size"] == (64, 32)  # read from the sibling D's classification kernel
    x = torch.rand(3, 3, 64, 32) * 2 - 1
    c = torch.eye(6)[[0, 2, 5]]
    with torch.no_grad():
        expect = ref(x, c)
    torch.testing.assert_close(translate(G, x, c), expect, rtol=1e-5, atol=1e-5)


def test_hhl_person_discriminator_geometry(tmp_path):
    _official_files(tmp_path / "hhl", image_size=(256, 128), d_repeat=6)
    D, info = load_discriminator(tmp_path / "hhl" / "1000-G.ckpt")
    assert info["image_size"] == (256, 128) and info["c_dim"] == 6 and info["repeat_num"] == 6
    assert tuple(D.conv2.weight.shape[2:]) == (4, 2)
    out_src, out_cls = D(torch.zeros(1, 3, 256, 128))
    assert out_cls.shape == (1, 6)


def test_official_generator_without_discriminator(tmp_path):
    _official_files(tmp_path / "m")
    (tmp_path / "m" / "1000-D.ckpt").unlink()
    G, info = load_generator(tmp_path / "m" / "1000-G.ckpt")
    assert info["image_size"] is None and G.c_dim == 6
    assert load_discriminator(tmp_path / "m" / "1000-G.ckpt") is None
    _, info = load_generator(tmp_path / "m" / "1000-G.ckpt", image_size=(256, 128))
    assert info["image_size"] == (256, 128)


def test_bad_checkpoints(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "x-G.ckpt")
    with pytest.raises(CheckpointError, match="not a StarGAN generator"):
        load_generator(tmp_path / "x-G.ckpt")
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "missing.pt")
    G = Generator(8, 6, 2)
    state = G.state_dict()
    state.pop("main.1.weight")
    torch.save(state, tmp_path / "y-G.ckpt")
    with pytest.raises(CheckpointError, match="missing"):
        load_generator(tmp_path / "y-G.ckpt")
    with pytest.raises(CheckpointError, match="c_dim=6 but the data set has 8 domains"):
        check_c_dim({"c_dim": 6}, 8, "the data set")
