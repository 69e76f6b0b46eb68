"""Model size: parameter count and bytes on disk."""

from __future__ import annotations

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
