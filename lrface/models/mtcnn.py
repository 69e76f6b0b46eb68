"""MTCNN's three networks (P-Net, R-Net, O-Net) as plain torch modules, NCHW.

Pure networks: no weights are read and no detection logic lives here (see
:mod:`lrface.data.detector`). The layers reproduce the Keras models of the ``mtcnn`` package
(1.0.0) exactly, including two TensorFlow details that torch does not have built in:

* ``"same"`` max pooling pads ``total // 2`` before and the rest after, with -inf
  (:class:`SamePool`);
* R-Net and O-Net flatten their last feature map in (width, height, channel) order, the
  Keras model's ``Permute((2, 1, 3))`` of an NHWC map, so their first dense layer takes
  Keras' kernel unchanged (transposed).

Pooling of narrow maps and PReLU are written for channels-last CPU maps (what the convolutions
run fastest on), where torch's own layers are slow for them; they compute the same values
(tests/test_detector.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Channels-last maps this wide are pooled by torch itself (faster there than strided maxima:
# 2-3x on R-/O-Net maps of 28-64 channels; slower on P-Net's 10; measured on an AVX2 CPU)
TORCH_POOL_MIN_CHANNELS = 16


def _max_along(x: torch.Tensor, dim: int, kernel: int, stride: int, before: int, n_out: int) -> torch.Tensor:
    """Max pooling along ``dim`` (-1 or -2) as a max over strided views, window ``o`` covering
    ``[o * stride - before, o * stride - before + kernel)`` clipped to the map (what -inf padding gives)."""
    n = x.shape[dim]
    shape = list(x.shape)
    shape[dim] = n_out
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt).fill_(float("-inf"))
    for j in range(kernel):
        lo = max(0, -((j - before) // stride))  # first window whose tap j is on the map
        hi = min(n_out - 1, (n - 1 - j + before) // stride)  # last one
        if hi < lo:
            continue
        src, dst = [slice(None)] * x.ndim, [slice(None)] * x.ndim
        start = lo * stride + j - before
        src[dim] = slice(start, start + (hi - lo) * stride + 1, stride)
        dst[dim] = slice(lo, hi + 1)
        view = out[tuple(dst)]
        torch.maximum(view, x[tuple(src)], out=view)
    return out


def max_pool(x: torch.Tensor, kernel: int, stride: int, pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> torch.Tensor:
    """Max pooling of an NCHW map with ``pads`` (top, bottom, left, right) of -inf, windows that
    fit the padded map only (floor mode): ``F.max_pool2d``'s values (up to the sign of a zero).
    Channels-last maps of at least ``TORCH_POOL_MIN_CHANNELS`` channels (R-Net, O-Net) go to
    torch's own pooling, which is vectorised over channels there; narrower ones (P-Net's 10) are
    pooled as a max over strided views, columns then rows, about 1.5-2x faster for them. With
    autograd on, torch's own pooling runs."""
    top, bottom, left, right = pads
    h, w = x.shape[-2] + top + bottom, x.shape[-1] + left + right
    if h < kernel or w < kernel:
        raise ValueError(f"max_pool: {kernel}x{kernel} window on a {h}x{w} padded map")
    n_h, n_w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    wide = x.ndim == 4 and x.shape[1] >= TORCH_POOL_MIN_CHANNELS and x.is_contiguous(memory_format=torch.channels_last)
    if (wide and top == left and bottom == right and bottom - top in (0, 1) and 2 * top <= kernel
            and min(x.shape[-2:]) >= kernel and (stride > 1 or bottom == top)):  # else: never this shape
        # -inf padding as torch's own: `top` on both sides, the extra one after by ceil mode
        y = F.max_pool2d(x, kernel, stride, padding=top, ceil_mode=bottom > top)
        if y.shape[-2:] == (n_h, n_w):
            return y
    if wide or (torch.is_grad_enabled() and x.requires_grad):  # out= below does not differentiate
        return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), kernel, stride)
    y = _max_along(x, -1, kernel, stride, left, n_w)
    return _max_along(y, -2, kernel, stride, top, n_h)


class MaxPool(nn.Module):
    """:func:`max_pool` as a layer, no padding (``nn.MaxPool2d(kernel, stride)``'s values)."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool(x, self.kernel, self.stride)


class SamePool(MaxPool):
    """Max pooling with TensorFlow's ``padding="same"``: output ``ceil(n / stride)`` per side, padded
    ``total // 2`` before and the rest after, with -inf."""

    def _pads(self, n: int) -> tuple[int, int]:
        total = max((math.ceil(n / self.stride) - 1) * self.stride + self.kernel - n, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool(x, self.kernel, self.stride, (*self._pads(x.shape[-2]), *self._pads(x.shape[-1])))


class PReLU(nn.PReLU):
    """``nn.PReLU`` (same parameter, same values) that stays fast on channels-last maps: there it
    runs on the ``(N*H, W*C)`` view with the slopes tiled along W, where torch's own PReLU is
    about 3x slower than on NCHW."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.ndim != 4 or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last)
                or self.weight.numel() != x.shape[1]):
            return super().forward(x)
        n, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(n * h, w * c)
        return F.prelu(rows, self.weight.repeat(w)).view(n, h, w, c).permute(0, 3, 1, 2)


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k), PReLU(cout)]


def _whc_flatten(x: torch.Tensor) -> torch.Tensor:
    """NCHW -> (N, W*H*C) in Keras' permuted (width, height, channel) order."""
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal net, fully convolutional: image ``(N, 3, H, W)`` -> box offsets ``(N, 4, h, w)`` and
    face/not-face probabilities ``(N, 2, h, w)`` (softmax over dim 1), ``h = ceil((H-2)/2) - 4``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv(3, 10, 3), SamePool(2, 2), *_conv(10, 16, 3), *_conv(16, 32, 3)
        )
        self.box = nn.Conv2d(32, 4, 1)
        self.cls = nn.Conv2d(32, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.body(x)
        return self.box(y), torch.softmax(self.cls(y), dim=1)


class RNet(nn.Module):
    """Refinement net: 24x24 patches ``(N, 3, 24, 24)`` -> offsets ``(N, 4)``, probabilities ``(N, 2)``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv(3, 28, 3), SamePool(3, 2), *_conv(28, 48, 3), MaxPool(3, 2), *_conv(48, 64, 2)
        )
        self.fc = nn.Sequential(nn.Linear(576, 128), PReLU(128))
        self.box = nn.Linear(128, 4)
        self.cls = nn.Linear(128, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.fc(_whc_flatten(self.body(x)))
        return self.box(y), torch.softmax(self.cls(y), dim=1)


class ONet(nn.Module):
    """Output net: 48x48 patches -> offsets ``(N, 4)``, landmarks ``(N, 10)`` (5 x in [0, 1] of the
    box's width, then 5 y) and probabilities ``(N, 2)``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv(3, 32, 3), SamePool(3, 2), *_conv(32, 64, 3), MaxPool(3, 2),
            *_conv(64, 64, 3), SamePool(2, 2), *_conv(64, 128, 2),
        )
        self.fc = nn.Sequential(nn.Linear(1152, 256), PReLU(256))
        self.box = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)
        self.cls = nn.Linear(256, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = self.fc(_whc_flatten(self.body(x)))
        return self.box(y), self.landmarks(y), torch.softmax(self.cls(y), dim=1)
