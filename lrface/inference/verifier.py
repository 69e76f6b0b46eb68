"""The verifier: restore each face (SRNet or bicubic, then to 112x96), embed it with FRNet
(flip-concat features, :func:`lrface.restoration.flip_features`, as evaluation does), and decide
same/different at the evaluation's threshold."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from lrface.data.detection import FaceDetector
from lrface.data.detector import TorchMTCNN
from lrface.data.images import DecodeLimits
from lrface.data.tensors import faces_to_tensor
from lrface.inference.config import InferenceConfig
from lrface.inference.faces import (
    DetectedFace,
    ImageInput,
    InferenceError,
    NoFaceError,
    crop_face,
    detect_faces,
    image_name,
    load_image,
)
from lrface.inference.thresholds import decided_by, threshold_for
from lrface.models.mobilefacenet import FrozenFRNet
from lrface.models.srnet import SRNet
from lrface.restoration import Bicubic, Restorer, SRNetRestorer, flip_features


@dataclass
class FaceEmbedding:
    """What became of one input: every face found, the one used, how it was restored."""

    source: str
    faces: list[DetectedFace]
    used: int
    route: str  # "direct" (warped to 112x96) or "srnet" / "bicubic" from a low-res grid
    size: str  # the grid the face was taken at: 112x96, 28x24, 14x12 or 7x6
    embedding: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "faces": [asdict(f) for f in self.faces], "used": self.used,
                "route": self.route, "size": self.size}


@dataclass
class Verification:
    similarity: float
    threshold: float
    same: bool
    far: float | None
    size: str  # the resolution whose threshold decided
    a: FaceEmbedding
    b: FaceEmbedding
    protocol: str | None = None  # whose calibration: clean or surveillance (None: a fixed threshold)

    def as_dict(self) -> dict[str, Any]:
        return {"similarity": round(self.similarity, 6), "threshold": round(self.threshold, 6),
                "same": self.same, "far": self.far, "threshold_size": self.size,
                "threshold_protocol": self.protocol,
                "a": self.a.summary(), "b": self.b.summary()}


class FaceVerifier:
    """Detect -> align -> (SRNet) -> FRNet features; 1:1 verification at a measured threshold."""

    def __init__(self, frnet: FrozenFRNet, srnet: SRNet | None = None, config: InferenceConfig | None = None,
                 thresholds: dict[str, float] | None = None, detector: FaceDetector | None = None,
                 model_name: str = "bicubic", lr_kernel: str = "bicubic") -> None:
        self.frnet = frnet
        self.srnet = srnet.eval() if srnet is not None else None
        self.config = config or InferenceConfig()
        # how each route's aligned face reaches 112x96: evaluation's restorers (direct: already there)
        self.restorers: dict[str, Restorer | None] = {"direct": None, "bicubic": Bicubic()}
        if srnet is not None:
            self.restorers["srnet"] = SRNetRestorer(srnet, model_name, self.config.isr_resize)
        self.thresholds = dict(thresholds or {})
        self.model_name = model_name if srnet is not None else "bicubic"
        self.lr_kernel = lr_kernel  # degrade.kernel: LR faces are made as the training shards' were
        self._detector = detector
        self.limits = DecodeLimits(self.config.min_side, self.config.max_pixels)

    @property
    def fingerprint(self) -> str:
        """Digest of everything an embedding (or an image's rejection) depends on: weights,
        inference settings, decode limits and the code that detects, aligns, degrades, restores
        and embeds."""
        from lrface.code_digest import code_digest
        from lrface.models import computation_digest

        h = computation_digest(self.frnet, self.srnet)
        h.update(code_digest("inference", "data", "models").encode())
        c = self.config
        h.update(json.dumps([c.sr_below_px, c.min_face_px, c.min_score, c.min_face_size, list(c.detect_upscales),
                             c.detect_max_pixels, c.isr_resize, self.lr_kernel, self.frnet.precision,
                             c.max_pixels, c.min_side]).encode())
        return h.hexdigest()[:16]

    @property
    def detector(self) -> FaceDetector:
        """MTCNN in torch (same faces as the ``mtcnn`` package, no TensorFlow), built on first use."""
        if self._detector is None:
            c = self.config
            self._detector = TorchMTCNN(threads=None, min_face_size=c.min_face_size,
                                        max_pixels=max(c.max_pixels, c.detect_max_pixels))
        return self._detector

    # ------------------------------------------------------------------ detection and alignment

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """All faces of each image (largest first); tiny faces are looked for on upscaled copies."""
        return detect_faces(self.detector, images, self.config)

    def _crop(self, image: np.ndarray, face: DetectedFace, name: str) -> tuple[str, str, np.ndarray]:
        return crop_face(image, face, name, self.config, self.lr_kernel,
                         "srnet" if self.srnet is not None else "bicubic")

    # ------------------------------------------------------------------------------- embedding

    @torch.inference_mode()
    def embed_faces(self, faces: list[np.ndarray], routes: list[str]) -> np.ndarray:
        """FRNet flip features (256-d, as in evaluation) of aligned faces, batched per route/size."""
        out = np.zeros((len(faces), 256), np.float32)
        groups: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        for i, (f, r) in enumerate(zip(faces, routes, strict=True)):
            groups.setdefault((r, f.shape), []).append(i)
        bs = self.config.batch_size
        for (route, _), idx in groups.items():
            for s in range(0, len(idx), bs):
                chunk = idx[s : s + bs]
                x = faces_to_tensor([faces[i] for i in chunk])
                out[chunk] = flip_features(self.frnet, x, self.restorers[route]).numpy()
        return out

    def embed(self, images: Sequence[ImageInput], face_index: Sequence[int | None] | None = None,
              names: Sequence[str] | None = None) -> list[FaceEmbedding]:
        """Embed one face per image (the largest unless ``face_index`` says which)."""
        names = list(names) if names is not None else [image_name(im, i) for i, im in enumerate(images)]
        arrays = [load_image(im, n, self.limits) for im, n in zip(images, names, strict=True)]
        detections = self.detect(arrays)
        crops, routes, sizes, used = [], [], [], []
        for i, (arr, faces, name) in enumerate(zip(arrays, detections, names, strict=True)):
            if not faces:
                raise NoFaceError(f"{name}: no face found (MTCNN, score >= {self.config.min_score:g}, "
                                  f"upscaled up to x{max(self.config.detect_upscales)})")
            want = face_index[i] if face_index is not None and face_index[i] is not None else 0
            if not 0 <= want < len(faces):
                raise InferenceError(f"{name}: face {want} asked for, but {len(faces)} found")
            route, size, crop = self._crop(arr, faces[want], name)
            crops.append(crop)
            routes.append(route)
            sizes.append(size)
            used.append(want)
        feats = self.embed_faces(crops, routes) if crops else np.zeros((0, 256), np.float32)
        return [FaceEmbedding(n, d, u, r, s, f) for n, d, u, r, s, f in
                zip(names, detections, used, routes, sizes, feats, strict=True)]

    # ---------------------------------------------------------------------------- verification

    def threshold_for(self, a: FaceEmbedding | str, b: FaceEmbedding | str) -> tuple[float, str]:
        """The decision threshold for this pair and the protocol it comes from (see
        :func:`lrface.inference.thresholds.threshold_for`)."""
        sa, sb = (f.size if isinstance(f, FaceEmbedding) else f for f in (a, b))
        return threshold_for(sa, sb, self.thresholds, self.config, self.model_name)

    def verify(self, a: ImageInput, b: ImageInput, face_index: Sequence[int | None] | None = None,
               names: Sequence[str] | None = None) -> Verification:
        """Same person or not, at the calibrated (or fixed) threshold; ``names`` label the inputs
        in errors (default: their paths, or ``<image i>``)."""
        ea, eb = self.embed([a, b], face_index, names)
        sim = cosine(ea.embedding, eb.embedding)
        thr, size = self.threshold_for(ea, eb)
        fixed = self.config.threshold is not None
        return Verification(sim, thr, bool(sim >= thr), None if fixed else self.config.far, size, ea, eb,
                            decided_by(size, self.config))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / max(float(np.linalg.norm(a)), 1e-12)
    b = b / max(float(np.linalg.norm(b)), 1e-12)
    return float(a @ b)
