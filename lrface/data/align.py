"""Face alignment: MTCNN's 5 landmarks -> similarity warp to the 112x96 SphereFace template.

The detector (``align.detector``: the torch MTCNN of :mod:`lrface.data.detector` by default) is
created lazily inside each worker, with one thread, so many aligners run side by side (see
:mod:`lrface.data.align_stage`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from lrface.data.detection import Face, FaceDetector
from lrface.data.detector import DETECTORS, make_detector
from lrface.data.images import BadImage, DecodeLimits, decode_rgb, read_bytes
from lrface.sizes import FACE_SIZE, FACE_WIDTH
from lrface.typed import from_mapping

# (x, y) of left eye, right eye, nose, left and right mouth corners in a 96 wide x 112 high face.
SPHEREFACE_TEMPLATE = np.array(
    [
        [30.2946, 51.6963],
        [65.5318, 51.5014],
        [48.0252, 71.7366],
        [33.5493, 92.3655],
        [62.7299, 92.2041],
    ],
    dtype=np.float64,
)

Policy = Literal["center", "largest", "confident"]
POLICIES: tuple[str, ...] = ("center", "largest", "confident")


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src -> dst.

    Umeyama (1991) without reflection. Returns a 2x3 matrix ``M`` with ``dst ~ M @ [x, y, 1]``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    var_s = (s0**2).sum() / len(src)
    scale = (sig * d).sum() / var_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def warp_face(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray = SPHEREFACE_TEMPLATE,
              size: tuple[int, int] = FACE_SIZE) -> np.ndarray:
    """Warp ``image`` so ``landmarks`` land on ``template``; returns a ``size`` (112x96) uint8 RGB face.

    Landmarks use the pixel-index convention (pixel centres at integers, as MTCNN/OpenCV);
    PIL samples with centres at +0.5, which the translation below accounts for.
    """
    m = similarity_transform(landmarks, template)
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]  # output -> input, index convention
    a, b, c = inv[0]
    d, e, f = inv[1]
    c += 0.5 - 0.5 * (a + b)
    f += 0.5 - 0.5 * (d + e)
    h, w = size
    out = Image.fromarray(image).transform(
        (w, h), Image.Transform.AFFINE, (a, b, c, d, e, f), resample=Image.Resampling.BICUBIC
    )
    return np.array(out)


TEMPLATE_EYES = float(np.linalg.norm(SPHEREFACE_TEMPLATE[1] - SPHEREFACE_TEMPLATE[0]))


def face_width(landmarks: np.ndarray) -> float:
    """Width the face's aligned 112x96 crop has at the image's resolution (from the eye distance)."""
    eyes = float(np.linalg.norm(np.asarray(landmarks)[1] - np.asarray(landmarks)[0]))
    return FACE_WIDTH * eyes / TEMPLATE_EYES


def scaled_template(factor: int, template: np.ndarray = SPHEREFACE_TEMPLATE) -> np.ndarray:
    """``template`` on the grid of a face downscaled by ``factor`` (index convention: centre at 0)."""
    return (np.asarray(template, np.float64) + 0.5) / factor - 0.5


def choose_face(faces: list[Face], policy: str, image_hw: tuple[int, int]) -> Face:
    """Pick one face: nearest the image centre, largest box, or most confident."""
    if not faces:
        raise ValueError("no faces to choose from")
    if policy == "center":
        cy, cx = image_hw[0] / 2.0, image_hw[1] / 2.0
        return min(faces, key=lambda f: math.hypot((f.box[0] + f.box[2]) / 2 - cx, (f.box[1] + f.box[3]) / 2 - cy))
    if policy == "largest":
        return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    if policy == "confident":
        return max(faces, key=lambda f: f.score)
    raise ValueError(f"face policy must be one of {POLICIES}, got {policy!r}")


@dataclass
class AlignResult:
    """What became of one input: an aligned face, or a rejection reason."""

    ok: bool
    reason: str = ""
    detail: str = ""
    face: np.ndarray | None = None
    landmarks: np.ndarray | None = None  # (5, 2) in the source image
    score: float = float("nan")
    n_faces: int = 0
    landmark_source: str = ""  # "mtcnn" or "file"
    image_hw: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class AlignConfig:
    """The ``align`` section of params.yaml."""

    policy: str = "center"
    min_score: float = 0.9
    min_face_size: int = 20
    min_side: int = 32
    max_pixels: int = 40_000_000
    workers: int = 2  # Ray actors, one MTCNN and one thread each
    batch_size: int = 16
    detector: str = "torch"  # torch (lrface.data.detector) | tensorflow (the mtcnn package: reference)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> AlignConfig:
        cfg = from_mapping(cls, d, "align")
        if cfg.policy not in POLICIES:
            raise ValueError(f"align.policy must be one of {POLICIES}, got {cfg.policy!r}")
        if cfg.detector not in DETECTORS:
            raise ValueError(f"align.detector must be one of {DETECTORS}, got {cfg.detector!r}")
        return cfg

    @property
    def limits(self) -> DecodeLimits:
        return DecodeLimits(self.min_side, self.max_pixels)


class Aligner:
    """Decode -> detect (or look up landmarks) -> choose -> warp, never raising on bad input."""

    def __init__(
        self,
        config: AlignConfig = AlignConfig(),
        reference: dict[str, np.ndarray] | None = None,
        detector: FaceDetector | None = None,
        fallback: dict[str, np.ndarray] | None = None,
    ) -> None:
        if config.policy not in POLICIES:
            raise ValueError(f"align.policy must be one of {POLICIES}, got {config.policy!r}")
        self.config = config
        self.reference = reference or {}  # landmarks that replace detection
        self.fallback = fallback or {}  # landmarks used only where detection finds no face
        self._detector = detector

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            c = self.config
            self._detector = make_detector(c.detector, threads=1, min_face_size=c.min_face_size,
                                           max_pixels=c.max_pixels)
        return self._detector

    def align(self, path: str | Path, rel_path: str = "") -> AlignResult:
        return self.align_many([(str(path), rel_path)])[0]

    def align_many(self, items: list[tuple[str, str]],
                   data: list[bytes | BadImage] | None = None) -> list[AlignResult]:
        """Align ``(path, rel_path)`` items; images of equal shape share one detector pass.

        ``data``: each item's bytes (or the error reading them), read elsewhere, so this process
        needs no access to ``path`` (Ray actors on nodes that do not share the driver's disk)."""
        results: list[AlignResult | None] = [None] * len(items)
        pending: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for i, (path, rel) in enumerate(items):
            try:
                raw = read_bytes(path) if data is None else data[i]
                if isinstance(raw, BadImage):
                    raise raw
                image = decode_rgb(raw, path, self.config.limits)
            except BadImage as e:
                results[i] = AlignResult(False, e.reason, e.detail)
                continue
            if rel in self.reference:
                lm = self.reference[rel]
                results[i] = AlignResult(True, face=warp_face(image, lm), landmarks=lm, n_faces=1,
                                         landmark_source="file", image_hw=image.shape[:2])
            else:
                pending.setdefault(image.shape, []).append((i, image, rel))
        for group in pending.values():
            try:
                detections = self.detector.detect_batch([im for _, im, _ in group])
            except Exception as e:  # a detector failure rejects these images, never the run
                for i, im, _ in group:
                    results[i] = AlignResult(False, "detector error", f"{type(e).__name__}: {e}",
                                             image_hw=im.shape[:2])
                continue
            for (i, image, rel), faces in zip(group, detections, strict=True):
                results[i] = self._from_faces(image, faces, rel)
        return [r for r in results if r is not None]

    def _from_faces(self, image: np.ndarray, faces: list[Face], rel: str) -> AlignResult:
        hw = (image.shape[0], image.shape[1])
        faces = [f for f in faces if f.score >= self.config.min_score]
        if not faces and rel in self.fallback:
            lm = self.fallback[rel]
            return AlignResult(True, face=warp_face(image, lm), landmarks=lm, n_faces=0,
                               landmark_source="fallback", image_hw=hw)
        if not faces:
            return AlignResult(False, "no face", image_hw=hw)
        face = choose_face(faces, self.config.policy, hw)
        return AlignResult(True, face=warp_face(image, face.landmarks), landmarks=face.landmarks,
                           score=face.score, n_faces=len(faces), landmark_source="mtcnn", image_hw=hw)


def read_landmarks_file(path: str | Path) -> dict[str, np.ndarray]:
    """``reference_landmarks.txt`` format: ``rel/path<TAB>x1 y1 ... x5 y5`` per line."""
    out: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        f = line.split()
        if len(f) != 11:
            raise ValueError(f"{path}:{lineno}: expected a path and 10 numbers, got {len(f)} fields")
        try:
            out[f[0]] = np.array([float(v) for v in f[1:]], dtype=np.float64).reshape(5, 2)
        except ValueError as e:
            raise ValueError(f"{path}:{lineno}: {e}") from e
    return out
