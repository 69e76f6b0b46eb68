"""The ``train`` section of params.yaml as a typed config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lrface.locations import run_name
from lrface.typed import from_mapping

FACTOR_SIZES = {4: "28x24", 8: "14x12", 16: "7x6"}


@dataclass(frozen=True)
class TrainConfig:
    alpha: float = 0.5
    steps: int = 1000
    batch_size: int = 32  # global: split evenly across workers
    lr: float = 1e-3
    lr_step: int = 1000  # StepLR step size, in optimiser steps
    lr_gamma: float = 0.5
    factors: tuple[int, ...] = (4, 8, 16)
    flip: bool = True
    seed: int = 0
    checkpoint_every: int = 100
    validate_every: int = 250
    log_every: int = 10
    val_max_faces: int = 256
    num_workers: int = 2
    use_gpu: bool = False
    threads_per_worker: int = 1
    max_failures: int = 2
    num_to_keep: int = 2
    dataset: str = "train"
    name: str | None = None
    storage_path: str = "ray_results"  # under paths.work_dir unless absolute
    register: bool = True
    placement_strategy: str = "PACK"  # Ray placement group: PACK, SPREAD (one worker per node), ...
    hr_feature_cache: bool = True  # f(HR) computed once per image and flip (FRNet is frozen)
    alphas: tuple[float, ...] = field(default=(0.0, 0.5))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        cfg = from_mapping(cls, d, "train", tuples=("factors", "alphas"))
        bad = [f for f in cfg.factors if f not in FACTOR_SIZES]
        if bad:
            raise ValueError(f"train.factors must be among {sorted(FACTOR_SIZES)}, got {bad}")
        if cfg.batch_size % cfg.num_workers:
            raise ValueError(f"train.batch_size {cfg.batch_size} must divide by num_workers {cfg.num_workers}")
        if cfg.placement_strategy not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
            raise ValueError(f"train.placement_strategy must be PACK, SPREAD, STRICT_PACK or STRICT_SPREAD, "
                             f"got {cfg.placement_strategy!r}")
        if cfg.steps < 1 or cfg.checkpoint_every < 1 or cfg.validate_every < 1:
            raise ValueError("train.steps, checkpoint_every and validate_every must be >= 1")
        return cfg

    @property
    def run_name(self) -> str:
        return run_name(self.name, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_config(params: Mapping[str, Any], alpha: float | None = None, name: str | None = None) -> TrainConfig:
    """The ``train`` section, with ``alpha`` / ``name`` set when given (a sweep member, a run name)."""
    cfg = TrainConfig.from_dict(dict(params["train"]))
    if alpha is not None:
        cfg = replace(cfg, alpha=float(alpha))
    if name is not None:
        cfg = replace(cfg, name=name)
    return cfg
