"""Low-resolution faces from aligned 112x96 faces.

The default is the paper's: bicubic downsampling with PIL's anti-aliasing (its bicubic filter
widens with the scale factor, so it integrates over the source pixels rather than point-sampling)
to 28x24, 14x12, 7x6 and 16x16.

The camera chain (``degrade.surveillance``) models what CCTV produces instead: a colour cast,
Gaussian or motion blur, downsampling, sensor noise and JPEG compression, each drawn from a
seeded RNG. Training draws a new one per sample and step (``train.degradation: surveillance``, or
``mixed`` on some steps, at a scale drawn from ``scale``); the LFW surveillance protocol draws a fixed one per image and
size from ``seed``. (Baking one fixed draw per face into the shards, ``enabled``, was removed:
it reused one corruption for the whole training.)
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from lrface.sizes import FACE_HEIGHT, FACE_WIDTH, parse_size, size_name
from lrface.typed import from_mapping, is_number

MAX_SCALE = 48.0  # a 112x96 face at 1/48 is 2 px wide

KERNELS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "box": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class SurveillanceConfig:
    """The camera chain's parameters; each effect is drawn per sample from a seeded RNG."""

    seed: int = 0  # the surveillance protocol's fixed draws
    scale: tuple[float, float] = (4.0, 16.0)  # training: downscale factor, drawn log-uniform per step
    color_prob: float = 0.3
    color_shift: float = 0.1  # white-balance error: per-channel gain within 1 +- this
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.3, 1.5)  # Gaussian sigma in HR pixels
    motion_prob: float = 0.2
    motion_length: tuple[int, int] = (3, 9)  # motion kernel length in HR pixels
    noise_sigma: tuple[float, float] = (0.0, 8.0)  # Gaussian noise std in 0-255 units, at LR
    jpeg_prob: float = 0.7
    jpeg_quality: tuple[int, int] = (30, 90)

    def chain(self) -> dict[str, Any]:
        """The chain's own parameters: what a training on it depends on (not ``seed``, which fixes
        only the protocol's draws)."""
        return {k: v for k, v in asdict(self).items() if k != "seed"}

    def check(self) -> None:
        """Out-of-range values fail at load time, naming the param."""
        for key in ("blur_prob", "motion_prob", "jpeg_prob", "color_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"degrade.surveillance.{key} must be within [0, 1], got {getattr(self, key)}")
        if not 0.0 <= self.color_shift < 1.0:
            raise ValueError(f"degrade.surveillance.color_shift must be within [0, 1), got {self.color_shift}")
        bounds = {"blur_sigma": (0.0, None), "noise_sigma": (0.0, None), "motion_length": (1, None),
                  "jpeg_quality": (1, 100), "scale": (1.0, MAX_SCALE)}
        for key, (lo, hi) in bounds.items():
            pair = getattr(self, key)
            if not all(is_number(v) for v in pair):
                raise ValueError(f"degrade.surveillance.{key} must be two numbers [low, high], got {list(pair)}")
            if len(pair) != 2 or pair[0] > pair[1] or pair[0] < lo or (hi is not None and pair[1] > hi):
                span = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
                raise ValueError(f"degrade.surveillance.{key} must be a [low, high] range {span}, got {list(pair)}")


@dataclass(frozen=True)
class DegradeConfig:
    """The ``degrade`` section of params.yaml."""

    sizes: tuple[str, ...] = ("28x24", "14x12", "7x6", "16x16")
    kernel: str = "bicubic"
    surveillance: SurveillanceConfig = field(default_factory=SurveillanceConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DegradeConfig:
        d = dict(d or {})
        surv_d = dict(d.pop("surveillance", None) or {})
        if surv_d.pop("enabled", False):
            raise ValueError("degrade.surveillance.enabled (one fixed camera corruption per face baked into the "
                             "shards) was removed: use train.degradation: surveillance, which draws a new one per "
                             "sample and step")
        surv = from_mapping(SurveillanceConfig, surv_d, "degrade.surveillance",
                            tuples=("scale", "blur_sigma", "motion_length", "noise_sigma", "jpeg_quality"))
        surv.check()
        cfg = replace(from_mapping(cls, d, "degrade", tuples=("sizes",)), surveillance=surv)
        if cfg.kernel not in KERNELS:
            raise ValueError(f"degrade.kernel must be one of {sorted(KERNELS)}, got {cfg.kernel!r}")
        for s in cfg.sizes:
            parse_size(s)
        return cfg


def downsample(face: np.ndarray, hw: tuple[int, int], kernel: str = "bicubic") -> np.ndarray:
    """Resize an RGB uint8 face to ``hw`` with PIL's (anti-aliased) filter."""
    img = Image.fromarray(face).resize((hw[1], hw[0]), KERNELS[kernel])
    return np.array(img)


def _rng(seed: int, sample_id: str, size: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}/{sample_id}/{size}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _motion_blur(img: Image.Image, length: int, angle: float) -> Image.Image:
    k = np.zeros((length, length), np.float64)
    c = (length - 1) / 2
    for t in np.linspace(-c, c, 4 * length):
        x = int(round(c + t * np.cos(angle)))
        y = int(round(c + t * np.sin(angle)))
        k[y, x] = 1.0
    k /= k.sum()
    arr = np.asarray(img, np.float64)
    pad = length // 2
    padded = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.zeros_like(arr)
    for dy in range(length):
        for dx in range(length):
            if k[dy, dx]:
                out += k[dy, dx] * padded[dy : dy + arr.shape[0], dx : dx + arr.shape[1]]
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


def camera_chain(face: np.ndarray, hw: tuple[int, int], cfg: SurveillanceConfig, rng: np.random.Generator,
                 kernel: str = "bicubic") -> np.ndarray:
    """Colour cast -> blur (Gaussian or motion) -> downsample to ``hw`` -> noise -> JPEG, every
    effect drawn from ``rng``: an RGB uint8 face in, an RGB uint8 ``hw`` face out."""
    img = Image.fromarray(face)
    if rng.random() < cfg.color_prob:
        gains = rng.uniform(1.0 - cfg.color_shift, 1.0 + cfg.color_shift, 3)
        img = Image.fromarray(np.clip(np.asarray(img, np.float32) * gains + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < cfg.blur_prob:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(*cfg.blur_sigma))))
    if rng.random() < cfg.motion_prob:
        length = int(rng.integers(cfg.motion_length[0], cfg.motion_length[1] + 1)) | 1
        img = _motion_blur(img, length, float(rng.uniform(0, np.pi)))
    small = np.asarray(img.resize((hw[1], hw[0]), KERNELS[kernel]), np.float32)
    sigma = float(rng.uniform(*cfg.noise_sigma))
    if sigma > 0:
        small = small + rng.normal(0.0, sigma, small.shape).astype(np.float32)
    out = Image.fromarray(np.clip(small + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < cfg.jpeg_prob:
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
        out = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return np.array(out)


def surveillance_degrade(
    face: np.ndarray, hw: tuple[int, int], cfg: SurveillanceConfig, sample_id: str, kernel: str = "bicubic"
) -> np.ndarray:
    """The camera chain with a fixed draw per (``cfg.seed``, sample, size): the same face at the
    same size always gets the same corruption (shards, the surveillance protocol)."""
    return camera_chain(face, hw, cfg, _rng(cfg.seed, sample_id, size_name(hw)), kernel)


def scale_size(scale: float) -> tuple[int, int]:
    """The LR size of a 112x96 face downscaled by ``scale`` (at least 1x1)."""
    return max(1, round(FACE_HEIGHT / scale)), max(1, round(FACE_WIDTH / scale))


def draw_scale(scale_range: tuple[float, float], rng: np.random.Generator) -> float:
    """A downscale factor drawn log-uniformly from ``scale_range`` (x4-x8 as likely as x8-x16)."""
    lo, hi = np.log(scale_range[0]), np.log(scale_range[1])
    return float(np.exp(rng.uniform(lo, hi)))


def make_lr(face: np.ndarray, cfg: DegradeConfig) -> dict[str, np.ndarray]:
    """The shards' LR versions of one aligned face (``degrade.kernel`` at each of ``degrade.sizes``),
    keyed by size name ('14x12', ...)."""
    return {name: downsample(face, parse_size(name), cfg.kernel) for name in cfg.sizes}


def small_face_frame(image: np.ndarray, landmarks: np.ndarray, width_px: float,
                     frame_hw: tuple[int, int] = (120, 160), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A surveillance-like frame: ``image`` shrunk (anti-aliased bicubic) so that the face's
    aligned 112x96 crop is ``width_px`` wide, pasted at a seeded spot on a textured background.

    Returns the frame and the landmarks in it. ``width_px=12`` gives a face of 14x12 size.
    """
    from lrface.data.align import face_width

    scale = width_px / face_width(np.asarray(landmarks, np.float64))
    h, w = image.shape[:2]
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    if sh > frame_hw[0] or sw > frame_hw[1]:
        raise ValueError(f"a {sh}x{sw} face image does not fit a {frame_hw} frame")
    small = np.array(Image.fromarray(image).resize((sw, sh), Image.Resampling.BICUBIC, reducing_gap=None))
    rng = np.random.default_rng(seed)
    frame = rng.normal(110, 25, (*frame_hw, 3)).clip(0, 255).astype(np.uint8)
    frame = np.array(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(2)))
    y, x = int(rng.integers(0, frame_hw[0] - sh + 1)), int(rng.integers(0, frame_hw[1] - sw + 1))
    frame[y : y + sh, x : x + sw] = small
    lm = (np.asarray(landmarks, np.float64) + 0.5) * (sw / w, sh / h) - 0.5 + (x, y)
    return frame, lm
