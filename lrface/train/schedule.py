"""The learning-rate schedule of an SRNet training (``train.lr_schedule``)."""

from __future__ import annotations

import torch

from lrface.train.config import TrainConfig


def lr_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """``step``: lr times ``lr_gamma`` every ``lr_step`` steps; ``cosine``: half a cosine from ``lr``
    down to 0 at ``steps`` (no step size to tune, and the last steps run at a small lr)."""
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps)
    if cfg.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    raise ValueError(f"train.lr_schedule {cfg.lr_schedule!r} has no scheduler (TrainConfig.from_dict checks it)")
