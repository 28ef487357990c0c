"""Built-in synthetic multi-camera re-ID benchmark (numpy + Pillow only).

A procedural "world" of pedestrians seen by cameras that each have their own style. Everything is
drawn from numpy Generators keyed by ``(seed, kind, ids...)``, so any image depends only on its own
identity, camera and frame, never on the order of generation:

- identity appearance  <- (seed, 1, pid): garment colours + patterns, body shape, skin / hair,
  accessories (bag, backpack, hat);
- camera style         <- (seed, 2, camid): white balance (strong colour cast), exposure, gamma,
  contrast, saturation, blur, noise, background scene and crop geometry;
- pose                 <- (seed, 3, pid, camid, frame): scale, translation, flip, front/back view,
  stride, arm swing, background shift, lighting;
- sensor noise         <- (seed, 4, pid, camid, frame).

``make_synthetic`` writes a Market-1501-layout data set plus ``synthetic_meta.json`` (parameters,
camera styles, identity appearances) and ``meta.jsonl`` (one line per image: file, pid, camid, frame,
pose), so ``SyntheticWorld.from_root(root).render(pid, pose, camid)`` re-renders any image, and any
(identity, pose) can be rendered under any camera (``true_rendering``).

Example::

    from reid_stargan.data.synthetic import PRESETS, make_synthetic, true_rendering
    summary = make_synthetic("data/synthetic", **PRESETS["demo"])
    image, mask = true_rendering("data/synthetic", "0001_c1s1_000025_01.jpg", target_camid=3)
"""

from __future__ import annotations

import colorsys
import functools
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from reid_stargan.utils.io import atomic_write_json

FORMAT_VERSION = 1
META_FILE = "synthetic_meta.json"
IMAGE_META_FILE = "meta.jsonl"
SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}

# Streams of the per-key random generators (the second element of every key).
_STREAM_IDENTITY, _STREAM_CAMERA, _STREAM_POSE, _STREAM_NOISE, _STREAM_SPLIT = 1, 2, 3, 4, 5

UPPER_PATTERNS = ("plain", "hstripes", "vstripes", "checks", "twotone", "logo")
LOWER_STYLES = ("trousers", "shorts", "skirt")
ACCESSORIES = ("none", "bag", "backpack", "hat")
BACKGROUNDS = ("gradient", "wall_floor", "tiles", "fence", "blotches")

PRESETS: dict[str, dict[str, Any]] = {
    # For tests: a couple of seconds at most.
    "tiny": dict(num_train_ids=8, num_test_ids=8, num_cameras=4, images_per_id_cam=3,
                 min_cameras_per_id=2, max_cameras_per_id=3, height=64, width=32),
    # For the CPU demo (StarGAN + re-ID training in minutes on 2 cores).
    "demo": dict(num_train_ids=100, num_test_ids=100, num_cameras=6, images_per_id_cam=4,
                 min_cameras_per_id=2, max_cameras_per_id=3, height=64, width=32),
}


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *[int(k) for k in key]])


def _r(x: float) -> float:
    """Round drawn parameters so they survive a JSON round trip unchanged (and stay readable)."""
    return round(float(x), 5)


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return tuple(_r(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


class _Serializable:
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        if unknown := set(d) - names:
            raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}; valid: {sorted(names)}")
        # JSON turns tuples into lists; colours are tuples here so instances stay hashable / comparable.
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class Appearance(_Serializable):
    """What makes an identity recognisable (all colours are linear RGB in [0, 1])."""

    height: float  # body height relative to the crop
    width: float  # body width factor
    head: float  # head size factor
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    long_hair: bool
    upper: tuple[float, float, float]
    upper2: tuple[float, float, float]  # pattern colour
    upper_pattern: str
    pattern_period: float
    long_sleeves: bool
    lower: tuple[float, float, float]
    lower_style: str
    shoes: tuple[float, float, float]
    accessory: str
    accessory_color: tuple[float, float, float]
    bag_side: int  # +1 / -1: which side the shoulder bag hangs on


@dataclass(frozen=True)
class CameraStyle(_Serializable):
    """One camera's imaging pipeline and scene."""

    wb_gains: tuple[float, float, float]  # white balance / colour cast
    exposure: float
    gamma: float
    contrast: float
    saturation: float
    haze: tuple[float, float, float]  # additive tint (haze / flare), pre-gamma
    blur_sigma: float  # in pixels of a 64-pixel-high image (scaled with height)
    noise_std: float
    crop_scale: float  # detector crop tightness
    crop_dy: float
    background: str
    bg_color1: tuple[float, float, float]
    bg_color2: tuple[float, float, float]
    bg_period: float
    horizon: float


@dataclass(frozen=True)
class Pose(_Serializable):
    """Per-image geometry and lighting (scene jitter included, so a pose re-renders exactly)."""

    scale: float
    dx: float
    dy: float
    flip: bool
    back_view: bool
    stride: float  # leg spread, -1..1 (sign = which leg forward)
    arm_swing: float
    light: float  # brightness jitter
    bg_shift: float  # background texture offset


def draw_appearance(seed: int, pid: int) -> Appearance:
    """Procedural appearance of identity ``pid`` (any int; independent of every other identity)."""
    g = _rng(seed, _STREAM_IDENTITY, pid)

    def garment_color():
        if g.random() < 0.3:  # black / grey / white garments are common
            v = float(g.choice([0.12, 0.45, 0.9]) + g.uniform(-0.06, 0.06))
            return _hsv(0.0, 0.0, v)
        return _hsv(g.random(), g.uniform(0.45, 0.95), g.uniform(0.3, 0.95))

    upper = garment_color()
    upper2 = garment_color()
    # A pattern needs contrast to be visible; push the second colour away in brightness.
    if abs(sum(upper) - sum(upper2)) < 0.9:
        upper2 = tuple(_r(1.0 - c) for c in upper)
    skin_v = g.uniform(0.35, 0.95)
    return Appearance(
        height=_r(g.uniform(0.84, 0.98)),
        width=_r(g.uniform(0.8, 1.25)),
        head=_r(g.uniform(0.85, 1.15)),
        skin=_hsv(g.uniform(0.03, 0.09), g.uniform(0.3, 0.6), skin_v),
        hair=_hsv(g.uniform(0.02, 0.12), g.uniform(0.2, 0.8), g.uniform(0.05, 0.7)),
        long_hair=bool(g.random() < 0.35),
        upper=upper,
        upper2=upper2,
        upper_pattern=str(g.choice(UPPER_PATTERNS)),
        pattern_period=_r(g.uniform(0.045, 0.09)),
        long_sleeves=bool(g.random() < 0.5),
        lower=garment_color(),
        lower_style=str(g.choice(LOWER_STYLES, p=[0.6, 0.2, 0.2])),
        shoes=garment_color(),
        accessory=str(g.choice(ACCESSORIES, p=[0.4, 0.2, 0.2, 0.2])),
        accessory_color=garment_color(),
        bag_side=int(g.choice([-1, 1])),
    )


def draw_camera(seed: int, camid: int, num_cameras: int, style_strength: float = 1.0) -> CameraStyle:
    """Style of camera ``camid`` (0-based). Casts are spread around the hue circle so cameras differ.

    ``style_strength`` scales every photometric deviation from a neutral camera (0: all cameras
    render the person alike except for background, crop and noise; 1: the default strong styles).
    """
    g = _rng(seed, _STREAM_CAMERA, camid)
    k = float(style_strength)
    cast_hue = (camid + g.uniform(-0.25, 0.25)) / num_cameras + 0.07 * seed
    cast_strength = g.uniform(0.35, 0.65)
    cast = np.array(colorsys.hsv_to_rgb(cast_hue % 1.0, 1.0, 1.0))
    gains = 1.0 + cast_strength * (cast - cast.mean()) * 1.5
    gains = 1.0 + k * (gains / gains.mean() - 1.0)
    haze = np.array(colorsys.hsv_to_rgb(g.random(), g.uniform(0.2, 0.8), 1.0)) * g.uniform(0.0, 0.12) * k
    return CameraStyle(
        wb_gains=tuple(_r(x) for x in gains),
        exposure=_r(1.0 + k * g.uniform(-0.25, 0.25)),
        gamma=_r(np.exp(k * g.uniform(-0.45, 0.45))),
        contrast=_r(1.0 + k * g.uniform(-0.4, 0.3)),
        saturation=_r(1.0 + k * g.uniform(-0.65, 0.4)),
        haze=tuple(_r(x) for x in haze),
        blur_sigma=_r(k * g.choice([0.0, g.uniform(0.5, 1.3)], p=[0.35, 0.65])),
        noise_std=_r(g.uniform(0.005, 0.04)),
        crop_scale=_r(g.uniform(0.86, 1.0)),
        crop_dy=_r(g.uniform(-0.03, 0.03)),
        background=str(BACKGROUNDS[(camid + int(g.integers(len(BACKGROUNDS)))) % len(BACKGROUNDS)]),
        bg_color1=_hsv(g.random(), g.uniform(0.1, 0.7), g.uniform(0.3, 0.9)),
        bg_color2=_hsv(g.random(), g.uniform(0.1, 0.7), g.uniform(0.2, 0.8)),
        bg_period=_r(g.uniform(0.15, 0.45)),
        horizon=_r(g.uniform(0.55, 0.8)),
    )


def draw_pose(seed: int, pid: int, camid: int, frame: int) -> Pose:
    """Pose of frame ``frame`` of identity ``pid`` in camera ``camid`` (the image's own jitter)."""
    g = _rng(seed, _STREAM_POSE, pid, camid, frame)
    return Pose(
        scale=_r(g.uniform(0.88, 1.0)),
        dx=_r(g.uniform(-0.07, 0.07)),
        dy=_r(g.uniform(-0.03, 0.03)),
        flip=bool(g.random() < 0.5),
        back_view=bool(g.random() < 0.3),
        stride=_r(g.uniform(-1.0, 1.0)),
        arm_swing=_r(g.uniform(-1.0, 1.0)),
        light=_r(g.uniform(0.85, 1.15)),
        bg_shift=_r(g.uniform(0.0, 1.0)),
    )


# ----------------------------------------------------------------------------------------------------
# Rendering primitives on coordinate grids (all vectorised; masks are bool (H, W)).


def _ellipse(u, v, cu, cv, ru, rv):
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0


def _capsule(u, v, a, b, radius):
    """Points within ``radius`` of the segment a-b."""
    (au, av), (bu, bv) = a, b
    du, dv = bu - au, bv - av
    t = np.clip(((u - au) * du + (v - av) * dv) / (du * du + dv * dv + 1e-12), 0.0, 1.0)
    return (u - au - t * du) ** 2 + (v - av - t * dv) ** 2 <= radius * radius


def _box(u, v, u0, u1, v0, v1):
    return (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (H, W, C) with edge padding (loops over kernel taps only)."""
    if sigma <= 0.05:
        return img
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    h, w = img.shape[:2]
    padded = np.pad(img, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    img = sum(t * padded[i : i + h] for i, t in enumerate(taps))
    padded = np.pad(img, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(t * padded[:, i : i + w] for i, t in enumerate(taps))


class SyntheticWorld:
    """Renderer of the synthetic world: identities, cameras and poses, all reproducible from a seed.

    ``cameras`` / ``identities`` override the seed-drawn values (used when rebuilding from a data set's
    ``synthetic_meta.json``, so a stored set re-renders exactly even if the drawing code changes).
    """

    def __init__(self, seed: int = 0, num_cameras: int = 6, height: int = 64, width: int = 32,
                 supersample: int = 2, cameras: list[CameraStyle] | None = None,
                 identities: dict[int, Appearance] | None = None, style_strength: float = 1.0):
        self.seed, self.num_cameras = int(seed), int(num_cameras)
        self.height, self.width, self.supersample = int(height), int(width), int(supersample)
        self.cameras = list(cameras) if cameras is not None else [
            draw_camera(self.seed, c, self.num_cameras, style_strength) for c in range(self.num_cameras)]
        if len(self.cameras) != self.num_cameras:
            raise ValueError(f"{len(self.cameras)} camera styles given for num_cameras={self.num_cameras}")
        self._identities = dict(identities or {})
        hs, ws = self.height * self.supersample, self.width * self.supersample
        # Pixel-centre grid of the supersampled canvas, in units of the canvas height.
        self._y, self._x = np.meshgrid((np.arange(hs) + 0.5) / hs, (np.arange(ws) + 0.5) / hs, indexing="ij")

    # --- construction from a written data set ---
    @classmethod
    def from_meta(cls, meta: dict) -> SyntheticWorld:
        p = meta["params"]
        return cls(seed=p["seed"], num_cameras=p["num_cameras"], height=p["height"], width=p["width"],
                   supersample=p["supersample"],
                   cameras=[CameraStyle.from_dict(c) for c in meta["cameras"]],
                   identities={int(k): Appearance.from_dict(a) for k, a in meta["identities"].items()})

    @classmethod
    def from_root(cls, root: str | os.PathLike) -> SyntheticWorld:
        return cls.from_meta(read_meta(root))

    def appearance(self, pid: int) -> Appearance:
        if pid not in self._identities:
            self._identities[pid] = draw_appearance(self.seed, pid)
        return self._identities[pid]

    def pose(self, pid: int, camid: int, frame: int) -> Pose:
        return draw_pose(self.seed, pid, camid, frame)

    # --- rendering ---
    def render(self, pid: int, pose: Pose | dict, camera: int | CameraStyle | None,
               noise_key: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Render identity ``pid`` in ``pose`` as seen by ``camera`` (0-based camid, a CameraStyle, or
        None for the neutral, style-free view).

        Returns ``(image, mask)``: uint8 (H, W, 3) RGB and bool (H, W) person mask. Sensor noise is
        added only when ``noise_key`` is given (it seeds the noise; the writer uses (pid, camid, frame)).
        """
        if isinstance(pose, dict):
            pose = Pose.from_dict(pose)
        cam = self.cameras[camera] if isinstance(camera, (int, np.integer)) else camera
        app = self.appearance(pid)
        background = self._background(cam, pose)  # (Hs, Ws, 3)
        person, coverage = self._person(app, pose, cam)  # (Hs, Ws, 3), (Hs, Ws)
        scene = np.where(coverage[..., None], person, background)

        s = self.supersample
        h, w = self.height, self.width
        scene = scene.reshape(h, s, w, s, 3).mean(axis=(1, 3))  # (H, W, 3) anti-aliased
        mask = coverage.reshape(h, s, w, s).mean(axis=(1, 3)) >= 0.5  # (H, W)
        image = scene * pose.light
        if cam is not None:
            image = self._apply_camera(image, cam, noise_key)
        return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), mask

    def _apply_camera(self, img: np.ndarray, cam: CameraStyle, noise_key) -> np.ndarray:
        img = img * np.asarray(cam.wb_gains) * cam.exposure + np.asarray(cam.haze)
        gray = img.mean(axis=2, keepdims=True)
        img = gray + cam.saturation * (img - gray)
        img = np.clip((img - 0.5) * cam.contrast + 0.5, 0.0, 1.0) ** cam.gamma
        img = _gaussian_blur(img, cam.blur_sigma * self.height / 64.0)
        if noise_key is not None and cam.noise_std > 0:
            g = _rng(self.seed, _STREAM_NOISE, *noise_key)
            img = img + g.normal(0.0, cam.noise_std, size=img.shape)
        return img

    def _background(self, cam: CameraStyle | None, pose: Pose) -> np.ndarray:
        y, x = self._y, self._x
        if cam is None:  # neutral view: flat mid grey
            return np.full(y.shape + (3,), 0.5)
        c1, c2 = np.asarray(cam.bg_color1), np.asarray(cam.bg_color2)
        xs = x + pose.bg_shift * cam.bg_period  # the camera pans a little between frames
        if cam.background == "gradient":
            t = y[..., None]
        elif cam.background == "wall_floor":
            wall = 0.1 * (np.sin(2 * np.pi * xs / cam.bg_period) > 0.8)
            t = np.where(y > cam.horizon, 1.0, wall)[..., None]
        elif cam.background == "tiles":
            t = ((np.floor(xs / cam.bg_period * 2) + np.floor(y / cam.bg_period * 2)) % 2)[..., None]
            t = 0.3 + 0.4 * t
        elif cam.background == "fence":
            t = (0.5 + 0.5 * np.sin(2 * np.pi * xs / (cam.bg_period * 0.5)))[..., None]
        else:  # blotches: smooth low-frequency texture
            t = 0.5 + 0.25 * (np.sin(2 * np.pi * (xs / cam.bg_period + 0.7 * y))
                              * np.cos(2 * np.pi * (y / (1.7 * cam.bg_period) - 0.3 * xs)))
            t = t[..., None]
        return c1 * (1.0 - t) + c2 * t

    def _person(self, app: Appearance, pose: Pose, cam: CameraStyle | None):
        """Paint the person on the supersampled canvas; returns colour (Hs, Ws, 3) and coverage mask."""
        crop_scale, crop_dy = (cam.crop_scale, cam.crop_dy) if cam is not None else (1.0, 0.0)
        canvas_w = self.width / self.height  # canvas width in units of its height
        body_h = app.height * pose.scale * crop_scale
        top = (1.0 - body_h) / 2 + pose.dy + crop_dy
        cx = canvas_w / 2 + pose.dx * canvas_w
        v = (self._y - top) / body_h  # 0 at the top of the head, 1 at the soles
        u = (self._x - cx) / body_h / app.width  # 0 on the body's axis
        if pose.flip:
            u = -u

        color = np.zeros(u.shape + (3,))
        covered = np.zeros(u.shape, dtype=bool)

        def paint(mask, rgb):
            nonlocal covered
            color[mask] = rgb if np.ndim(rgb) == 1 else rgb[mask]
            covered = covered | mask

        sw, ww = 0.13, 0.105  # shoulder / waist half widths
        waist = 0.52
        head_ru, head_rv = 0.048 * app.head, 0.068 * app.head
        head_cv = 0.02 + head_rv
        head = _ellipse(u, v, 0.0, head_cv, head_ru, head_rv)
        upper, upper2 = np.asarray(app.upper), np.asarray(app.upper2)
        acc = np.asarray(app.accessory_color)

        # Behind the body.
        if app.long_hair and not pose.back_view:
            paint(_box(u, v, -head_ru * 1.15, head_ru * 1.15, head_cv, head_cv + 0.14), app.hair)
        if app.accessory == "backpack" and not pose.back_view:
            paint(_box(u, v, -sw - 0.03, sw + 0.03, 0.17, 0.46), acc)

        # Legs and lower garment.
        stride = 0.07 * pose.stride
        hips = (-0.045, waist), (0.045, waist)
        feet = (-0.05 - stride, 0.95), (0.05 + stride, 0.95)
        legs = _capsule(u, v, hips[0], feet[0], 0.045) | _capsule(u, v, hips[1], feet[1], 0.045)
        if app.lower_style == "trousers":
            paint(legs, app.lower)
        else:
            paint(legs, app.skin)
            if app.lower_style == "shorts":
                paint(legs & (v < 0.7), app.lower)
            else:  # skirt: a trapezoid from the waist
                half = 0.1 + (v - waist) * 0.35
                paint((v >= waist - 0.01) & (v <= 0.74) & (np.abs(u) <= half), app.lower)
        for fu, fv in feet:
            paint(_ellipse(u, v, fu + 0.015 * np.sign(fu), fv + 0.015, 0.055, 0.028), app.shoes)

        # Torso with its pattern (pattern coordinates move with the body).
        half = sw + (ww - sw) * np.clip((v - 0.16) / (waist - 0.16), 0.0, 1.0)
        torso = (v >= 0.15) & (v <= waist + 0.02) & (np.abs(u) <= half)
        period = app.pattern_period
        pattern = {
            "plain": np.zeros_like(torso),
            "hstripes": (v / period) % 1.0 < 0.5,
            "vstripes": ((u + 1.0) / period) % 1.0 < 0.5,
            "checks": (((v / period) % 1.0 < 0.5) ^ (((u + 1.0) / period) % 1.0 < 0.5)),
            "twotone": v < 0.32,
            "logo": _box(u, v, -0.05, 0.05, 0.22, 0.33) & (not pose.back_view),
        }[app.upper_pattern]
        paint(torso, np.where(pattern[..., None], upper2, upper))
        paint(_box(u, v, -0.022, 0.022, head_cv + head_rv * 0.7, 0.17), app.skin)  # neck

        # Arms swing in opposite directions.
        swing = 0.05 * pose.arm_swing
        for side in (-1, 1):
            shoulder = (side * (sw - 0.02), 0.19)
            hand = (side * (sw + 0.025) + side * swing * 0.3, 0.5 + side * swing)
            arm = _capsule(u, v, shoulder, hand, 0.033)
            paint(arm, upper if app.long_sleeves else app.skin)
            if not app.long_sleeves:
                paint(arm & (v < 0.29), upper)
            paint(_ellipse(u, v, hand[0], hand[1] + 0.02, 0.03, 0.03), app.skin)

        # Accessories in front.
        if app.accessory == "backpack":
            if pose.back_view:
                paint(_box(u, v, -sw + 0.015, sw - 0.015, 0.18, 0.46), acc)
            else:  # straps over the chest
                paint(_box(u, v, -0.075, -0.05, 0.15, 0.38) | _box(u, v, 0.05, 0.075, 0.15, 0.38), acc)
        elif app.accessory == "bag":
            side = app.bag_side
            strap = _capsule(u, v, (-side * 0.09, 0.16), (side * 0.15, 0.47), 0.012)
            bag = _box(u, v, min(side * 0.12, side * 0.24), max(side * 0.12, side * 0.24), 0.45, 0.62)
            paint(strap | bag, acc)

        # Head: face (or the back of the head), hair, hat.
        paint(head, app.hair if pose.back_view else app.skin)
        hair_line = head_cv - (0.2 if app.long_hair else 0.45) * head_rv
        paint(_ellipse(u, v, 0.0, head_cv - 0.006, head_ru * 1.08, head_rv * 1.06) & (v < hair_line), app.hair)
        if app.accessory == "hat":
            paint(_ellipse(u, v, 0.0, head_cv - 0.01, head_ru * 1.12, head_rv * 1.05) & (v < head_cv - 0.02), acc)
            paint(_box(u, v, -head_ru * 1.5, head_ru * 1.5, head_cv - 0.035, head_cv - 0.015), acc)

        # Soft cylindrical shading, so the body is not a flat cut-out.
        shade = 1.0 - 0.3 * np.clip(np.abs(u) / 0.2, 0.0, 1.0) ** 2
        return color * shade[..., None], covered


# ----------------------------------------------------------------------------------------------------
# Writing a data set.


def _plan(seed: int, num_train_ids: int, num_test_ids: int, num_cameras: int, images_per_id_cam: int,
          min_cameras_per_id: int, max_cameras_per_id: int) -> list[dict]:
    """One entry per image: split, pid, camid, frame, file name (Market-1501 naming)."""
    entries = []
    for pid in range(1, num_train_ids + num_test_ids + 1):
        g = _rng(seed, _STREAM_SPLIT, pid)
        n_cams = int(g.integers(min_cameras_per_id, max_cameras_per_id + 1))
        cams = sorted(int(c) for c in g.choice(num_cameras, size=n_cams, replace=False))
        for camid in cams:
            for frame in range(images_per_id_cam):
                if pid <= num_train_ids:
                    split = "train"
                else:  # Market-1501 style: one query per identity and camera, the rest is gallery
                    split = "query" if frame == 0 else "gallery"
                name = f"{pid:04d}_c{camid + 1}s1_{(frame + 1) * 25:06d}_01.jpg"
                entries.append(dict(file=f"{SPLIT_DIRS[split]}/{name}", split=split, pid=pid,
                                    camid=camid, frame=frame))
    return entries


def make_synthetic(out_root: str | os.PathLike, num_train_ids: int = 100, num_test_ids: int = 100,
                   num_cameras: int = 6, images_per_id_cam: int = 4, height: int = 64, width: int = 32,
                   seed: int = 0, min_cameras_per_id: int = 2, max_cameras_per_id: int = 3,
                   supersample: int = 2, jpeg_quality: int = 95, style_strength: float = 1.0,
                   overwrite: bool = False) -> dict:
    """Write the synthetic set to ``out_root`` in Market-1501 layout and return a summary dict.

    The size defaults are the "demo" preset; ``make_synthetic(root, **PRESETS["tiny"])`` writes
    another. The set is built in a sibling temporary folder and renamed into place, so ``out_root``
    is either complete or absent. An existing ``out_root`` is an error unless ``overwrite`` (and it is a synthetic set).
    Same arguments -> byte-identical files.
    """
    if not 2 <= min_cameras_per_id <= max_cameras_per_id <= num_cameras:
        raise ValueError(f"need 2 <= min_cameras_per_id ({min_cameras_per_id}) <= max_cameras_per_id "
                         f"({max_cameras_per_id}) <= num_cameras ({num_cameras})")
    if images_per_id_cam < 2:
        raise ValueError("images_per_id_cam must be >= 2 (one query + at least one gallery image)")
    if num_train_ids + num_test_ids > 9999 or num_cameras > 9:
        raise ValueError("Market-1501 names allow at most 9999 identities and 9 cameras")

    from PIL import Image

    t0 = time.perf_counter()
    out_root = Path(out_root)
    if out_root.exists() and any(out_root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_root} exists; pass overwrite=True (--overwrite) to replace it")
        if not (out_root / META_FILE).is_file():
            raise FileExistsError(f"{out_root} is not a synthetic set (no {META_FILE}); refusing to replace it")

    params = dict(format_version=FORMAT_VERSION, seed=seed, num_train_ids=num_train_ids,
                  num_test_ids=num_test_ids, num_cameras=num_cameras, images_per_id_cam=images_per_id_cam,
                  min_cameras_per_id=min_cameras_per_id, max_cameras_per_id=max_cameras_per_id,
                  height=height, width=width, supersample=supersample, jpeg_quality=jpeg_quality,
                  style_strength=style_strength)
    world = SyntheticWorld(seed, num_cameras, height, width, supersample, style_strength=style_strength)
    entries = _plan(seed, num_train_ids, num_test_ids, num_cameras, images_per_id_cam,
                    min_cameras_per_id, max_cameras_per_id)

    tmp_root = out_root.parent / f"{out_root.name}.tmp-{os.getpid()}"
    if tmp_root.exists():
        shutil.rmtree(tmp_root)
    for d in SPLIT_DIRS.values():
        (tmp_root / d).mkdir(parents=True)
    lines = []
    for e in entries:
        pose = world.pose(e["pid"], e["camid"], e["frame"])
        image, _ = world.render(e["pid"], pose, e["camid"], noise_key=(e["pid"], e["camid"], e["frame"]))
        # Plain writes: the whole folder is renamed into place at the end (one atomic commit point).
        Image.fromarray(image).save(tmp_root / e["file"], quality=jpeg_quality, subsampling=0)
        lines.append(json.dumps(dict(e, pose=pose.to_dict())))
    (tmp_root / IMAGE_META_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")

    cams_of = {}
    for e in entries:
        cams_of.setdefault(e["pid"], set()).add(e["camid"])
    meta = dict(
        params=params,
        cameras=[c.to_dict() for c in world.cameras],
        identities={str(pid): world.appearance(pid).to_dict() for pid in sorted(cams_of)},
        identity_cameras={str(pid): sorted(c) for pid, c in sorted(cams_of.items())},
        splits={"train_pids": [1, num_train_ids], "test_pids": [num_train_ids + 1, num_train_ids + num_test_ids]},
    )
    atomic_write_json(tmp_root / META_FILE, meta)

    if out_root.exists():
        old = out_root.parent / f"{out_root.name}.old-{os.getpid()}"
        os.replace(out_root, old)
        shutil.rmtree(old)
    os.replace(tmp_root, out_root)
    _load_image_meta.cache_clear()

    return dict(root=str(out_root), **params, num_images=len(entries),
                **{f"num_{s}": sum(e["split"] == s for e in entries) for s in SPLIT_DIRS},
                seconds=round(time.perf_counter() - t0, 3))


# ----------------------------------------------------------------------------------------------------
# Reading a written set back.


def read_meta(root: str | os.PathLike) -> dict:
    """The set's ``synthetic_meta.json`` (parameters, camera styles, identity appearances)."""
    path = Path(root) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {root} is not a synthetic set written by make_synthetic")
    return json.loads(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=8)
def _load_image_meta(root: str, mtime_ns: int) -> dict[str, dict]:
    with open(Path(root) / IMAGE_META_FILE, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return {Path(r["file"]).name: r for r in records}


def read_image_meta(root: str | os.PathLike) -> dict[str, dict]:
    """Per-image metadata keyed by file base name: {file, split, pid, camid, frame, pose}."""
    path = Path(root) / IMAGE_META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {root} is not a synthetic set written by make_synthetic")
    return _load_image_meta(str(Path(root).resolve()), path.stat().st_mtime_ns)


def image_record(root: str | os.PathLike, file_name: str | os.PathLike) -> dict:
    """Metadata of one image (``file_name``: base name, relative or absolute path)."""
    name = Path(file_name).name
    table = read_image_meta(root)
    if name not in table:
        raise KeyError(f"{name} is not an image of the synthetic set at {root}")
    return table[name]


@functools.lru_cache(maxsize=8)
def _world_for(root: str, mtime_ns: int) -> SyntheticWorld:
    return SyntheticWorld.from_root(root)


def load_world(root: str | os.PathLike) -> SyntheticWorld:
    """The renderer of a written set (cached per folder)."""
    meta_path = Path(root) / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: {root} is not a synthetic set written by make_synthetic")
    return _world_for(str(Path(root).resolve()), meta_path.stat().st_mtime_ns)


def true_rendering(root: str | os.PathLike, file_name: str | os.PathLike, target_camid: int,
                   noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The same person in the same pose as image ``file_name``, rendered by camera ``target_camid``
    (0-based). Returns ``(image uint8 (H, W, 3), mask bool (H, W))``.

    With ``noise=False`` (default: the target to score a translation against) no sensor noise is
    added; with ``noise=True`` and ``target_camid`` equal to the file's camera, the result is exactly
    the image that was JPEG-encoded into ``file_name``.
    """
    rec = image_record(root, file_name)
    world = load_world(root)
    if not 0 <= target_camid < world.num_cameras:
        raise ValueError(f"target_camid {target_camid} outside 0..{world.num_cameras - 1}")
    key = (rec["pid"], target_camid, rec["frame"]) if noise else None
    return world.render(rec["pid"], Pose.from_dict(rec["pose"]), target_camid, noise_key=key)


def load_dataset(root: str | os.PathLike):
    """The written set as a ``ReidDataset`` with the camera count from its metadata (Market-layout
    parsing alone would infer it from the files, and a split may miss the last camera)."""
    from reid_stargan.data.datasets import build_dataset

    return build_dataset("market_layout", root, num_cameras=read_meta(root)["params"]["num_cameras"])
