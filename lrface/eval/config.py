"""The ``evaluate`` section of params.yaml as a typed config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lrface.protocols import PROTOCOLS
from lrface.sizes import parse_size
from lrface.typed import from_mapping


@dataclass(frozen=True)
class EvaluateConfig:
    dataset: str = "lfw"
    sizes: tuple[str, ...] = ("7x6", "14x12", "16x16", "28x24")
    methods: tuple[str, ...] = ("trained",)  # besides hr and bicubic
    batch_size: int = 32
    protocols: tuple[str, ...] = ("clean", "surveillance")  # probes: the shards' / the camera chain's
    both_lr: bool = True  # also both faces at each size: thresholds for LR-vs-LR verification
    grid_pairs: int = 6  # 0: no SR grid
    timing_batches: tuple[int, ...] = (1, 64)
    promote_by: str | None = "acc_14x12"  # then point `champion` at the best version; None: never
    out_dir: str = "reports"
    metrics_file: str = "metrics.json"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> EvaluateConfig:
        cfg = from_mapping(cls, dict(d or {}), "evaluate", tuples=("sizes", "methods", "timing_batches", "protocols"))
        for s in cfg.sizes:
            parse_size(s)
        bad = [p for p in cfg.protocols if p not in PROTOCOLS]
        if bad or not cfg.protocols:
            raise ValueError(f"evaluate.protocols must be a non-empty list of {PROTOCOLS}, got {list(cfg.protocols)}")
        if cfg.grid_pairs < 0:
            raise ValueError(f"evaluate.grid_pairs must be >= 0 (0: no SR grid), got {cfg.grid_pairs}")
        return cfg
