"""Robust image decoding: every file either becomes an RGB array or a :class:`BadImage` reason.

Handles what real folders contain: empty, truncated and non-image files, grayscale, CMYK, RGBA
(composited on black, like LFW's padding), 16-bit PNGs (scaled to 8 bits), EXIF orientation,
tiny images and decompression bombs.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class BadImage(ValueError):
    """An input that cannot become a face image; ``reason`` is a short machine-friendly tag."""

    def __init__(self, path: str | Path, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")


@dataclass(frozen=True)
class DecodeLimits:
    """Size limits: images below ``min_side`` or above ``max_pixels`` are rejected."""

    min_side: int = 32
    max_pixels: int = 40_000_000


def read_bytes(path: str | Path) -> bytes:
    """Read a file, mapping OS errors (missing, permission, directory, broken link) to BadImage."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BadImage(path, "unreadable", f"{type(e).__name__}: {e.strerror or e}") from e
    if not data:
        raise BadImage(path, "empty file")
    return data


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB (16-bit scaled down, alpha composited on black)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.array(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.array(img), 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return img.convert("RGB")


def decode_rgb(data: bytes, path: str | Path, limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """Decode image bytes to an ``(H, W, 3)`` uint8 RGB array, EXIF orientation applied."""
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = Image.open(io.BytesIO(data))
                w, h = img.size
                if w * h > limits.max_pixels:
                    raise BadImage(path, "too large", f"{w}x{h} exceeds {limits.max_pixels} pixels")
                img.load()
            except BadImage:
                raise
            except UnidentifiedImageError as e:
                raise BadImage(path, "not an image") from e
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
                raise BadImage(path, "too large", str(e)) from e
            except (OSError, SyntaxError, ValueError) as e:
                msg = str(e)
                reason = "truncated image" if "truncated" in msg.lower() else "corrupt image"
                raise BadImage(path, reason, msg) from e
        img = ImageOps.exif_transpose(img)
        w, h = img.size
        if min(w, h) < limits.min_side:
            raise BadImage(path, "too small", f"{w}x{h} is below {limits.min_side} px")
        return np.array(to_rgb(img))
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


def load_rgb(path: str | Path, limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """Read and decode one image file (see :func:`decode_rgb`)."""
    return decode_rgb(read_bytes(path), path, limits)


def encode_png(arr: np.ndarray) -> bytes:
    """uint8 RGB array -> PNG bytes (lossless; what the shards store)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes from a shard -> ``(H, W, 3)`` uint8 array (a copy, safe for torch)."""
    with Image.open(io.BytesIO(data)) as img:
        return np.array(img.convert("RGB"))
