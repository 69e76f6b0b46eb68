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

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lrface.data.detection import Face, FaceDetector
from lrface.data.mtcnn_boxes import nms, regress, sort_by_score, square
from lrface.data.mtcnn_pyramid import MIN_SIZE, area_pyramid, crop_and_resize, pyramid_scales
from lrface.data.mtcnn_weights import load_nets

THRESHOLDS = (0.6, 0.7, 0.8)  # P-Net, R-Net, O-Net (the package's defaults)
NMS_PNET_LEVEL, NMS_PNET, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
PATCH_BATCH = 256  # R-/O-Net patches per forward pass
PNET_TILE_PIXELS = 2_000_000  # P-Net runs on row strips of at most this many pixels (x batch)
DETECTORS: tuple[str, ...] = ("torch", "tensorflow")  # make_detector's kinds


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
        boxes = sort_by_score(boxes)
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
