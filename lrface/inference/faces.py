"""Faces in real images: decoding, detection (on upscaled copies for tiny faces), alignment, and
the low-resolution face each one really is, made the way the training shards made theirs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrface.data.align import face_width, warp_face
from lrface.data.degrade import downsample
from lrface.data.detection import FaceDetector
from lrface.data.images import BadImage, DecodeLimits, decode_rgb
from lrface.inference.config import InferenceConfig
from lrface.sizes import FACE_SIZE, FACE_WIDTH, FACTOR_SIZES, HR_SIZE


class InferenceError(ValueError):
    """An input that cannot be verified; the message names the input."""


class NoFaceError(InferenceError):
    pass


class FaceTooSmallError(InferenceError):
    pass


ImageInput = str | Path | bytes | np.ndarray


@dataclass
class DetectedFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the input's pixels
    score: float
    landmarks: list[list[float]]  # 5 x (x, y)
    width_px: float  # width its aligned 112x96 crop has at the input's resolution
    detect_upscale: int  # the upscale MTCNN found it at


def image_name(img: ImageInput, i: int) -> str:
    return str(img) if isinstance(img, str | Path) else f"<image {i}>"


def load_image(img: ImageInput, name: str, limits: DecodeLimits) -> np.ndarray:
    """RGB uint8 from a path, encoded bytes or an array; ``InferenceError`` naming the input."""
    try:
        if isinstance(img, np.ndarray):
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise InferenceError(f"{name}: expected an HxWx3 uint8 RGB array, got {img.shape} {img.dtype}")
            if img.shape[0] * img.shape[1] > limits.max_pixels:
                raise InferenceError(f"{name}: too large: {img.shape[1]}x{img.shape[0]} exceeds "
                                     f"{limits.max_pixels} pixels")
            return img
        if isinstance(img, str | Path):
            path = Path(img)
            if not path.is_file():
                raise InferenceError(f"{name}: no such file")
            try:
                img = path.read_bytes()
            except OSError as e:  # permissions, a file gone since the check: this input fails, not the batch
                raise InferenceError(f"{name}: unreadable ({e.strerror or e})") from e
        return decode_rgb(img, name, limits)
    except BadImage as e:
        raise InferenceError(f"{name}: {e.reason}{': ' + e.detail if e.detail else ''}") from e


def sr_factor(width_px: float) -> int:
    """The training factor (4, 8 or 16) whose low-res grid is nearest the face's real width."""
    return min(FACTOR_SIZES, key=lambda k: abs(math.log((FACE_WIDTH / k) / width_px)))


def detect_faces(detector: FaceDetector, images: Sequence[np.ndarray],
                 cfg: InferenceConfig) -> list[list[DetectedFace]]:
    """All faces of each image (largest first); tiny faces are looked for on upscaled copies."""
    from PIL import Image

    out: list[list[DetectedFace]] = [[] for _ in images]
    todo = list(range(len(images)))
    for up in cfg.detect_upscales:
        if not todo:
            break
        groups: dict[tuple[int, ...], list[int]] = {}
        for i in todo:
            h, w = images[i].shape[:2]
            if up > 1 and h * w * up * up > cfg.detect_max_pixels:
                continue
            groups.setdefault((h, w), []).append(i)
        for idx in groups.values():
            frames = [images[i] if up == 1 else np.array(Image.fromarray(images[i]).resize(
                (images[i].shape[1] * up, images[i].shape[0] * up), Image.Resampling.BICUBIC)) for i in idx]
            for i, faces in zip(idx, detector.detect_batch(frames), strict=True):
                for f in faces:
                    if f.score < cfg.min_score:
                        continue
                    lm = (f.landmarks + 0.5) / up - 0.5  # back to the input's pixel grid
                    box = tuple((np.asarray(f.box) + 0.5) / up - 0.5)
                    out[i].append(DetectedFace(tuple(round(float(v), 2) for v in box), round(f.score, 4),
                                               lm.round(3).tolist(), round(face_width(lm), 2), up))
        todo = [i for i in todo if not out[i]]
    for faces in out:
        faces.sort(key=lambda f: -f.width_px)
    return out


def crop_face(image: np.ndarray, face: DetectedFace, name: str, cfg: InferenceConfig, lr_kernel: str,
              sr_route: str) -> tuple[str, str, np.ndarray]:
    """(route, size, aligned face) for one detected face: ``direct`` at 112x96 when large enough,
    else ``sr_route`` (``srnet`` or ``bicubic``) from the LR face it really is."""
    lm = np.asarray(face.landmarks)
    if face.width_px < cfg.min_face_px:
        raise FaceTooSmallError(
            f"{name}: face at {face.box} is {face.width_px:.1f} px wide, below the {cfg.min_face_px:g} px "
            f"that SRNet can restore (a 7x6 face is 6 px wide); no guess is made")
    if face.width_px >= cfg.sr_below_px:
        return "direct", HR_SIZE, warp_face(image, lm)
    k = sr_factor(face.width_px)
    return sr_route, FACTOR_SIZES[k], \
        lr_face(warp_face(image, lm), k, lr_kernel)


def lr_face(aligned: np.ndarray, factor: int, kernel: str = "bicubic") -> np.ndarray:
    """The ``factor``-times smaller face of an aligned 112x96 one, made as the shards' LR faces."""
    return downsample(aligned, (FACE_SIZE[0] // factor, FACE_SIZE[1] // factor), kernel)
