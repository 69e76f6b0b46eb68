"""The datasets of ``params.yaml`` (``data.datasets``): their spec, inputs and stage folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrface.data.shards import ShardSet
from lrface.data.sources import ImageRecord, lfw_pair_records, read_lfw_pairs
from lrface.data.splits import training_records
from lrface.typed import from_mapping

if TYPE_CHECKING:  # a type only: config's check imports this module (through schema)
    from lrface.config import Params


@dataclass(frozen=True)
class DatasetSpec:
    """One entry of ``data.datasets`` in params.yaml."""

    name: str
    role: str  # "test": the images of a pairs file; "train": identity folders minus test identities
    sources: list[dict[str, Any]]
    pairs: str | None = None
    folds: list[int] | None = None
    test_pairs: str | None = None
    val_fraction: float = 0.0
    limit: int | None = None
    drop_duplicates: bool = False
    landmarks_file: str | None = None
    fallback_landmarks: str | None = None
    reference_landmarks: str | None = None

    @classmethod
    def from_params(cls, params: Params, name: str) -> DatasetSpec:
        datasets = params.section("data")["datasets"]
        if name not in datasets:
            raise ValueError(f"unknown dataset {name!r}; params.yaml data.datasets has {sorted(datasets)}")
        return cls.from_mapping(name, datasets[name])

    @classmethod
    def from_mapping(cls, name: str, d: dict[str, Any] | None) -> DatasetSpec:
        """``data.datasets.<name>``, checked: unknown keys and bad values fail naming the param."""
        spec = from_mapping(cls, {"name": name, **(d or {})}, f"data.datasets.{name}")
        if spec.role not in ("test", "train"):
            raise ValueError(f"data.datasets.{name}.role must be 'test' or 'train', got {spec.role!r}")
        if spec.folds is not None and len(set(spec.folds)) < 2:
            raise ValueError(f"data.datasets.{name}.folds = {spec.folds}: k-fold accuracy picks each fold's "
                             "threshold on the others, so list at least 2 folds (e.g. [0, 1]) or null for all")
        return spec


def data_path(params: Params, rel: str | None) -> Path | None:
    if rel is None:
        return None
    p = Path(rel)
    return p if p.is_absolute() else params.path("data_root") / p


def dataset_records(params: Params, spec: DatasetSpec) -> list[ImageRecord]:
    """The inputs of a dataset, in a stable order."""
    if spec.role == "test":
        if len(spec.sources) != 1 or spec.pairs is None:
            raise ValueError(f"test dataset {spec.name!r} needs one source and a pairs file")
        pairs = read_lfw_pairs(data_path(params, spec.pairs))
        if spec.folds is not None:
            pairs = [p for p in pairs if p.fold in set(spec.folds)]
        records = lfw_pair_records(pairs, data_path(params, spec.sources[0]["root"]), spec.sources[0]["name"])
        return records[: spec.limit] if spec.limit else records
    sources = [(s["name"], data_path(params, s["root"])) for s in spec.sources]
    return training_records(sources, data_path(params, spec.test_pairs), spec.limit)


def dataset_dir(params: Params, name: str) -> Path:
    return params.path("work_dir") / name


def open_shards(params: Params, dataset: str) -> ShardSet:
    """The dataset's shards; with a remote work dir, pulled into the local mirror first and
    read by Ray Data from the bucket."""
    ws = params.workspace()
    rel = f"{dataset}/shards"
    if ws.remote:
        ws.pull(rel, complete="manifest.json")
    return ShardSet(ws.local / rel, remote=ws.uri_of(rel) if ws.remote else None)
