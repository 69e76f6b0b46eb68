"""FRNet's arithmetic: fp32, or bf16 autocast where the hardware computes bf16 natively.

The frozen MobileFaceNet dominates the cost of the identity loss, of the HR-feature pass, of
evaluation and of inference. Under ``torch.autocast(dtype=torch.bfloat16)`` its convolutions run
in bf16 (about 1.7x faster per face on a CPU with AVX512-BF16, see ``bench/train_throughput.py``),
while its outputs are returned as fp32 so losses, cosines and caches stay fp32.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises bf16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(setting: str, device: torch.device | str = "cpu") -> str:
    """``auto`` -> ``bf16`` where ``device`` has native bf16, else ``fp32``; others are checked."""
    if setting not in PRECISIONS:
        raise ValueError(f"frnet.precision must be one of {PRECISIONS}, got {setting!r}")
    if setting != "auto":
        return setting
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if dev.type == "cpu" and cpu_has_native_bf16() else "fp32"
