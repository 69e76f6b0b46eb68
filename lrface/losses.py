"""The joint loss of the method: ``L = L1(SR, MR) + alpha * (1 - cos(f(ISR), f(HR)))``.

* ``MR`` is the HR face downsampled to the SR output's size (``mr_resize`` mode, anti-aliased);
* ``ISR`` is the SR output resized to 112x96 (``isr_resize`` mode) for the frozen FRNet ``f``.

All images are float RGB in ``[0, 1]``. The FRNet must be a :class:`FrozenFRNet`: gradients flow
through it into SRNet, never into its own weights or BN statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lrface.models.mobilefacenet import FrozenFRNet
from lrface.sizes import FACE_HEIGHT, FACE_WIDTH
from lrface.typed import from_mapping

RESIZE_MODES = ("bicubic", "bilinear", "area", "nearest")


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize ``(N, C, H, W)`` to ``size``; bicubic/bilinear are anti-aliased when shrinking."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode in ("bicubic", "bilinear"):
        return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)
    return F.interpolate(x, size=size, mode=mode)


def to_face_size(x: torch.Tensor, mode: str = "bicubic") -> torch.Tensor:
    """An SR output (or any face) to FRNet's 112x96, clamped to [0, 1]: the one way from SR back to
    the face size, shared by evaluation and inference (ISR in the loss is the same resize)."""
    return resize(x, (FACE_HEIGHT, FACE_WIDTH), mode).clamp(0.0, 1.0)


def content_loss(sr: torch.Tensor, hr: torch.Tensor, mr_resize: str = "bicubic") -> torch.Tensor:
    """``L1(SR, MR)`` with ``MR`` = ``hr`` resized to ``sr``'s spatial size."""
    mr = resize(hr, tuple(sr.shape[-2:]), mr_resize)
    return F.l1_loss(sr, mr)


def identity_loss(
    frnet: FrozenFRNet,
    sr: torch.Tensor,
    hr: torch.Tensor | None = None,
    hr_features: torch.Tensor | None = None,
    isr_resize: str = "bicubic",
) -> torch.Tensor:
    """Mean of ``1 - cos(f(ISR), f(HR))``.

    ``hr_features`` (precomputed ``f(HR)``) may replace ``hr``: FRNet is frozen and HR faces are
    fixed, so ``f(HR)`` is a constant per image and need not be recomputed every step.
    """
    if (hr is None) == (hr_features is None):
        raise ValueError("give exactly one of hr or hr_features")
    isr = resize(sr, (FACE_HEIGHT, FACE_WIDTH), isr_resize)
    f_sr = frnet(isr)
    if hr_features is None:
        with torch.no_grad():
            hr_features = frnet(resize(hr, (FACE_HEIGHT, FACE_WIDTH), isr_resize))
    return (1.0 - F.cosine_similarity(f_sr, hr_features.detach(), dim=1)).mean()


@dataclass(frozen=True)
class LossConfig:
    """The ``loss`` section: how MR (HR at the SR size) and ISR (SR at 112x96) are resized."""

    mr_resize: str = "bicubic"
    isr_resize: str = "bicubic"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> LossConfig:
        cfg = from_mapping(cls, dict(d or {}), "loss")
        for key in ("mr_resize", "isr_resize"):
            if getattr(cfg, key) not in RESIZE_MODES:
                raise ValueError(f"loss.{key} must be one of {RESIZE_MODES}, got {getattr(cfg, key)!r}")
        return cfg


@dataclass
class LossParts:
    """The joint loss and its two terms (for logging)."""

    total: torch.Tensor
    image: torch.Tensor
    identity: torch.Tensor


class JointLoss(nn.Module):
    """``L_image + alpha * L_id``; with ``alpha == 0`` FRNet is not run at all."""

    def __init__(
        self,
        frnet: FrozenFRNet | None,
        alpha: float,
        mr_resize: str = "bicubic",
        isr_resize: str = "bicubic",
    ) -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if alpha > 0 and frnet is None:
            raise ValueError("alpha > 0 needs a FRNet")
        if frnet is not None and not isinstance(frnet, FrozenFRNet):
            raise TypeError("frnet must be a FrozenFRNet (eval mode, no parameter gradients)")
        self.frnet = frnet
        self.alpha = float(alpha)
        self.mr_resize = mr_resize
        self.isr_resize = isr_resize

    def forward(
        self, sr: torch.Tensor, hr: torch.Tensor, hr_features: torch.Tensor | None = None
    ) -> LossParts:
        image = content_loss(sr, hr, self.mr_resize)
        if self.alpha == 0:
            ident = torch.zeros((), device=sr.device)
            return LossParts(image, image, ident)
        assert self.frnet is not None
        if hr_features is None:
            ident = identity_loss(self.frnet, sr, hr=hr, isr_resize=self.isr_resize)
        else:
            ident = identity_loss(self.frnet, sr, hr_features=hr_features, isr_resize=self.isr_resize)
        return LossParts(image + self.alpha * ident, image, ident)
