"""MTCNN face detection in torch: the ``mtcnn`` package's cascade (1.0.0), without TensorFlow.

:class:`TorchMTCNN` has :class:`lrface.data.detector_tf.MTCNNDetector`'s interface (``detect``,
``detect_batch`` -> :class:`Face` lists with float landmarks) and reproduces the
package's cascade step by step, so the two find the same faces:

* images normalised as ``(x - 127.5) / 128``, NHWC semantics (no width/height transpose);
* pyramid: ``round(log(min_side / 12) / log(1 / 0.709) - 1)`` scales ``12 / min_face_size *
  0.709**k``; each level is the image area-resized (TensorFlow's ``ResizeArea``) to
  ``int(side * scale)``;
* P-Net cells above 0.6 become boxes ``(2x+1, 2y+1, 2x+12, 2y+12) + 11 * offsets`` (offsets applied
  at once), divided by the scale; per level "union" NMS 0.5, then across levels "union" NMS 0.7,
  then boxes made square (no rounding);
* R-Net and O-Net read their boxes with TensorFlow's ``crop_and_resize`` (bilinear, 0 outside the
  image, box corners normalised by the image side but sampled on ``side - 1``); R-Net keeps > 0.7,
  "union" NMS 0.7, square; O-Net keeps > 0.8, "min" NMS 0.7; offsets and landmarks are scaled by
  ``side + 1`` of the box they were predicted in, landmarks shifted by -1;
* NMS is the package's: a box is dropped when any higher-scored box of its image overlaps it by
  more than the threshold (whether or not that box was itself dropped); areas without +1;
* boxes are finally clipped to the image, landmarks are not.

Weights are the ones the ``mtcnn`` wheel ships (``mtcnn/assets/weights/{p,r,o}net.lz4``, joblib
pickles of the Keras weight lists); they are read from the installed package's folder without
importing it (the package imports TensorFlow), or from ``weights_dir``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lrface.models.mtcnn import ONet, PNet, RNet

MIN_SIZE = 12  # P-Net's window
SCALE_FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.8)  # P-Net, R-Net, O-Net (the package's defaults)
NMS_PNET_LEVEL, NMS_PNET, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
PATCH_BATCH = 256  # R-/O-Net patches per forward pass
PNET_TILE_PIXELS = 2_000_000  # P-Net runs on row strips of at most this many pixels (x batch)
DETECTORS: tuple[str, ...] = ("torch", "tensorflow")  # make_detector's kinds


@dataclass(frozen=True)
class Face:
    """One detection: box ``(x1, y1, x2, y2)``, confidence and landmarks ``(5, 2)`` as (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray = field(compare=False)


def package_weights_dir() -> Path:
    """``mtcnn/assets/weights`` of the installed ``mtcnn`` package, found without importing it."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the mtcnn package (whose wheel ships the MTCNN weights) is not installed; "
                                "pass weights_dir= a folder holding pnet.lz4, rnet.lz4, onet.lz4")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "weights"


def load_keras_weights(net: nn.Module, arrays: Sequence[np.ndarray]) -> nn.Module:
    """Copy a Keras weight list (layer order; conv HWIO, dense (in, out), PReLU (1, 1, C)) into
    ``net``, whose parameters are declared in the same order."""
    params = list(net.named_parameters())
    if len(params) != len(arrays):
        raise ValueError(f"{type(net).__name__}: {len(arrays)} weight arrays for {len(params)} parameters")
    with torch.no_grad():
        for (name, p), a in zip(params, arrays, strict=True):
            t = torch.from_numpy(np.array(a, dtype=np.float32))
            if t.ndim == 4:
                t = t.permute(3, 2, 0, 1)  # HWIO -> OIHW
            elif t.ndim == 2:
                t = t.T  # (in, out) -> (out, in)
            elif t.ndim == 3:
                t = t.reshape(-1)  # PReLU alpha shared over H, W
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError(f"{type(net).__name__}.{name}: weight of shape {tuple(a.shape)} "
                                 f"does not fit {tuple(p.shape)}")
            p.copy_(t)
    return net


def load_nets(weights_dir: str | Path | None = None) -> tuple[PNet, RNet, ONet]:
    """The three nets with the package's weights (read as files; see the module docstring)."""
    import joblib  # a dependency of mtcnn; reads the lz4-compressed pickles

    folder = Path(weights_dir) if weights_dir is not None else package_weights_dir()
    nets = []
    for cls, name in ((PNet, "pnet"), (RNet, "rnet"), (ONet, "onet")):
        path = folder / f"{name}.lz4"
        if not path.is_file():
            raise FileNotFoundError(f"MTCNN weights not found: {path}")
        nets.append(load_keras_weights(cls(), joblib.load(path)).eval())
    return nets[0], nets[1], nets[2]


# ----------------------------------------------------------------------------------- pyramid


def pyramid_scales(height: int, width: int, min_face_size: int) -> np.ndarray:
    """The package's scales: count from the short side, first scale ``12 / min_face_size``."""
    short = min(height, width)
    count = round(-(np.log(short / MIN_SIZE) / np.log(SCALE_FACTOR) + 1))
    return (MIN_SIZE / min_face_size) * SCALE_FACTOR ** np.arange(max(count, 0))


def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Input indices ``(n_out, K)`` and float32 weights of TensorFlow's ResizeArea along one axis
    (weight = overlap of input cell i with the output cell's span; indices clamped to the edge)."""
    scale = np.float32(n_in) / np.float32(n_out)
    out = np.arange(n_out, dtype=np.float32)
    lo, hi = out * scale, (out + 1) * scale
    start = np.floor(lo).astype(np.int64)
    end = np.ceil(hi).astype(np.int64)
    k = int((end - start).max())
    idx = start[:, None] + np.arange(k)[None, :]
    cell = idx.astype(np.float32)
    w = np.minimum(cell + 1, hi[:, None]) - np.maximum(cell, lo[:, None])
    w = np.where(idx < end[:, None], w, 0).astype(np.float32)
    return np.minimum(idx, n_in - 1), w


@functools.lru_cache(maxsize=64)
def _area_matrix(n_in: int, n_outs: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR parts (row offsets, columns, float32 values) of ResizeArea's weights from ``n_in`` cells
    to each of ``n_outs``, stacked: row ``i`` of the result holds output cell ``i`` of its size.
    Built from the taps (no dense matrix); a tap clamped onto the last cell (a span ending a float
    rounding past it) is added to that cell's, so each row's columns are distinct and increasing."""
    rows, cols, vals = [], [], []
    first = 0
    for n_out in n_outs:
        idx, w = _area_taps(n_in, n_out)
        keep = w != 0  # taps past the span weigh 0
        rows.append(np.broadcast_to(np.arange(first, first + n_out)[:, None], idx.shape)[keep])
        cols.append(idx[keep])
        vals.append(w[keep])
        first += n_out
    key, where = np.unique(np.concatenate(rows) * n_in + np.concatenate(cols), return_inverse=True)
    merged = np.zeros(len(key), np.float32)
    np.add.at(merged, where, np.concatenate(vals))  # float32 sums, as the taps' own
    crow = np.zeros(first + 1, np.int64)
    np.cumsum(np.bincount(key // n_in, minlength=first), out=crow[1:])
    return crow, key % n_in, merged


def _area_norm(h: int, w: int, hs: int, ws: int) -> float:
    """ResizeArea's 1 / (cell area) from ``h x w`` to ``hs x ws``, in float32 as TensorFlow's."""
    return float(np.float32(1) / (np.float32(h) / np.float32(hs) * (np.float32(w) / np.float32(ws))))


@functools.lru_cache(maxsize=128)
def _sparse(n_in: int, n_outs: tuple[int, ...], device: torch.device, scale: float = 1.0) -> torch.Tensor:
    """:func:`_area_matrix` as a torch CSR tensor on ``device`` (kept: read-only, shared by threads),
    its weights times ``scale``."""
    crow, cols, vals = _area_matrix(n_in, n_outs)
    if scale != 1.0:
        vals = vals * np.float32(scale)
    return torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols), torch.from_numpy(vals),
                                   (len(crow) - 1, n_in), check_invariants=False).to(device)


def _consume_csr_beta_warning() -> None:
    """torch warns once per process that CSR tensors are "beta" (the products here, CSR x dense,
    are long stable): spend that one warning now, silenced, so no caller sees it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.sparse_csr_tensor(torch.zeros(2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64),
                                torch.zeros(0), (1, 1))


_consume_csr_beta_warning()


def area_pyramid(x: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> Iterator[torch.Tensor]:
    """TensorFlow's ``ResizeArea`` (``tf.image.resize(..., method=AREA)``) of float32 NCHW ``x`` to
    each ``(height, width)`` of ``sizes`` in turn, every one from ``x`` itself; results
    channels-last in memory (what the convolutions run fastest on). Each resize is two sparse
    matrix products, one image at a time (its rows, then its columns, stay in cache); the rows of
    consecutive levels come from one product, in groups at most as tall as the image (a taller
    level alone). Levels are made a group at a time, so a caller that drops each level when done
    holds one group's (with the default 12 / 20 first scale, at most about a third of the image)."""
    n, c, h, w = x.shape
    nhwc = x.permute(0, 2, 3, 1)
    groups: list[list[int]] = []
    for k, (hs, _) in enumerate(sizes):
        if groups and sum(sizes[j][0] for j in groups[-1]) + hs <= h:
            groups[-1].append(k)
        else:
            groups.append([k])
    for g in groups:
        rows = _sparse(h, tuple(sizes[k][0] for k in g), x.device)
        cols = {k: _sparse(w, (sizes[k][1],), x.device, scale=_area_norm(h, w, *sizes[k])) for k in g}
        outs = {k: torch.empty((n, *sizes[k], c), dtype=x.dtype, device=x.device) for k in g}
        for i in range(n):
            image = nhwc[i].reshape(h, w * c)  # free for channels-last x (the detector's), else a copy
            y = torch.sparse.mm(rows, image)  # (the group's heights, w * c)
            r = 0
            for k in g:
                hs, ws = sizes[k]
                by_col = y[r : r + hs].view(hs, w, c).transpose(0, 1).reshape(w, hs * c)
                outs[k][i].copy_(torch.sparse.mm(cols[k], by_col).view(ws, hs, c).transpose(0, 1))
                r += hs
        for k in g:
            yield outs.pop(k).permute(0, 3, 1, 2)  # NCHW view of NHWC memory: channels-last


def area_resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """One level of :func:`area_pyramid`."""
    return next(area_pyramid(x, [(height, width)]))


def crop_and_resize(images: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """TensorFlow's ``crop_and_resize`` (bilinear, extrapolation 0) of float32 NCHW ``images`` at ``boxes``
    (rows ``image, x1, y1, x2, y2`` in pixels, normalised by the image side as the package does)
    -> ``(len(boxes), C, size, size)``, channels-last. Samples at ``corner * (side - 1)`` plus
    equal steps; one inside ``[0, side - 1]`` on both axes is bilinear between its neighbours
    (``grid_sample`` with ``align_corners``, all boxes of an image in one call), one outside is 0."""
    if size < 2:
        raise ValueError(f"crop_and_resize: patches of {size}x{size}; R-/O-Net take 24 and 48")
    _, c, h, w = images.shape
    dev = images.device
    norm = (boxes[:, [2, 1, 4, 3]] / np.array([h, w, h, w], np.float64)).astype(np.float32)
    y1, x1, y2, x2 = torch.from_numpy(norm).to(dev).unbind(1)
    steps = torch.arange(size, device=dev, dtype=torch.float32)

    def axis(a: torch.Tensor, b: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Grid coordinates in [-1, 1] of the samples along one side, and which lie on the image."""
        step = (b - a) * (n - 1) / (size - 1)
        pos = (a * (n - 1))[:, None] + steps[None, :] * step[:, None]
        return pos / max(n - 1, 1) * 2 - 1, (pos >= 0) & (pos <= n - 1)

    gy, in_y = axis(y1, y2, h)
    gx, in_x = axis(x1, x2, w)
    ids = boxes[:, 0].astype(np.int64)
    order = np.argsort(ids, kind="stable")  # the detector's boxes come grouped by image already
    grouped = bool((order == np.arange(len(ids))).all())
    if not grouped:
        sel = torch.from_numpy(order).to(dev)
        gx, gy, in_x, in_y = gx[sel], gy[sel], in_x[sel], in_y[sel]
    out = torch.empty((len(boxes), size, size, c), dtype=images.dtype, device=dev)
    first = 0
    for i, k in zip(*np.unique(ids, return_counts=True), strict=True):
        part = slice(first, first + int(k))
        grid = torch.stack([gx[part, None, :].expand(-1, size, size), gy[part, :, None].expand(-1, size, size)], -1)
        got = F.grid_sample(images[int(i)][None], grid.view(1, k * size, size, 2), mode="bilinear",
                            padding_mode="zeros", align_corners=True)  # (1, C, k * size, size)
        out[part] = got[0].view(c, k, size, size).permute(1, 2, 3, 0)
        first += int(k)
    out *= (in_y[:, :, None] & in_x[:, None, :])[..., None]
    if not grouped:
        out = out[torch.from_numpy(np.argsort(order)).to(dev)]
    return out.permute(0, 3, 1, 2)  # NCHW view of NHWC memory: channels-last


# ------------------------------------------------------------------------------ box helpers
# Box arrays are float64 numpy, one row per box: image, x1, y1, x2, y2, score[, 10 landmarks].


def _sort_desc(boxes: np.ndarray) -> np.ndarray:
    """By score, highest first (ascending argsort reversed, as the package sorts)."""
    return boxes[np.argsort(boxes[:, 5])[::-1]]


def _suppressed(xyxy: np.ndarray, threshold: float, mode: str) -> np.ndarray:
    """True where a box overlaps any earlier box by more than ``threshold`` (earlier = higher score).
    Pairwise in column blocks of about 2M pairs, so thousands of boxes need no n x n matrix."""
    n = len(xyxy)
    block = max(16, 2_000_000 // max(n, 1))
    out = np.zeros(n, bool)
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        for s in range(1, n, block):
            j = slice(s, min(s + block, n))
            a = xyxy[: j.stop]  # candidates: every box before the last of this block
            iw = np.maximum(0, np.minimum(a[:, None, 2], xyxy[None, j, 2]) - np.maximum(a[:, None, 0], xyxy[None, j, 0]))
            ih = np.maximum(0, np.minimum(a[:, None, 3], xyxy[None, j, 3]) - np.maximum(a[:, None, 1], xyxy[None, j, 1]))
            inter = iw * ih
            if mode == "union":
                ratio = inter / (area[: j.stop, None] + area[None, j] - inter)
            else:
                ratio = inter / np.minimum(area[: j.stop, None], area[None, j])
            earlier = np.arange(j.stop)[:, None] < np.arange(j.start, j.stop)[None, :]
            out[j] = ((ratio > threshold) & earlier).any(axis=0)
    return out


def nms(boxes: np.ndarray, threshold: float, mode: str = "union", sort: bool = True) -> np.ndarray:
    """The package's NMS per image; rows come out grouped by image (ascending), order kept within."""
    if sort and len(boxes):
        boxes = _sort_desc(boxes)
    kept = []
    for image in np.unique(boxes[:, 0]):
        b = boxes[boxes[:, 0] == image]
        kept.append(b[~_suppressed(b[:, 1:5], threshold, mode)])
    return np.concatenate(kept) if kept else boxes[:0]


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow the short side to the long one around the centre (no rounding)."""
    out = boxes.copy()
    w, h = boxes[:, 3] - boxes[:, 1], boxes[:, 4] - boxes[:, 2]
    side = np.maximum(w, h)
    out[:, 1] = boxes[:, 1] + w * 0.5 - side * 0.5
    out[:, 2] = boxes[:, 2] + h * 0.5 - side * 0.5
    out[:, 3] = out[:, 1] + side
    out[:, 4] = out[:, 2] + side
    return out


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Shift corners by offsets in units of the box's side + 1."""
    out = boxes.copy()
    w = boxes[:, 3] - boxes[:, 1] + 1
    h = boxes[:, 4] - boxes[:, 2] + 1
    out[:, 1:5] += offsets.astype(np.float64) * np.stack([w, h, w, h], axis=1)
    return out


# -------------------------------------------------------------------------------- detector


class FaceDetector(Protocol):
    """What detection callers need: :class:`TorchMTCNN`, or the TensorFlow ``MTCNNDetector``."""

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]: ...


def make_detector(kind: str = "torch", threads: int | None = 1, min_face_size: int = 20,
                  max_pixels: int = 40_000_000) -> FaceDetector:
    """``torch``: :class:`TorchMTCNN`; ``tensorflow``: the ``mtcnn`` package it reproduces
    (:mod:`lrface.data.detector_tf`, needs the ``tf-reference`` extra; for comparisons)."""
    if kind == "torch":
        return TorchMTCNN(threads=threads, min_face_size=min_face_size, max_pixels=max_pixels)
    if kind == "tensorflow":
        from lrface.data.detector_tf import MTCNNDetector

        return MTCNNDetector(threads=threads or 1, min_face_size=min_face_size)
    raise ValueError(f"detector must be one of {DETECTORS}, got {kind!r}")


class TorchMTCNN:
    """MTCNN in torch with :class:`~lrface.data.detector_tf.MTCNNDetector`'s interface and results.

    ``threads``: torch intra-op threads, set process-wide as MTCNNDetector sets TensorFlow's
    (``None`` leaves torch's setting). ``device``: where the nets and the image pyramid run
    (``"cpu"``, ``"cuda"``...). ``max_pixels``: most pixels (images x height x width) one pass
    holds; a larger image is refused with ``ValueError``, a batch is split to fit. Calls share no
    mutable state, so one detector may serve several threads.
    """

    def __init__(self, threads: int | None = 1, min_face_size: int = 20, device: str | torch.device = "cpu",
                 max_pixels: int = 40_000_000, weights_dir: str | Path | None = None,
                 thresholds: tuple[float, float, float] = THRESHOLDS) -> None:
        if min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1, got {min_face_size}")
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
        if threads is not None and threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        self.min_face_size = min_face_size
        self.max_pixels = max_pixels
        self.thresholds = tuple(float(t) for t in thresholds)
        self.device = torch.device(device)
        # conv weights channels-last like the maps the detector feeds them (channels-last): on
        # such maps bitwise the same outputs as contiguous weights, and up to 2x faster for R-Net's
        # and O-Net's 3-channel first convs on CPU (NCHW inputs would give other roundings)
        self.pnet, self.rnet, self.onet = (n.to(self.device, memory_format=torch.channels_last)
                                           for n in load_nets(weights_dir))

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of images of one shape (``(H, W, 3)`` uint8 RGB), in one pass where ``max_pixels``
        allows; per image highest score first."""
        if len(images) == 0:
            return []
        shape = self._check(images)
        per_pass = max(1, self.max_pixels // (shape[0] * shape[1]))
        out: list[list[Face]] = []
        for s in range(0, len(images), per_pass):
            out += self._detect(images[s : s + per_pass])
        return out

    def _check(self, images: Sequence[np.ndarray]) -> tuple[int, int]:
        shapes = set()
        for im in images:
            if not isinstance(im, np.ndarray):
                raise ValueError(f"expected numpy arrays, got {type(im).__name__}")
            if im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(f"expected HxWx3 RGB images, got shape {im.shape} (convert grayscale/RGBA "
                                 "to RGB first, e.g. lrface.data.images.decode_rgb)")
            if im.dtype != np.uint8:
                raise ValueError(f"expected uint8 RGB images, got {im.dtype} (decode 16-bit images to "
                                 "8 bits first, e.g. lrface.data.images.decode_rgb)")
            shapes.add(im.shape)
        if len(shapes) != 1:
            raise ValueError("detect_batch needs images of one shape")
        h, w, _ = shapes.pop()
        if h < 1 or w < 1:
            raise ValueError(f"empty image of shape {(h, w, 3)}")
        if h * w > self.max_pixels:
            raise ValueError(f"image of {w}x{h} = {h * w} pixels exceeds the detector's max_pixels "
                             f"({self.max_pixels})")
        return h, w

    @torch.inference_mode()
    def _detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        h, w = images[0].shape[:2]
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(images))).to(self.device)
        x = batch.permute(0, 3, 1, 2).float().sub_(127.5).mul_(0.0078125)  # (x - 127.5) / 128
        del batch
        boxes = self._pnet_stage(x)
        if len(boxes):
            boxes = self._rnet_stage(x, boxes)
        if len(boxes):
            boxes = self._onet_stage(x, boxes)
        result: list[list[Face]] = [[] for _ in images]
        for r in boxes:
            box = (min(max(r[1], 0.0), w - 1.0), min(max(r[2], 0.0), h - 1.0),
                   min(max(r[3], 0.0), w - 1.0), min(max(r[4], 0.0), h - 1.0))
            result[int(r[0])].append(Face(tuple(float(v) for v in box), float(r[5]),
                                          np.stack([r[6:11], r[11:16]], axis=1).copy()))
        return result

    def _pnet_stage(self, x: torch.Tensor) -> np.ndarray:
        h, w = x.shape[-2:]
        # the package truncates side * scale; a level smaller than P-Net's window is skipped
        scales = [float(s) for s in pyramid_scales(h, w, self.min_face_size)
                  if int(h * s) >= MIN_SIZE and int(w * s) >= MIN_SIZE]
        sizes = [(int(h * s), int(w * s)) for s in scales]
        levels = []
        for level, scale in zip(area_pyramid(x, sizes), scales, strict=True):
            found = self._pnet_boxes(*self._pnet(level), scale)
            del level  # levels are made a group at a time: hold none longer than needed
            if len(found):
                levels.append(nms(found, NMS_PNET_LEVEL, "union", sort=False))
        if not levels:
            return np.empty((0, 6))
        return square(nms(np.concatenate(levels), NMS_PNET, "union"))

    def _pnet(self, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over ``level`` in row strips (exactly equal to one pass: strips start on even rows
        and overlap by P-Net's window)."""
        n, _, hs, ws = level.shape
        out_rows = math.ceil((hs - 2) / 2) - 4
        per_strip = max(1, (PNET_TILE_PIXELS // max(1, n * ws) - 10) // 2)
        if per_strip >= out_rows:
            return self.pnet(level)
        regs, probs = [], []
        for r0 in range(0, out_rows, per_strip):
            r1 = min(r0 + per_strip, out_rows)
            reg, prob = self.pnet(level[:, :, 2 * r0 : min(hs, 2 * r1 + 10)])
            regs.append(reg[:, :, : r1 - r0])
            probs.append(prob[:, :, : r1 - r0])
        return torch.cat(regs, 2), torch.cat(probs, 2)

    def _pnet_boxes(self, reg: torch.Tensor, prob: torch.Tensor, scale: float) -> np.ndarray:
        face = prob[:, 1]
        b, y, x = torch.nonzero(face > self.thresholds[0], as_tuple=True)
        if len(b) == 0:
            return np.empty((0, 6))
        score = face[b, y, x].cpu().numpy().astype(np.float64)
        off = reg[b, :, y, x].cpu().numpy().astype(np.float64)  # (n, 4)
        b, y, x = (t.cpu().numpy() for t in (b, y, x))
        boxes = np.stack([b, 2 * x + 1 + off[:, 0] * 11, 2 * y + 1 + off[:, 1] * 11,
                          2 * x + 12 + off[:, 2] * 11, 2 * y + 12 + off[:, 3] * 11, score], axis=1)
        boxes = _sort_desc(boxes)
        boxes[:, 1:5] /= scale
        return boxes

    def _patches(self, x: torch.Tensor, boxes: np.ndarray, size: int, net: nn.Module) -> list[np.ndarray]:
        outs: list[list[np.ndarray]] = []
        for s in range(0, len(boxes), PATCH_BATCH):
            res = net(crop_and_resize(x, boxes[s : s + PATCH_BATCH], size))
            outs.append([t.float().cpu().numpy() for t in res])
        return [np.concatenate(parts) for parts in zip(*outs, strict=True)]

    def _rnet_stage(self, x: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
        off, prob = self._patches(x, boxes, 24, self.rnet)
        boxes = boxes.copy()
        boxes[:, 5] = prob[:, 1]
        boxes = regress(boxes, off)
        boxes = boxes[boxes[:, 5] > self.thresholds[1]]
        return square(nms(boxes, NMS_RNET, "union"))

    def _onet_stage(self, x: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
        off, marks, prob = self._patches(x, boxes, 48, self.onet)
        w = boxes[:, 3:4] - boxes[:, 1:2] + 1
        h = boxes[:, 4:5] - boxes[:, 2:3] + 1
        lx = w * marks[:, :5].astype(np.float64) + boxes[:, 1:2] - 1
        ly = h * marks[:, 5:].astype(np.float64) + boxes[:, 2:3] - 1
        boxes = boxes.copy()
        boxes[:, 5] = prob[:, 1]
        boxes = np.concatenate([regress(boxes, off), lx, ly], axis=1)
        boxes = boxes[boxes[:, 5] > self.thresholds[2]]
        return nms(boxes, NMS_ONET, "min")
