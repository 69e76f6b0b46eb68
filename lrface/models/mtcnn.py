"""MTCNN's three networks (P-Net, R-Net, O-Net) as plain torch modules, NCHW.

Pure networks: no weights are read and no detection logic lives here (see
:mod:`lrface.data.detector`). The layers reproduce the Keras models of the ``mtcnn`` package
(1.0.0) exactly, including two TensorFlow details that torch does not have built in:

* ``"same"`` max pooling pads ``total // 2`` before and the rest after, with -inf
  (:class:`SamePool`);
* R-Net and O-Net flatten their last feature map in (width, height, channel) order, the
  Keras model's ``Permute((2, 1, 3))`` of an NHWC map, so their first dense layer takes
  Keras' kernel unchanged (transposed).

(Meant for ``lrface/models/``; kept under ``lrface/data/`` while ``lrface/models`` is a DVC
dependency of running stages.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SamePool(nn.Module):
    """Max pooling with TensorFlow's ``padding="same"``: output ``ceil(n / stride)`` per side, padded
    ``total // 2`` before and the rest after (torch's implicit -inf padding, plus ``ceil_mode`` for
    the one extra row/column after)."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def _pads(self, n: int) -> tuple[int, int]:
        total = max((math.ceil(n / self.stride) - 1) * self.stride + self.kernel - n, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = self._pads(x.shape[-2]), self._pads(x.shape[-1])
        odd = bottom > top or right > left
        if min(x.shape[-2:]) < self.kernel or (odd and self.stride < 2):  # ceil_mode would not do
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
            return F.max_pool2d(x, self.kernel, self.stride)
        return F.max_pool2d(x, self.kernel, self.stride, padding=(top, left), ceil_mode=odd)


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k), nn.PReLU(cout)]


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
            *_conv(3, 28, 3), SamePool(3, 2), *_conv(28, 48, 3), nn.MaxPool2d(3, 2), *_conv(48, 64, 2)
        )
        self.fc = nn.Sequential(nn.Linear(576, 128), nn.PReLU(128))
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
            *_conv(3, 32, 3), SamePool(3, 2), *_conv(32, 64, 3), nn.MaxPool2d(3, 2),
            *_conv(64, 64, 3), SamePool(2, 2), *_conv(64, 128, 2),
        )
        self.fc = nn.Sequential(nn.Linear(1152, 256), nn.PReLU(256))
        self.box = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)
        self.cls = nn.Linear(256, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = self.fc(_whc_flatten(self.body(x)))
        return self.box(y), self.landmarks(y), torch.softmax(self.cls(y), dim=1)
