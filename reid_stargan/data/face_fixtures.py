"""Small CelebA-format and RaFD-format fixture folders drawn from a seed (numpy + Pillow only).

They let the StarGAN face setting run anywhere without the real data sets: tests use them, and the
pipeline's face-setting row trains on them. The pictures are cartoon faces whose attributes are
visible, so a short training run can learn them:

- CelebA format (`ROOT/images/NNNNNN.jpg`, `ROOT/list_attr_celeba.txt` with all 40 attribute
  columns): hair colour (black / blond / brown / gray / none, mutually exclusive) paints the hair,
  `Male` draws a beard shadow, `Young` brightens the skin and removes wrinkle lines; the other
  attributes are random.
- RaFD format (`ROOT/train/<expression>/*.jpg`, `ROOT/test/<expression>/*.jpg`): eight expressions
  drawn as different mouths and eyebrows.

Example::

    from reid_stargan.data.face_fixtures import write_celeba_fixture, write_rafd_fixture
    write_celeba_fixture("data/celeba_fixture", num_images=200, seed=0)
    write_rafd_fixture("data/rafd_fixture", per_expression=20, seed=0)
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from reid_stargan.data.datasets import RAFD_EXPRESSIONS
from reid_stargan.utils.io import atomic_write_bytes, atomic_write_text

CELEBA_ATTRS = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
HAIR = {"Black_Hair": (25, 20, 20), "Blond_Hair": (235, 200, 90), "Brown_Hair": (120, 70, 35),
        "Gray_Hair": (160, 160, 165)}


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _face(rng: np.random.Generator, size: int, hair: tuple[int, int, int] | None, male: bool, young: bool,
          expression: str | None = None) -> Image.Image:
    bg = tuple(int(c) for c in rng.integers(60, 200, 3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    s = size / 64
    jitter = rng.uniform(-2, 2, 2) * s
    cx, cy = size / 2 + jitter[0], size / 2 + 2 * s + jitter[1]
    skin_v = rng.uniform(0.75, 1.0) * (1.0 if young else 0.8)
    skin = tuple(int(c * skin_v) for c in (240, 200, 170))
    if hair is not None:
        d.ellipse([cx - 22 * s, cy - 28 * s, cx + 22 * s, cy + 10 * s], fill=hair)
    d.ellipse([cx - 17 * s, cy - 20 * s, cx + 17 * s, cy + 22 * s], fill=skin)
    if male:  # beard shadow on the jaw
        d.chord([cx - 17 * s, cy - 2 * s, cx + 17 * s, cy + 22 * s], 20, 160, fill=tuple(int(c * 0.55) for c in skin))
    if not young:  # wrinkle lines on the forehead
        for k in range(3):
            y = cy - (14 - 3 * k) * s
            d.line([cx - 9 * s, y, cx + 9 * s, y], fill=(110, 80, 60), width=max(1, int(s)))
    eye_y = cy - 4 * s
    for ex in (cx - 7 * s, cx + 7 * s):
        d.ellipse([ex - 2.5 * s, eye_y - 2 * s, ex + 2.5 * s, eye_y + 2 * s], fill=(30, 30, 40))
    mouth_y = cy + 11 * s
    expr = expression or "neutral"
    brow_tilt = {"angry": 3, "disgusted": 2, "sad": -3, "fearful": -2, "surprised": 0}.get(expr, 0) * s
    brow_y = eye_y - (7 if expr in ("surprised", "fearful") else 5) * s
    for sign, ex in ((-1, cx - 7 * s), (1, cx + 7 * s)):
        lift = sign * brow_tilt / 2
        d.line([ex - 4 * s, brow_y + lift, ex + 4 * s, brow_y - lift], fill=(50, 35, 25), width=max(1, int(1.5 * s)))
    box = [cx - 7 * s, mouth_y - 4 * s, cx + 7 * s, mouth_y + 4 * s]
    if expr == "happy":
        d.chord(box, 0, 180, fill=(150, 30, 40))
    elif expr == "sad":
        d.arc([box[0], mouth_y, box[2], mouth_y + 8 * s], 200, 340, fill=(120, 30, 30), width=max(1, int(1.5 * s)))
    elif expr == "surprised":
        d.ellipse([cx - 3.5 * s, mouth_y - 4 * s, cx + 3.5 * s, mouth_y + 4 * s], fill=(90, 20, 25))
    elif expr == "fearful":
        d.rectangle([cx - 6 * s, mouth_y - 2 * s, cx + 6 * s, mouth_y + 3 * s], fill=(90, 20, 25))
    elif expr == "angry":
        d.line([cx - 6 * s, mouth_y + 1 * s, cx + 6 * s, mouth_y + 1 * s], fill=(110, 20, 20), width=max(2, int(2.5 * s)))
    elif expr == "disgusted":
        d.line([cx - 6 * s, mouth_y + 2 * s, cx + 6 * s, mouth_y - 2 * s], fill=(110, 20, 20), width=max(1, int(2 * s)))
    elif expr == "contemptuous":
        d.arc([cx, mouth_y - 3 * s, cx + 8 * s, mouth_y + 3 * s], 0, 180, fill=(110, 20, 20), width=max(1, int(1.5 * s)))
        d.line([cx - 6 * s, mouth_y, cx, mouth_y], fill=(110, 20, 20), width=max(1, int(1.5 * s)))
    else:  # neutral
        d.line([cx - 6 * s, mouth_y, cx + 6 * s, mouth_y], fill=(130, 40, 40), width=max(1, int(1.5 * s)))
    noise = rng.normal(0, 4, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def write_celeba_fixture(root: str | os.PathLike, num_images: int = 200, size: int = 64, seed: int = 0) -> Path:
    """Write `num_images` cartoon faces with a 40-column `list_attr_celeba.txt`; return `root`."""
    root = Path(root)
    rng = np.random.default_rng([seed, 11])
    hair_names = list(HAIR)
    rows = []
    for i in range(num_images):
        values = {a: int(rng.random() < 0.3) for a in CELEBA_ATTRS}
        choice = int(rng.integers(0, len(hair_names) + 1))  # last = no listed hair colour
        for k, name in enumerate(hair_names):
            values[name] = int(k == choice)
        values["Male"], values["Young"] = int(rng.random() < 0.5), int(rng.random() < 0.6)
        hair = HAIR[hair_names[choice]] if choice < len(hair_names) else (200, 90, 40)  # red: none of the four
        name = f"{i + 1:06d}.jpg"
        img = _face(np.random.default_rng([seed, 12, i]), size, hair, bool(values["Male"]), bool(values["Young"]))
        atomic_write_bytes(root / "images" / name, _jpeg(img))
        rows.append(name + " " + " ".join("1" if values[a] else "-1" for a in CELEBA_ATTRS))
    text = f"{num_images}\n" + " ".join(CELEBA_ATTRS) + "\n" + "\n".join(rows) + "\n"
    atomic_write_text(root / "list_attr_celeba.txt", text)
    return root


def write_rafd_fixture(root: str | os.PathLike, per_expression: int = 20, test_per_expression: int = 4,
                       size: int = 64, seed: int = 0) -> Path:
    """Write `ROOT/{train,test}/<expression>/*.jpg` for RaFD's 8 expressions; return `root`."""
    root = Path(root)
    for split, count in (("train", per_expression), ("test", test_per_expression)):
        for e, expr in enumerate(RAFD_EXPRESSIONS):
            for i in range(count):
                rng = np.random.default_rng([seed, 21, e, i, split == "test"])
                hair = tuple(int(c) for c in rng.integers(20, 230, 3))
                img = _face(rng, size, hair, bool(rng.random() < 0.5), bool(rng.random() < 0.6), expression=expr)
                atomic_write_bytes(root / split / expr / f"{split}_{expr}_{i:03d}.jpg", _jpeg(img))
    return root
