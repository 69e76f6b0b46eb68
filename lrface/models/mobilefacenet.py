"""FRNet: MobileFaceNet for 112x96 aligned faces, 128-d embedding.

Chen et al., "MobileFaceNets": inverted-residual bottlenecks with depthwise 3x3 convs, BN and
PReLU, and a global depthwise conv (GDConv, a 7x6 depthwise kernel) instead of average pooling.
Layer names match the public CASIA-WebFace checkpoint (``conv1``, ``dw_conv1``,
``blocks.<i>.conv.<0..7>``, ``conv2``, ``linear7``, ``linear1``) so it loads with strict keys.

Pixel convention: :meth:`MobileFaceNet.forward` takes RGB faces already normalised as
``(x - 127.5) / 128`` for ``x`` in ``[0, 255]``; :func:`normalize_faces` turns ``[0, 1]`` floats
into that. Input must be 112 high x 96 wide.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lrface.models.fusion import fold_all_batchnorms
from lrface.sizes import FACE_HEIGHT, FACE_WIDTH

EMBEDDING_DIM = 128

# (expansion t, output channels c, repeats n, first stride s)
BOTTLENECK_TABLE: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)


def normalize_faces(x01: torch.Tensor) -> torch.Tensor:
    """Map RGB faces in ``[0, 1]`` to the checkpoint's input range ``(255 x - 127.5) / 128``."""
    return (x01 * 255.0 - 127.5) / 128.0


class ConvBlock(nn.Module):
    """Conv + BN (+ PReLU unless ``linear``); ``dw`` makes the conv depthwise."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int | tuple[int, int],
        stride: int,
        padding: int,
        dw: bool = False,
        linear: bool = False,
    ) -> None:
        super().__init__()
        groups = c_in if dw else 1
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.prelu = None if linear else nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 linear projection; identity if shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, c_out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    """MobileFaceNet on 112x96 faces -> 128-d (un-normalised) embedding."""

    def __init__(self, table: tuple[tuple[int, int, int, int], ...] = BOTTLENECK_TABLE) -> None:
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, dw=True)
        layers: list[nn.Module] = []
        c_in = 64
        for t, c, n, s in table:
            for i in range(n):
                layers.append(Bottleneck(c_in, c, s if i == 0 else 1, t))
                c_in = c
        self.blocks = nn.Sequential(*layers)
        self.conv2 = ConvBlock(c_in, 512, 1, 1, 0)
        # GDConv: a depthwise conv whose kernel covers the whole 7x6 final feature map.
        self.linear7 = ConvBlock(512, 512, (7, 6), 1, 0, dw=True, linear=True)
        self.linear1 = ConvBlock(512, EMBEDDING_DIM, 1, 1, 0, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, FACE_HEIGHT, FACE_WIDTH):
            raise ValueError(
                f"MobileFaceNet expects (N, 3, {FACE_HEIGHT}, {FACE_WIDTH}) input, got {tuple(x.shape)}"
            )
        x = self.dw_conv1(self.conv1(x))
        x = self.conv2(self.blocks(x))
        x = self.linear1(self.linear7(x))
        return x.flatten(1)


class FrozenFRNet(nn.Module):
    """A MobileFaceNet that never trains: eval mode always, no parameter gradients.

    Gradients still flow *through* it to its input, so SRNet can learn from an identity loss,
    but BN statistics and weights never change, whatever ``.train()`` calls its parent makes.
    ``net`` is the published network (its weights and size); ``body``, what runs, is a copy with
    every BN folded into its conv, made once here: load weights by building a new FrozenFRNet,
    never into ``net`` or through ``load_state_dict``.
    """

    def __init__(self, net: MobileFaceNet, precision: str = "fp32") -> None:
        super().__init__()
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"FrozenFRNet precision must be fp32 or bf16, got {precision!r}")
        self.precision = precision  # bf16: autocast inside, fp32 out (lrface.models.precision)
        self.net = net.eval()  # the published network: its weights and size
        for p in self.net.parameters():
            p.requires_grad_(False)
        # what runs: every BN folded into its conv (lrface.models.fusion), in
        # channels-last (its depthwise convs run about 1.5-3x faster on CPU; bench/model_size.py)
        self.body = fold_all_batchnorms(self.net).to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> FrozenFRNet:  # noqa: ARG002 - frozen on purpose
        super().train(False)
        return self

    def forward(self, faces01: torch.Tensor) -> torch.Tensor:
        """Embed RGB faces in ``[0, 1]`` (112x96) -> ``(N, 128)`` fp32 (bf16 inside if so set)."""
        x = normalize_faces(faces01).contiguous(memory_format=torch.channels_last)
        if self.precision == "fp32":
            return self.body(x)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.body(x).float()

    @torch.no_grad()
    def embed_flip(self, faces01: torch.Tensor) -> torch.Tensor:
        """Evaluation feature: ``concat(f(x), f(hflip(x)))`` -> ``(N, 256)``, no grad."""
        return torch.cat([self(faces01), self(torch.flip(faces01, dims=[3]))], dim=1)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity."""
    return F.cosine_similarity(a, b, dim=1)
