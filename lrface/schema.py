"""params.yaml's schema: one typed config class per section, checked when params are loaded.

Every section is a frozen dataclass built by :func:`lrface.typed.from_mapping`, so an unknown key
(a typo) fails with its dotted name (``unknown param train.stpes``) before any work starts, and
a value out of range fails naming its param. The classes live with the code that owns each
section; the small ones that no single module owns live here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from lrface.typed import from_mapping


class _Section:
    """``from_dict`` for a section that only needs its keys checked: ``from_mapping`` under ``SECTION``."""

    SECTION: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Any:
        return from_mapping(cls, dict(d or {}), cls.SECTION)


@dataclass(frozen=True)
class PathsConfig(_Section):
    SECTION: ClassVar[str] = "paths"
    data_root: str = "../shared/data"
    frnet_checkpoint: str = "../shared/weights/mobilefacenet_casia_112x96.ckpt"
    work_dir: str = "data"


@dataclass(frozen=True)
class RayConfig(_Section):
    SECTION: ClassVar[str] = "ray"
    address: str | None = "local"  # empty/local: a loopback-only local Ray; "auto", "ray://head:10001"


@dataclass(frozen=True)
class MlflowConfig(_Section):
    SECTION: ClassVar[str] = "mlflow"
    tracking_uri: str | None = ""
    registry_uri: str | None = ""
    artifact_root: str | None = ""
    experiment: str = "lrface"


@dataclass(frozen=True)
class DataConfig(_Section):
    SECTION: ClassVar[str] = "data"
    rows_per_shard: int = 2000
    split_seed: int = 0
    datasets: dict[str, Any] | None = None  # name -> lrface.data.datasets.DatasetSpec

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DataConfig:
        from lrface.data.datasets import DatasetSpec

        cfg = super().from_dict(d)
        for name, spec in (cfg.datasets or {}).items():
            DatasetSpec.from_mapping(name, spec)
        return cfg


@dataclass(frozen=True)
class OrchestrationConfig(_Section):
    SECTION: ClassVar[str] = "orchestration"
    parallel_trainings: int | str = "auto"
    prefect_api_url: str | None = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> OrchestrationConfig:
        cfg = super().from_dict(d)
        width = cfg.parallel_trainings
        if width != "auto" and not (isinstance(width, int) and width >= 1):
            raise ValueError(f"orchestration.parallel_trainings must be auto or an integer >= 1, got {width!r}")
        return cfg


def sections() -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    """Section name -> the function that builds (and so checks) its typed config."""
    from lrface.data.align import AlignConfig
    from lrface.data.degrade import DegradeConfig
    from lrface.eval.config import EvaluateConfig
    from lrface.inference.config import InferenceConfig
    from lrface.losses import LossConfig
    from lrface.models.precision import FrnetConfig
    from lrface.models.srnet import SRNetConfig
    from lrface.train.config import TrainConfig

    return {
        "paths": PathsConfig.from_dict, "model": SRNetConfig.from_dict, "frnet": FrnetConfig.from_dict,
        "loss": LossConfig.from_dict, "ray": RayConfig.from_dict, "data": DataConfig.from_dict,
        "align": AlignConfig.from_dict, "degrade": DegradeConfig.from_dict, "evaluate": EvaluateConfig.from_dict,
        "orchestration": OrchestrationConfig.from_dict, "inference": InferenceConfig.from_dict,
        "mlflow": MlflowConfig.from_dict, "train": TrainConfig.from_dict,
    }


def typed_section(params: Mapping[str, Any], name: str) -> Any:
    """Section ``name`` of ``params`` as its typed config (the class's defaults where
    params.yaml leaves a key out): the one way code outside a section's owner reads it."""
    return sections()[name](params.get(name) or {})


def _check_sweep_keys(train: Mapping[str, Any]) -> None:
    """DVC's ``foreach`` makes no stage for a numeric key (YAML ``0.5:``), silently: refuse it."""
    sweep = train.get("sweep")
    if isinstance(sweep, Mapping):
        numeric = [k for k in sweep if not isinstance(k, str)]
        if numeric:
            raise ValueError(f"train.sweep keys must be quoted strings (\"{numeric[0]}\": ...), got {numeric[0]!r}: "
                             "DVC makes no train@ stage for a numeric key")


def check_params(params: Mapping[str, Any]) -> None:
    """Build every section present; the first unknown key or bad value raises ``ValueError``."""
    if isinstance(params.get("train"), Mapping):
        _check_sweep_keys(params["train"])
    known = sections()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"unknown params section{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"(params.yaml has: {', '.join(known)})")
    for name, build in known.items():
        if name in params:
            build(params[name] or {})
