"""Model size (parameter count, bytes on disk) and digests of the weights and settings."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, is_dataclass

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


def computation_digest(*models: nn.Module | None) -> hashlib._Hash:
    """:func:`weights_digest`, then each model's ``config`` dataclass where it has one (settings no
    weight holds, e.g. SRNet's ``res_scale``): the key of what the models compute. Returned open."""
    h = weights_digest(*models)
    for m in models:
        cfg = getattr(m, "config", None)
        if is_dataclass(cfg) and not isinstance(cfg, type):
            h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    return h
