"""StarGAN networks: official parameter counts, non-square geometry, bad inputs."""

from __future__ import annotations

import pytest
import torch

from reid_stargan.gan import Discriminator, Generator, count_parameters, translate


def test_parameter_counts_match_official_code():
    assert count_parameters(Generator(conv_dim=64, c_dim=5, repeat_num=6)) == 8_430_528
    assert count_parameters(Discriminator(image_size=128, conv_dim=64, c_dim=5, repeat_num=6)) == 44_762_048


def test_person_crop_discriminator_head_covers_final_map():
    D = Discriminator(image_size=(256, 128), conv_dim=64, c_dim=6, repeat_num=6)
    # HHL stargan4reid: kernel (256 / 64, 128 / 64) = (4, 2) over the 2048-channel map.
    assert tuple(D.conv2.weight.shape) == (6, 2048, 4, 2)


@pytest.mark.parametrize("hw,repeat,expect_map", [((256, 128), 6, (4, 2)), ((64, 32), 5, (2, 1)), ((32, 64), 4, (2, 4))])
def test_non_square_shapes(hw, repeat, expect_map):
    torch.manual_seed(0)
    G = Generator(conv_dim=8, c_dim=6, repeat_num=1)
    D = Discriminator(image_size=hw, conv_dim=4, c_dim=6, repeat_num=repeat)
    x = torch.rand(2, 3, *hw) * 2 - 1
    y = G(x, torch.eye(6)[[1, 4]])
    assert y.shape == x.shape and y.abs().max() <= 1
    out_src, out_cls = D(y)
    assert out_src.shape == (2, 1, *expect_map)
    assert out_cls.shape == (2, 6)


def test_generator_uses_per_image_statistics_in_eval_mode():
    torch.manual_seed(0)
    G = Generator(conv_dim=8, c_dim=3, repeat_num=1).eval()
    x = torch.randn(4, 3, 16, 8)
    c = torch.eye(3)[[0, 1, 2, 0]]
    together = G(x, c)
    alone = torch.cat([G(x[i:i + 1], c[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)  # no batch coupling, no running stats
    assert not any("running" in k for k in G.state_dict())


def test_translate_checks_shapes():
    G = Generator(conv_dim=8, c_dim=3, repeat_num=1)
    x = torch.zeros(2, 3, 16, 8)
    out = translate(G, x, torch.eye(3)[[0, 2]])
    assert out.shape == (2, 3, 16, 8) and not out.requires_grad
    with pytest.raises(ValueError, match=r"\(2, 3\).*c_dim=3"):
        translate(G, x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="divisible by 4"):
        G(torch.zeros(1, 3, 18, 8), torch.zeros(1, 3))


def test_discriminator_rejects_bad_geometry():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*repeat_num = 64"):
        Discriminator(image_size=(64, 32), repeat_num=6)
    D = Discriminator(image_size=(32, 16), conv_dim=4, c_dim=2, repeat_num=3)
    with pytest.raises(ValueError, match="built for"):
        D(torch.zeros(1, 3, 16, 32))
