"""Face verification and search on real images: detect, align, super-resolve when small, embed.

``FaceVerifier`` loads SRNet (a checkpoint path or ``models:/lrface-srnet@champion``) and the
frozen FRNet once. For each image it detects faces with MTCNN (on an upscaled copy when a face
is too small for MTCNN at native size), reports all of them, uses the largest (or the one asked
for), and aligns it to the SphereFace template:

* a face whose aligned crop would be at least ``sr_below_px`` wide is warped straight to 112x96;
* a smaller one becomes the low-resolution face it really is (28x24, 14x12 or 7x6: the sizes
  SRNet was trained on) the way training and evaluation made theirs: warped to 112x96, then
  downsampled with ``degrade.kernel`` (:func:`lrface.data.degrade.downsample`); it is then
  super-resolved x4 and brought to 112x96 by :func:`lrface.losses.to_face_size`, as in evaluation;
* one below ``min_face_px`` (6 px, the width of a 7x6 face) is refused: there is nothing to guess.

``verify`` decides same/different at a threshold measured by an evaluation run at a stated FAR
(per probe resolution), not at a magic number. Everything is batched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module that holds it, imported on first use: loading params (whose schema checks the
# ``inference`` section with lrface.inference.config) must not pull in the detector and the nets
_HOME = {
    "InferenceConfig": "config",
    **dict.fromkeys(("DetectedFace", "FaceTooSmallError", "ImageInput", "InferenceError", "NoFaceError",
                     "load_image", "sr_factor"), "faces"),
    "load_verifier": "loading",
    **dict.fromkeys(("far_key", "thresholds_from_metrics", "thresholds_from_mlflow"), "thresholds"),
    **dict.fromkeys(("FaceEmbedding", "FaceVerifier", "Verification", "cosine"), "verifier"),
}
__all__ = [
    "DetectedFace", "FaceEmbedding", "FaceTooSmallError", "FaceVerifier", "ImageInput", "InferenceConfig",
    "InferenceError", "NoFaceError", "Verification", "cosine", "far_key", "load_image", "load_verifier",
    "sr_factor", "thresholds_from_metrics", "thresholds_from_mlflow",
]

if TYPE_CHECKING:
    from lrface.inference.config import InferenceConfig
    from lrface.inference.faces import (
        DetectedFace,
        FaceTooSmallError,
        ImageInput,
        InferenceError,
        NoFaceError,
        load_image,
        sr_factor,
    )
    from lrface.inference.loading import load_verifier
    from lrface.inference.thresholds import far_key, thresholds_from_metrics, thresholds_from_mlflow
    from lrface.inference.verifier import FaceEmbedding, FaceVerifier, Verification, cosine


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'lrface.inference' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lrface.inference.{_HOME[name]}"), name)
    globals()[name] = value
    return value
