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

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrface.data.align import MTCNNDetector, face_width, warp_face
from lrface.data.degrade import downsample
from lrface.data.images import BadImage, DecodeLimits, decode_rgb
from lrface.locations import checkpoint_label
from lrface.losses import to_face_size
from lrface.models.mobilefacenet import FrozenFRNet
from lrface.models.srnet import SRNet
from lrface.models.summary import weights_digest
from lrface.sizes import FACE_SIZE, FACE_WIDTH, FACTOR_SIZES, HR_SIZE, both_lr
from lrface.typed import from_mapping


class InferenceError(ValueError):
    """An input that cannot be verified; the message names the input."""


class NoFaceError(InferenceError):
    pass


class FaceTooSmallError(InferenceError):
    pass


ImageInput = str | Path | bytes | np.ndarray


@dataclass(frozen=True)
class InferenceConfig:
    """The ``inference`` section of params.yaml."""

    sr_below_px: float = 40.0  # aligned-crop width below which SRNet is used
    min_face_px: float = 6.0  # below this (a 7x6 face) nothing is guessed
    min_score: float = 0.9
    min_face_size: int = 20  # MTCNN's smallest face at the detection scale
    detect_upscales: tuple[int, ...] = (1, 2, 4, 8)  # tried in turn until a face is found
    detect_max_pixels: int = 12_000_000  # largest upscaled frame handed to MTCNN
    max_pixels: int = 40_000_000  # larger inputs are refused (decompression bombs)
    min_side: int = 8
    far: float = 1e-3  # the false accept rate the decision threshold is taken at
    threshold: float | None = None  # a fixed threshold instead (overrides the evaluation's)
    batch_size: int = 32
    isr_resize: str = "bicubic"
    srnet: str | None = "models:/lrface-srnet@champion"  # or a checkpoint path; null = bicubic

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> InferenceConfig:
        return from_mapping(cls, d, "inference", tuples=("detect_upscales",))


@dataclass
class DetectedFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the input's pixels
    score: float
    landmarks: list[list[float]]  # 5 x (x, y)
    width_px: float  # width its aligned 112x96 crop has at the input's resolution
    detect_upscale: int  # the upscale MTCNN found it at


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

    def as_dict(self) -> dict[str, Any]:
        return {"similarity": round(self.similarity, 6), "threshold": round(self.threshold, 6),
                "same": self.same, "far": self.far, "threshold_size": self.size,
                "a": self.a.summary(), "b": self.b.summary()}


def _name(img: ImageInput, i: int) -> str:
    return str(img) if isinstance(img, str | Path) else f"<image {i}>"


def load_image(img: ImageInput, name: str, limits: DecodeLimits) -> np.ndarray:
    """RGB uint8 from a path, encoded bytes or an array; ``InferenceError`` naming the input."""
    try:
        if isinstance(img, np.ndarray):
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise InferenceError(f"{name}: expected an HxWx3 uint8 RGB array, got {img.shape} {img.dtype}")
            return img
        if isinstance(img, str | Path):
            path = Path(img)
            if not path.is_file():
                raise InferenceError(f"{name}: no such file")
            img = path.read_bytes()
        return decode_rgb(img, name, limits)
    except BadImage as e:
        raise InferenceError(f"{name}: {e.reason}{': ' + e.detail if e.detail else ''}") from e


def sr_factor(width_px: float) -> int:
    """The training factor (4, 8 or 16) whose low-res grid is nearest the face's real width."""
    return min(FACTOR_SIZES, key=lambda k: abs(math.log((FACE_WIDTH / k) / width_px)))


class FaceVerifier:
    """Detect -> align -> (SRNet) -> FRNet features; 1:1 verification at a measured threshold."""

    def __init__(self, frnet: FrozenFRNet, srnet: SRNet | None = None, config: InferenceConfig | None = None,
                 thresholds: dict[str, float] | None = None, detector: MTCNNDetector | None = None,
                 model_name: str = "bicubic", lr_kernel: str = "bicubic") -> None:
        self.frnet = frnet
        self.srnet = srnet.eval() if srnet is not None else None
        self.config = config or InferenceConfig()
        self.thresholds = dict(thresholds or {})
        self.model_name = model_name if srnet is not None else "bicubic"
        self.lr_kernel = lr_kernel  # degrade.kernel: LR faces are made as the training shards' were
        self._detector = detector
        self.limits = DecodeLimits(self.config.min_side, self.config.max_pixels)

    @property
    def fingerprint(self) -> str:
        """Digest of everything an embedding depends on (weights and inference settings)."""
        from lrface.models import weights_digest

        h = weights_digest(self.frnet, self.srnet)
        c = self.config
        h.update(json.dumps([c.sr_below_px, c.min_face_px, c.min_score, c.min_face_size, list(c.detect_upscales),
                             c.detect_max_pixels, c.isr_resize, self.lr_kernel, self.frnet.precision]).encode())
        return h.hexdigest()[:16]

    @property
    def detector(self) -> MTCNNDetector:
        if self._detector is None:
            self._detector = MTCNNDetector(threads=torch.get_num_threads(), min_face_size=self.config.min_face_size)
        return self._detector

    # ------------------------------------------------------------------ detection and alignment

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """All faces of each image (largest first); tiny faces are looked for on upscaled copies."""
        from PIL import Image

        out: list[list[DetectedFace]] = [[] for _ in images]
        todo = list(range(len(images)))
        for up in self.config.detect_upscales:
            if not todo:
                break
            groups: dict[tuple[int, ...], list[int]] = {}
            for i in todo:
                h, w = images[i].shape[:2]
                if up > 1 and h * w * up * up > self.config.detect_max_pixels:
                    continue
                groups.setdefault((h, w), []).append(i)
            for idx in groups.values():
                frames = [images[i] if up == 1 else np.array(Image.fromarray(images[i]).resize(
                    (images[i].shape[1] * up, images[i].shape[0] * up), Image.Resampling.BICUBIC)) for i in idx]
                for i, faces in zip(idx, self.detector.detect_batch(frames), strict=True):
                    for f in faces:
                        if f.score < self.config.min_score:
                            continue
                        lm = (f.landmarks + 0.5) / up - 0.5  # back to the input's pixel grid
                        box = tuple((np.asarray(f.box) + 0.5) / up - 0.5)
                        out[i].append(DetectedFace(tuple(round(float(v), 2) for v in box), round(f.score, 4),
                                                   lm.round(3).tolist(), round(face_width(lm), 2), up))
            todo = [i for i in todo if not out[i]]
        for faces in out:
            faces.sort(key=lambda f: -f.width_px)
        return out

    def _crop(self, image: np.ndarray, face: DetectedFace, name: str) -> tuple[str, str, np.ndarray]:
        """(route, size, aligned face) for one detected face."""
        cfg = self.config
        lm = np.asarray(face.landmarks)
        if face.width_px < cfg.min_face_px:
            raise FaceTooSmallError(
                f"{name}: face at {face.box} is {face.width_px:.1f} px wide, below the {cfg.min_face_px:g} px "
                f"that SRNet can restore (a 7x6 face is 6 px wide); no guess is made")
        if face.width_px >= cfg.sr_below_px:
            return "direct", HR_SIZE, warp_face(image, lm)
        k = sr_factor(face.width_px)
        return ("srnet" if self.srnet is not None else "bicubic"), FACTOR_SIZES[k], \
            self.lr_face(warp_face(image, lm), k)

    def lr_face(self, aligned: np.ndarray, factor: int) -> np.ndarray:
        """The ``factor``-times smaller face of an aligned 112x96 one, made as the shards' LR faces."""
        return downsample(aligned, (FACE_SIZE[0] // factor, FACE_SIZE[1] // factor), self.lr_kernel)

    # ------------------------------------------------------------------------------- embedding

    @torch.inference_mode()
    def _restore(self, faces: list[np.ndarray], route: str) -> torch.Tensor:
        x = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float().div_(255.0)
        if route == "srnet":
            assert self.srnet is not None
            x = self.srnet(x)
        return to_face_size(x, self.config.isr_resize)

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
                x = self._restore([faces[i] for i in chunk], route)
                out[chunk] = self.frnet.embed_flip(x).numpy()
        return out

    def embed(self, images: Sequence[ImageInput], face_index: Sequence[int | None] | None = None,
              names: Sequence[str] | None = None) -> list[FaceEmbedding]:
        """Embed one face per image (the largest unless ``face_index`` says which)."""
        names = list(names) if names is not None else [_name(im, i) for i, im in enumerate(images)]
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
        """The evaluation's threshold for this kind of pair (faces or their grid sizes), at the
        lower resolution of the two: one face low-resolution -> the paper's protocol (``14x12``:
        probe vs 112x96 gallery); both low-resolution -> the both-low protocol (``14x12-14x12``);
        both large -> ``112x96``."""
        sa, sb = (f.size if isinstance(f, FaceEmbedding) else f for f in (a, b))
        order = [HR_SIZE, "28x24", "14x12", "7x6"]
        size = max(sa, sb, key=order.index)
        if sa != HR_SIZE and sb != HR_SIZE:
            size = both_lr(size)
        if self.config.threshold is not None:
            return float(self.config.threshold), size
        if size not in self.thresholds:
            raise InferenceError(
                f"no verification threshold for {self.model_name} at {size}: evaluate the model "
                f"(`lrface evaluate`, which logs thresholds at FAR {self.config.far:g}) or pass --threshold")
        return self.thresholds[size], size

    def verify(self, a: ImageInput, b: ImageInput, face_index: Sequence[int | None] | None = None) -> Verification:
        ea, eb = self.embed([a, b], face_index)
        sim = cosine(ea.embedding, eb.embedding)
        thr, size = self.threshold_for(ea, eb)
        far = None if self.config.threshold is not None else self.config.far
        return Verification(sim, thr, bool(sim >= thr), far, size, ea, eb)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / max(float(np.linalg.norm(a)), 1e-12)
    b = b / max(float(np.linalg.norm(b)), 1e-12)
    return float(a @ b)


def far_key(far: float) -> str:
    return f"{far:.0e}".replace("e-0", "e-")


def thresholds_from_metrics(metrics: dict[str, Any], method: str, far: float) -> dict[str, float]:
    """``{size: threshold}`` for ``method`` (LR sizes) and ``hr`` (112x96) from ``metrics.json``."""
    lfw = metrics.get("lfw", metrics)
    out: dict[str, float] = {}
    prefix = f"thr_far{far_key(far)}_"
    for name, wanted in ((method, None), ("hr", HR_SIZE)):
        for k, v in (lfw.get(name) or {}).items():
            if k.startswith(prefix):
                size = k.removeprefix(prefix)
                if wanted is None or size == wanted:
                    out[size] = float(v)
    return out


def thresholds_from_mlflow(model_uri: str | None, far: float, digest: str | None = None) -> dict[str, float]:
    """Thresholds logged by the latest evaluation runs of ``model_uri`` (or bicubic) and of hr. A
    checkpoint given by path is found by its weights ``digest`` (evaluation may have named the
    same file by another path)."""
    from mlflow import MlflowClient

    from lrface.tracking import resolve_version

    client = MlflowClient()
    exps = [e.experiment_id for e in client.search_experiments()]
    if not exps:
        return {}
    resolved = resolve_version(model_uri) if model_uri and model_uri.startswith("models:/") else None
    if resolved:
        sel = (f"tags.`lrface.registered_model` = '{resolved[0]}' and "
               f"tags.`lrface.model_version` = '{resolved[1]}'")
    elif digest:
        sel = f"tags.`lrface.srnet_digest` = '{digest}'"
    elif model_uri:
        sel = f"tags.`lrface.model_uri` = '{model_uri}'"
    else:
        sel = "tags.`lrface.method` = 'bicubic'"
    out: dict[str, float] = {}
    prefix = f"lfw/thr_far{far_key(far)}_"
    for query, only in ((sel, None), ("tags.`lrface.method` = 'hr'", HR_SIZE)):
        runs = client.search_runs(exps, f"tags.`lrface.kind` = 'evaluation' and {query}",
                                  order_by=["attributes.start_time DESC"], max_results=1)
        for k, v in (runs[0].data.metrics.items() if runs else ()):
            if k.startswith(prefix) and (only is None or k.endswith(only)):
                out[k.removeprefix(prefix)] = float(v)
    return out


def load_verifier(params, srnet: str | None = "", threshold: float | None = None) -> FaceVerifier:
    """A verifier from params.yaml: FRNet from ``paths.frnet_checkpoint``, SRNet from ``srnet``
    (``""``: ``inference.srnet``; ``None``: bicubic), thresholds from MLflow or metrics.json."""
    from lrface.checkpoints import load_frnet, load_srnet
    from lrface.models.precision import resolve_precision

    cfg = InferenceConfig.from_dict(params.get("inference"))
    if threshold is not None:
        cfg = InferenceConfig(**{**asdict(cfg), "threshold": threshold})
    spec = cfg.srnet if srnet == "" else srnet
    model, name, thresholds = None, "bicubic", {}
    from_mlflow = bool(spec and spec.startswith(("models:/", "runs:/")))
    if from_mlflow or cfg.threshold is None:
        from lrface.tracking import setup_mlflow

        setup_mlflow(params)
    if from_mlflow:
        from lrface.tracking import describe_model, load_srnet_uri

        model, name = load_srnet_uri(spec), describe_model(spec)
    elif spec:
        model, name = load_srnet(spec), str(spec)
    if cfg.threshold is None:
        digest = weights_digest(model).hexdigest() if model is not None and not from_mlflow else None
        thresholds = thresholds_from_mlflow(spec if model is not None else None, cfg.far, digest)
        if not thresholds:
            rel = params.section("evaluate").get("metrics_file", "metrics.json")
            mfile = params.workspace().pull(rel, missing_ok=True)
            if mfile.is_file():
                label = (name if from_mlflow else checkpoint_label(spec)) if model is not None else "bicubic"
                thresholds = thresholds_from_metrics(json.loads(mfile.read_text()), label, cfg.far)
    precision = resolve_precision(params.get_dotted("frnet.precision", "auto"))
    return FaceVerifier(load_frnet(params.path("frnet_checkpoint"), precision=precision), model, cfg, thresholds,
                        model_name=name, lr_kernel=params.get_dotted("degrade.kernel", "bicubic"))
