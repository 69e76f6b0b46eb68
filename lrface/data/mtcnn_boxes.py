"""MTCNN's box arithmetic on float64 numpy arrays, one row per box: image, x1, y1, x2, y2,
score[, 10 landmarks]. NMS as the ``mtcnn`` package does it, squaring, offset regression."""

from __future__ import annotations

import numpy as np

# Box arrays are float64 numpy, one row per box: image, x1, y1, x2, y2, score[, 10 landmarks].


def sort_by_score(boxes: np.ndarray) -> np.ndarray:
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
        boxes = sort_by_score(boxes)
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
