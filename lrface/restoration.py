"""From a low-resolution face to FRNet's feature: the one way evaluation and inference both take.

A restorer brings ``(N, 3, h, w)`` faces in ``[0, 1]`` to 112x96: :class:`Bicubic` (the baseline)
or :class:`SRNetRestorer` (SRNet x4, then :func:`lrface.losses.to_face_size`, as ISR in the loss).
:func:`flip_features` makes the 256-d feature ``concat(f(R(x)), f(R(hflip(x))))``: the mirrored
face goes through the whole pipeline, restoration included. For the identity (112x96 faces) and
bicubic, which commute with a mirror, that is ``concat(f(R(x)), f(hflip(R(x))))``; SRNet does not
commute with it, so the mirrored probe is super-resolved on its own, a second view of the face
(``bench/flip_view.py`` measures both on LFW).
"""

from __future__ import annotations

from typing import Protocol

import torch

from lrface.losses import to_face_size
from lrface.models.mobilefacenet import FrozenFRNet
from lrface.models.srnet import SRNet
from lrface.models.summary import computation_digest


class Restorer(Protocol):
    name: str
    fingerprint: str  # what its output depends on (part of feature-cache keys)
    mirror_equivariant: bool  # restore(hflip(x)) == hflip(restore(x)): the mirror need not be restored

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` in [0, 1] -> ``(N, 3, 112, 96)``."""


class Bicubic:
    """Bicubic interpolation straight to 112x96: the baseline."""

    name = "bicubic"
    fingerprint = "bicubic"
    mirror_equivariant = True

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        return to_face_size(lr)


class SRNetRestorer:
    """SRNet x4 (channels-last: about 1.4x faster on CPU at 28x24), then resized to 112x96
    (``isr_resize``) like ISR in the loss."""

    mirror_equivariant = False

    def __init__(self, model: SRNet, name: str = "srnet", isr_resize: str = "bicubic",
                 uri: str | None = None) -> None:
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.name = name
        self.uri = uri  # where it came from (checkpoint path or MLflow model URI)
        self.isr_resize = isr_resize
        self.fingerprint = f"{computation_digest(model).hexdigest()[:16]}-{isr_resize}"  # feature-cache key

    @torch.inference_mode()
    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        sr = self.model(lr.contiguous(memory_format=torch.channels_last))
        want = (lr.shape[0], 3, lr.shape[2] * self.model.scale, lr.shape[3] * self.model.scale)
        if tuple(sr.shape) != want:
            raise ValueError(
                f"{self.name}: SR output has shape {tuple(sr.shape)}, expected {want} "
                f"(x{self.model.scale} of the {lr.shape[2]}x{lr.shape[3]} input)"
            )
        return to_face_size(sr, self.isr_resize)


@torch.inference_mode()
def flip_features(frnet: FrozenFRNet, faces: torch.Tensor, restorer: Restorer | None = None) -> torch.Tensor:
    """``(N, 256)``: ``concat(f(R(x)), f(R(hflip(x))))`` for faces ``x`` (112x96 when ``restorer``
    is None). A restorer that commutes with a mirror restores once and the result is flipped."""
    if restorer is None or restorer.mirror_equivariant:
        return frnet.embed_flip(faces if restorer is None else restorer(faces))
    both = restorer(torch.cat([faces, faces.flip(-1)]))
    n = faces.shape[0]
    return torch.cat([frnet(both[:n]), frnet(both[n:])], dim=1)
