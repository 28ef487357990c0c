"""keep_detail: the translation's low-frequency change laid on the source's own full-resolution detail."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_camstyle import make_checkpoint, make_market

from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle, with_source_detail
from reid_stargan.data.datasets import build_dataset


def _source(seed=0, size=(24, 48)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_an_unchanged_translation_gives_the_source_back():
    src = _source()
    low = np.asarray(src.resize((12, 24), Image.BILINEAR))
    out = with_source_detail(low.copy(), src)
    assert out.shape == (48, 24, 3)
    np.testing.assert_array_equal(out, np.asarray(src))  # full detail kept, not the blurry low-res copy


def test_a_uniform_shift_moves_every_pixel_by_it():
    src = _source(seed=1)
    arr = np.asarray(src).astype(int)
    low = np.asarray(src.resize((12, 24), Image.BILINEAR)).astype(int)
    fake = np.clip(low + np.array([30, -20, 0]), 0, 255).astype(np.uint8)
    out = with_source_detail(fake, src).astype(int)
    inside = (low + 30 <= 255).all() and (low - 20 >= 0).all()
    want = np.clip(arr + np.array([30, -20, 0]), 0, 255)
    if inside:  # where the shifted low-res copy was not clipped, the shift arrives exactly
        np.testing.assert_array_equal(out, want)
    else:
        assert np.abs(out - want).mean() < 3.0


def _high_frequencies(a: np.ndarray) -> np.ndarray:
    """What a 2x down-and-up resize removes from a (40, 20, 3) image."""
    blurred = Image.fromarray(a.astype(np.uint8)).resize((10, 20)).resize((20, 40))
    return a - np.asarray(blurred, dtype=np.float32)


def test_generation_with_keep_detail_writes_source_sized_images(tmp_path):
    ckpt = make_checkpoint(tmp_path / "ckpt")
    data = build_dataset("market_layout", make_market(tmp_path / "data", size=(20, 40)))
    out = tmp_path / "cam"
    summary = generate_camstyle(ckpt, data.train, out, data.num_cameras,
                                GenerateOptions(keep_detail=True, image_format="png", progress=False, workers=1))
    assert summary["images_out"] == len(data.train) * 2
    fakes = sorted(out.glob("*_fake_*.png"))
    with Image.open(fakes[0]) as im:
        assert im.size == (20, 40)  # the source's size, not the generator's 16x32
    # The output keeps the source's detail: closer to the source than the plain generator output is.
    plain = tmp_path / "plain"
    generate_camstyle(ckpt, data.train, plain, data.num_cameras,
                      GenerateOptions(resize_back=True, image_format="png", progress=False, workers=1))
    name = fakes[0].name
    src_name = name.split("_fake_")[0] + ".jpg"
    src = np.asarray(Image.open(Path(data.train[0].path).parent / src_name), dtype=np.float32)
    detail = np.asarray(Image.open(out / name), dtype=np.float32)
    blurry = np.asarray(Image.open(plain / name), dtype=np.float32)
    hf = _high_frequencies
    assert np.abs(hf(detail) - hf(src)).mean() < 0.5 * np.abs(hf(blurry) - hf(src)).mean()


def test_a_folder_of_plain_outputs_refuses_keep_detail(tmp_path):
    from reid_stargan.camstyle.generate import CamStyleError

    ckpt = make_checkpoint(tmp_path / "ckpt")
    data = build_dataset("market_layout", make_market(tmp_path / "data"))
    out = tmp_path / "cam"
    generate_camstyle(ckpt, data.train, out, data.num_cameras, GenerateOptions(progress=False, workers=1))
    with pytest.raises(CamStyleError, match="keep_detail"):
        generate_camstyle(ckpt, data.train, out, data.num_cameras,
                          GenerateOptions(keep_detail=True, progress=False, workers=1))
