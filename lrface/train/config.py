"""The ``train`` section of params.yaml as a typed config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lrface.locations import DEFAULT_SWEEP, INIT_MODEL, run_name, sweep_of
from lrface.sizes import FACTOR_SIZES
from lrface.typed import from_mapping, is_number

DEGRADATIONS = ("bicubic", "surveillance", "mixed")
LR_SCHEDULES = ("step", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    alpha: float = 0.5
    steps: int = 1000
    batch_size: int = 32  # global: split evenly across workers
    lr: float = 1e-3
    lr_step: int = 1000  # StepLR step size, in optimiser steps
    lr_gamma: float = 0.5
    lr_schedule: str = "step"  # step: StepLR (lr_step, lr_gamma); cosine: from lr down to 0 at steps
    factors: tuple[int, ...] = (4, 8, 16)
    factor_weights: tuple[float, ...] | None = None  # relative odds of each factor per batch; None: equal
    flip: bool = True
    # bicubic: the shards' clean LR faces at train.factors; surveillance: the camera chain
    # (degrade.surveillance) drawn per sample and step from the HR face, at a scale from its range;
    # mixed: each step one or the other, the camera chain with odds camera_share
    degradation: str = "bicubic"
    camera_share: float = 0.5  # mixed only: the share of steps whose batch goes through the camera chain
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
    # The sweep (DVC stages train@<alpha>): alpha -> the model its SRNet starts from
    sweep: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SWEEP))
    init_from: str | None = None  # start of a training outside the sweep (members: the sweep's); None: seeded
    # WiSE-FT: the share of the change from the start weights the final model keeps (start +
    # wise_ft * (trained - start), per parameter); 1: the trained weights. Warm starts only
    wise_ft: float = 1.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["sweep"] = sweep_of(d)
        d.pop("alphas", None)
        cfg = from_mapping(cls, d, "train", tuples=("factors", "factor_weights"))
        for key in cfg.sweep:
            try:
                canonical = f"{float(key):g}"
            except ValueError:
                raise ValueError(f"train.sweep key {key!r} is not an alpha") from None
            if key != canonical:  # the model folder is srnet-alpha<%g>: DVC must expect that name
                raise ValueError(f"train.sweep key {key!r}: write it as {canonical!r} "
                                 f"(its model is srnet-alpha{canonical})")
        sweep_order(cfg.sweep)  # a cycle fails here
        bad = [f for f in cfg.factors if f not in FACTOR_SIZES]
        if bad:
            raise ValueError(f"train.factors must be among {sorted(FACTOR_SIZES)}, got {bad}")
        weights = cfg.factor_weights
        numbers = weights is None or all(is_number(w) for w in weights)
        if not numbers or (weights is not None and (len(weights) != len(cfg.factors) or min(weights) <= 0)):
            raise ValueError(f"train.factor_weights must be {len(cfg.factors)} positive numbers, one per "
                             f"train.factors entry {list(cfg.factors)}, got {list(weights)}")
        if cfg.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"train.lr_schedule must be one of {LR_SCHEDULES}, got {cfg.lr_schedule!r}")
        if cfg.degradation not in DEGRADATIONS:
            raise ValueError(f"train.degradation must be one of {DEGRADATIONS}, got {cfg.degradation!r}")
        share = cfg.camera_share
        if not is_number(share) or not 0.0 <= share <= 1.0:
            raise ValueError(f"train.camera_share must be a number within [0, 1], got {share!r}")
        if cfg.batch_size % cfg.num_workers:
            raise ValueError(f"train.batch_size {cfg.batch_size} must divide by num_workers {cfg.num_workers}")
        if cfg.placement_strategy not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
            raise ValueError(f"train.placement_strategy must be PACK, SPREAD, STRICT_PACK or STRICT_SPREAD, "
                             f"got {cfg.placement_strategy!r}")
        if not is_number(cfg.wise_ft) or not 0.0 < cfg.wise_ft <= 1.0:
            raise ValueError(f"train.wise_ft must be a number within (0, 1], got {cfg.wise_ft!r}")
        if cfg.seed < 0:
            raise ValueError(f"train.seed must be >= 0, got {cfg.seed}")
        if cfg.steps < 1 or cfg.checkpoint_every < 1 or cfg.validate_every < 1:
            raise ValueError("train.steps, checkpoint_every and validate_every must be >= 1")
        return cfg

    @property
    def run_name(self) -> str:
        return run_name(self.name, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep_order(sweep: dict[str, str]) -> list[list[str]]:
    """The sweep's alphas in waves: each wave starts only from models of earlier waves (or from
    ``srnet-init`` / models outside the sweep); a cycle is an error."""
    model_of = {run_name(None, float(k)): k for k in sweep}
    waves: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(sweep):
        wave = [k for k in sweep if k not in done and (sweep[k] not in model_of or model_of[sweep[k]] in done)]
        if not wave:
            left = {k: sweep[k] for k in sweep if k not in done}
            raise ValueError(f"train.sweep: models start from each other in a cycle: {left}")
        waves.append(wave)
        done.update(wave)
    return waves


def train_config(params: Mapping[str, Any], alpha: float | None = None, name: str | None = None) -> TrainConfig:
    """The ``train`` section, with ``alpha`` / ``name`` set when given (a sweep member, a run name);
    a member of ``train.sweep`` starts from the model the sweep names for it. ``wise_ft`` applies
    to trainings warm-started from a trained model; one from a seeded start keeps its weights (1)."""
    cfg = TrainConfig.from_dict(dict(params["train"]))
    if alpha is not None:
        cfg = replace(cfg, alpha=float(alpha))
    key = f"{cfg.alpha:g}"
    if key in cfg.sweep:  # a sweep member starts where the sweep says (DVC tracks train.sweep)
        cfg = replace(cfg, init_from=cfg.sweep[key])
    if name is not None:
        cfg = replace(cfg, name=name)
    if cfg.init_from in (None, INIT_MODEL):  # a seeded start: nothing trained to blend back toward
        cfg = replace(cfg, wise_ft=1.0)
    return cfg


def camera_share(cfg: TrainConfig) -> float:
    """The share of steps trained on the camera chain: 0 (bicubic), 1 (surveillance) or
    ``train.camera_share`` (mixed)."""
    return {"bicubic": 0.0, "surveillance": 1.0}.get(cfg.degradation, float(cfg.camera_share))
