"""Restoration methods under test: LR probe -> 112x96 face for FRNet.

``hr`` (no degradation) is handled by the protocol; here are ``bicubic`` and SRNet models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from lrface.losses import to_face_size
from lrface.models.srnet import SRNet
from lrface.models.summary import weights_digest


class Restorer(Protocol):
    name: str

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` in [0, 1] -> ``(N, 3, 112, 96)``."""


class Bicubic:
    """Bicubic interpolation straight to 112x96: the baseline."""

    name = "bicubic"
    fingerprint = "bicubic"

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        return to_face_size(lr)


class SRNetRestorer:
    """SRNet x4, then resized to 112x96 (``isr_resize``) like ISR in the loss."""

    def __init__(self, model: SRNet, name: str = "srnet", isr_resize: str = "bicubic",
                 uri: str | None = None) -> None:
        self.model = model.eval()
        self.name = name
        self.uri = uri  # where it came from (checkpoint path or MLflow model URI)
        self.isr_resize = isr_resize
        self.fingerprint = f"{weights_digest(model).hexdigest()[:16]}-{isr_resize}"  # feature-cache key

    @torch.inference_mode()
    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        sr = self.model(lr)
        want = (lr.shape[0], 3, lr.shape[2] * self.model.scale, lr.shape[3] * self.model.scale)
        if tuple(sr.shape) != want:
            raise ValueError(
                f"{self.name}: SR output has shape {tuple(sr.shape)}, expected {want} "
                f"(x{self.model.scale} of the {lr.shape[2]}x{lr.shape[3]} input)"
            )
        return to_face_size(sr, self.isr_resize)


def load_restorer(spec: str, isr_resize: str = "bicubic") -> Restorer:
    """``bicubic``, a path to an SRNet checkpoint, or an MLflow model URI (``models:/...``)."""
    if spec == "bicubic":
        return Bicubic()
    if spec.startswith(("models:/", "runs:/")):
        from lrface.tracking import describe_model, load_srnet_uri

        return SRNetRestorer(load_srnet_uri(spec), name=describe_model(spec), isr_resize=isr_resize, uri=spec)
    from lrface.checkpoints import load_srnet
    from lrface.locations import checkpoint_label

    path = Path(spec)
    return SRNetRestorer(load_srnet(path), name=checkpoint_label(path), isr_resize=isr_resize, uri=str(path))
