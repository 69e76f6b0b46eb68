"""``params.yaml``: the one place every tunable lives, plus environment overrides for paths.

Relative paths in ``params.yaml`` are resolved against the directory of that file, so the
pipeline works from any working directory. Path overrides by environment variable:

* ``LRFACE_DATA_ROOT``  -> ``paths.data_root`` (folder holding ``lfw/`` and ``celeba-wild/``)
* ``LRFACE_FRNET``      -> ``paths.frnet_checkpoint``
* ``LRFACE_WORK_DIR``   -> ``paths.work_dir`` (where stages write shards, models, reports)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = Path("params.yaml")
ENV_OVERRIDES = {
    "data_root": "LRFACE_DATA_ROOT",
    "frnet_checkpoint": "LRFACE_FRNET",
    "work_dir": "LRFACE_WORK_DIR",
}


class Params(dict):
    """The parsed ``params.yaml`` with the file's location, for resolving relative paths."""

    def __init__(self, data: Mapping[str, Any], base_dir: Path) -> None:
        super().__init__(data)
        self.base_dir = base_dir

    def section(self, name: str) -> dict[str, Any]:
        if name not in self:
            raise KeyError(f"params.yaml has no section {name!r} (has: {sorted(self)})")
        return dict(self[name])

    def path(self, key: str) -> Path:
        """``paths.<key>``, overridden by its environment variable, made absolute."""
        env = ENV_OVERRIDES.get(key)
        raw = os.environ.get(env) if env else None
        if not raw:
            paths = self.get("paths", {})
            if key not in paths:
                raise KeyError(f"params.yaml has no paths.{key}")
            raw = str(paths[key])
        p = Path(os.path.expanduser(raw))
        return p if p.is_absolute() else (self.base_dir / p).resolve()


def load_params(path: str | Path = DEFAULT_PARAMS, overrides: Mapping[str, Any] | None = None) -> Params:
    """Read ``params.yaml``; ``overrides`` maps dotted keys (``train.alpha``) to values."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"params file not found: {p.resolve()}")
    with open(p) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping at top level")
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    return Params(data, p.resolve().parent)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values), e.g. for MLflow params."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
