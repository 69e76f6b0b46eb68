"""Model size (parameter count, bytes on disk) and a digest of the weights."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSize:
    params: int
    bytes_on_disk: int

    @property
    def megabytes(self) -> float:
        return self.bytes_on_disk / 1e6

    def __str__(self) -> str:
        return f"{self.params:,} params, {self.megabytes:.2f} MB"


def model_size(model: nn.Module) -> ModelSize:
    """Parameters (trainable or not) and the size of ``torch.save(model.state_dict())``."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return ModelSize(sum(p.numel() for p in model.parameters()), buf.tell())


def weights_digest(*models: nn.Module | None) -> hashlib._Hash:
    """sha256 over the state dicts (names and values) of ``models``; ``None`` adds nothing.
    Returned open, so callers can add their own settings before ``hexdigest()``."""
    h = hashlib.sha256()
    for m in models:
        for k, v in sorted((m.state_dict() if m is not None else {}).items()):
            h.update(k.encode())
            h.update(v.detach().cpu().numpy().tobytes())
    return h
