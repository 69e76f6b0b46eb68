"""MTCNN's image pyramid and patch sampling in torch, as TensorFlow computes them: the
package's scales, ``ResizeArea`` (as sparse matrices) and ``crop_and_resize`` (bilinear)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

MIN_SIZE = 12  # P-Net's window
SCALE_FACTOR = 0.709


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
