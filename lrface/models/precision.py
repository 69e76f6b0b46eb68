"""FRNet's arithmetic: fp32, or bf16 autocast where that is faster.

The frozen MobileFaceNet dominates the cost of the identity loss, of the HR-feature pass, of
evaluation and of inference. Under ``torch.autocast(dtype=torch.bfloat16)`` its forward pass runs
about 2x faster per face on a CPU with AVX512-BF16 (``bench/model_size.py``), while its outputs
are returned as fp32 so losses, cosines and caches stay fp32. The backward pass to the input (the
identity loss) is *not* faster in bf16 on such a CPU (measured 0.9-1.0x: PyTorch's CPU depthwise
convolution backward has no bf16 fast path), so ``auto`` keeps a CPU's training in fp32 and uses
bf16 there only for forward passes; on a GPU with bf16, both.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lrface.typed import from_mapping

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class FrnetConfig:
    """The ``frnet`` section."""

    precision: str = "auto"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> FrnetConfig:
        cfg = from_mapping(cls, dict(d or {}), "frnet")
        resolve_precision(cfg.precision)  # checks the value
        return cfg


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises bf16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(setting: str, device: torch.device | str = "cpu", backward: bool = False) -> str:
    """``auto`` -> ``bf16`` where it is faster on ``device``: forward passes where the hardware has
    native bf16; with ``backward`` (the identity loss) only on a GPU. Other settings are checked."""
    if setting not in PRECISIONS:
        raise ValueError(f"frnet.precision must be one of {PRECISIONS}, got {setting!r}")
    if setting != "auto":
        return setting
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if dev.type == "cpu" and cpu_has_native_bf16() and not backward else "fp32"
