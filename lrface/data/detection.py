"""What a face detector finds (:class:`Face`) and what its callers need of one
(:class:`FaceDetector`): shared by the torch MTCNN, the TensorFlow reference, alignment and
inference."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Face:
    """One detection: box ``(x1, y1, x2, y2)``, confidence and landmarks ``(5, 2)`` as (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray = field(compare=False)


class FaceDetector(Protocol):
    """What detection callers need: :class:`lrface.data.detector.TorchMTCNN`, or the TensorFlow ``MTCNNDetector``."""

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]: ...
