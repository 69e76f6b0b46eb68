"""The ``inference`` section of params.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lrface.protocols import DECISION_FARS, PROTOCOLS
from lrface.typed import from_mapping


@dataclass(frozen=True)
class InferenceConfig:
    """The ``inference`` section of params.yaml."""

    sr_below_px: float = 40.0  # aligned-crop width below which SRNet is used
    min_face_px: float = 6.0  # below this (a 7x6 face) nothing is guessed
    min_score: float = 0.9
    min_face_size: int = 20  # MTCNN's smallest face at the detection scale
    detect_upscales: tuple[int, ...] = (1, 2, 4, 8)  # tried in turn until a face is found
    detect_max_pixels: int = 12_000_000  # largest upscaled frame handed to MTCNN
    max_pixels: int = 40_000_000  # larger inputs are refused (decompression bombs)
    min_side: int = 8
    far: float = 1e-3  # the false accept rate the decision threshold is taken at
    protocol: str = "clean"  # whose thresholds: clean (bicubic probes) or surveillance (camera chain)
    threshold: float | None = None  # a fixed threshold instead (overrides the evaluation's)
    batch_size: int = 32
    isr_resize: str = "bicubic"
    srnet: str | None = "models:/lrface-srnet@champion"  # or a checkpoint path; null = bicubic

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> InferenceConfig:
        cfg = from_mapping(cls, d, "inference", tuples=("detect_upscales",))
        from lrface.losses import RESIZE_MODES

        if cfg.isr_resize not in RESIZE_MODES:
            raise ValueError(f"inference.isr_resize must be one of {RESIZE_MODES}, got {cfg.isr_resize!r}")
        if cfg.protocol not in PROTOCOLS:
            raise ValueError(f"inference.protocol must be one of {PROTOCOLS}, got {cfg.protocol!r}")
        if not any(abs(cfg.far - far) < 1e-12 for far in DECISION_FARS):
            raise ValueError(f"inference.far must be one of the rates evaluation publishes a threshold at, "
                             f"{list(DECISION_FARS)}; got {cfg.far}")
        if not cfg.detect_upscales or any(int(u) < 1 for u in cfg.detect_upscales):
            raise ValueError(f"inference.detect_upscales must be integers >= 1, got {list(cfg.detect_upscales)}")
        if cfg.min_face_px <= 0 or cfg.sr_below_px < cfg.min_face_px:
            raise ValueError("inference.min_face_px must be > 0 and at most inference.sr_below_px")
        return cfg
