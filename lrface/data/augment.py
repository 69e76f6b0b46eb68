"""Fixed geometric variants of an aligned face: small seeded similarity transforms (rotation, scale,
shift about the face centre) that give SR training more distinct faces than the data holds.

Variant ``k`` of a face is a pure function of its ``sample_id``, ``k`` and the jitter ranges, so
FRNet's feature of every variant can be computed once (FRNet is frozen) and looked up each step;
variant 0 is the face itself. Where the transform reaches past the face, the face is mirrored
(no black corners, which aligned test faces never have).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from lrface.data.tensors import faces_to_tensor, tensor_to_faces
from lrface.hashing import keyed_rng

PAD = 40  # mirrored margin: more than the widest jitter check() allows reaches past the face


@dataclass(frozen=True)
class VariantJitter:
    """Ranges of the similarity transform: rotation +- ``rotate_deg``, scale 1 +- ``scale``, shift
    +- ``shift_px`` pixels on each axis, each drawn uniformly."""

    rotate_deg: float = 5.0
    scale: float = 0.05
    shift_px: float = 3.0

    def check(self, key: str = "train.variant_jitter") -> None:
        if not (0 <= self.rotate_deg <= 15 and 0 <= self.scale <= 0.1 and 0 <= self.shift_px <= 8):
            raise ValueError(f"{key} out of range (rotate_deg 0-15, scale 0-0.1, shift_px 0-8): {self}")


def variant_params(sample_id: str, k: int, jitter: VariantJitter) -> tuple[float, float, float, float]:
    """``(angle_rad, scale, dx, dy)`` of variant ``k`` of ``sample_id`` (identity for ``k == 0``)."""
    if k == 0:
        return 0.0, 1.0, 0.0, 0.0
    u = keyed_rng(f"variant/{sample_id}/{k}").uniform(-1.0, 1.0, 4)
    return (math.radians(jitter.rotate_deg * u[0]), 1.0 + jitter.scale * u[1],
            jitter.shift_px * u[2], jitter.shift_px * u[3])


def face_variant(face: np.ndarray, sample_id: str, k: int, jitter: VariantJitter) -> np.ndarray:
    """Variant ``k`` of an RGB uint8 face ``(H, W, 3)``: the same size, resampled bicubically from
    the face with a mirrored margin."""
    if k == 0:
        return face.copy()
    angle, scale, dx, dy = variant_params(sample_id, k, jitter)
    h, w = face.shape[:2]
    cx, cy = w / 2.0, h / 2.0
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    # PIL maps each output pixel (x, y) to the input (a x + b y + c, d x + e y + f): the inverse of
    # "rotate by angle and scale about the centre, then shift by (dx, dy)"
    a, b, d, e = cos, sin, -sin, cos
    c = cx - a * (cx + dx) - b * (cy + dy) + PAD  # + PAD: into the padded face's coordinates
    f = cy - d * (cx + dx) - e * (cy + dy) + PAD
    padded = np.pad(face, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="symmetric")
    img = Image.fromarray(padded).transform((w, h), Image.Transform.AFFINE, (a, b, c, d, e, f),
                                            resample=Image.Resampling.BICUBIC)
    return np.array(img)


def face_variants(hr: torch.Tensor, sample_ids: list[str], k: int, jitter: VariantJitter | None) -> torch.Tensor:
    """Variant ``k`` of each HR face of the batch ``hr`` (``(N, 3, H, W)`` in [0, 1])."""
    if k == 0:
        return hr
    if jitter is None:
        raise ValueError("face variants need a jitter")
    return faces_to_tensor([face_variant(f, str(s), k, jitter) for f, s in zip(tensor_to_faces(hr), sample_ids,
                                                                                strict=True)])
