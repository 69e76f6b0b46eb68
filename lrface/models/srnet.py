"""SRNet: wide-activation (WDSR-style) x4 face super-resolution.

Pixel convention: input and output are float RGB tensors ``(N, 3, H, W)`` with values in
``[0, 1]``. Internally the input is centred by subtracting ``rgb_mean`` and scaled by
``1 / rgb_std``; the summed branch output is mapped back the same way, so the output is in the
input's range (it is not clamped: clamp for display, not for the loss).

Architecture (Yu et al., "Wide Activation for Efficient and Accurate Image Super-Resolution"):

* body branch: 3x3 head conv -> ``n_blocks`` wide-activation residual blocks -> 3x3 conv to
  ``3 * scale**2`` channels -> PixelShuffle(scale);
* skip branch: 5x5 conv on the input to ``3 * scale**2`` channels -> PixelShuffle(scale);
* the two branches are summed. Every conv is weight-normalised; there is no batch norm.

The network is fully convolutional: any ``H x W`` (7x6, 14x12, 16x16, 28x24, ...) and any batch
size give ``(N, 3, scale*H, scale*W)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from lrface.typed import from_mapping

Variant = Literal["wdsr_a", "wdsr_b"]


@dataclass(frozen=True)
class SRNetConfig:
    """Hyper-parameters of SRNet (the ``model`` section of ``params.yaml``)."""

    variant: Variant = "wdsr_a"
    n_feats: int = 32
    expansion: int = 4
    n_blocks: int = 8
    low_rank_ratio: float = 0.8
    res_scale: float = 1.0
    scale: int = 4
    rgb_mean: tuple[float, float, float] = field(default=(0.5, 0.5, 0.5))
    rgb_std: float = 0.5

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SRNetConfig:
        """Build from a mapping, rejecting unknown keys (typos in params.yaml fail loudly)."""
        cfg = from_mapping(cls, d, "model", tuples=("rgb_mean",))
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rgb_mean"] = list(self.rgb_mean)
        return d

    def validate(self) -> None:
        if self.variant not in ("wdsr_a", "wdsr_b"):
            raise ValueError(f"SRNet variant must be 'wdsr_a' or 'wdsr_b', got {self.variant!r}")
        for name in ("n_feats", "expansion", "n_blocks", "scale"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SRNet {name} must be >= 1, got {getattr(self, name)}")
        if len(self.rgb_mean) != 3:
            raise ValueError("rgb_mean needs three values")


def wn_conv(c_in: int, c_out: int, k: int) -> nn.Module:
    """A weight-normalised conv (``w = g * v / ||v||``) with 'same' padding."""
    return weight_norm(nn.Conv2d(c_in, c_out, k, padding=k // 2))


class WideBlockA(nn.Module):
    """WDSR-A residual block: 3x3 expand -> ReLU -> 3x3 reduce, plus identity."""

    def __init__(self, n_feats: int, expansion: int, res_scale: float) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(
            wn_conv(n_feats, n_feats * expansion, 3),
            nn.ReLU(inplace=True),
            wn_conv(n_feats * expansion, n_feats, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class WideBlockB(nn.Module):
    """WDSR-B residual block: 1x1 expand -> ReLU -> 1x1 low-rank -> 3x3 back, plus identity."""

    def __init__(self, n_feats: int, expansion: int, low_rank_ratio: float, res_scale: float):
        super().__init__()
        self.res_scale = res_scale
        low = max(1, int(round(n_feats * low_rank_ratio)))
        self.body = nn.Sequential(
            wn_conv(n_feats, n_feats * expansion, 1),
            nn.ReLU(inplace=True),
            wn_conv(n_feats * expansion, low, 1),
            wn_conv(low, n_feats, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class SRNet(nn.Module):
    """Two-branch wide-activation x``scale`` super-resolution network (see module docstring)."""

    def __init__(self, config: SRNetConfig | None = None) -> None:
        super().__init__()
        cfg = config or SRNetConfig()
        cfg.validate()
        self.config = cfg
        out_ch = 3 * cfg.scale**2
        if cfg.variant == "wdsr_a":
            blocks = [WideBlockA(cfg.n_feats, cfg.expansion, cfg.res_scale) for _ in range(cfg.n_blocks)]
        else:
            blocks = [
                WideBlockB(cfg.n_feats, cfg.expansion, cfg.low_rank_ratio, cfg.res_scale)
                for _ in range(cfg.n_blocks)
            ]
        self.head = wn_conv(3, cfg.n_feats, 3)
        self.body = nn.Sequential(*blocks)
        self.tail = nn.Sequential(wn_conv(cfg.n_feats, out_ch, 3), nn.PixelShuffle(cfg.scale))
        self.skip = nn.Sequential(wn_conv(3, out_ch, 5), nn.PixelShuffle(cfg.scale))
        self.register_buffer("rgb_mean", torch.tensor(cfg.rgb_mean).view(1, 3, 1, 1), persistent=False)

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"SRNet expects (N, 3, H, W) RGB input, got shape {tuple(lr.shape)}")
        x = (lr - self.rgb_mean) / self.config.rgb_std
        y = self.tail(self.body(self.head(x))) + self.skip(x)
        return y * self.config.rgb_std + self.rgb_mean
