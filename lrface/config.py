"""``params.yaml``: the one place every tunable lives, and the one precedence rule over it.

Precedence, for every entry point (CLI commands, Prefect flows, DVC stages)::

    -S key=value on the command line  >  environment  >  params.yaml  >  built-in defaults

The environment variables that override a param (:data:`ENV_OVERRIDES`): ``LRFACE_DATA_ROOT``,
``LRFACE_FRNET``, ``LRFACE_WORK_DIR``, ``LRFACE_RAY_ADDRESS``, ``MLFLOW_TRACKING_URI``,
``MLFLOW_REGISTRY_URI`` and ``PREFECT_API_URL``. :func:`load_params` applies them once, so every
consumer reads the merged mapping and :attr:`Params.sources` says where each overridden value
came from. Relative paths resolve against the directory of ``params.yaml``; ``paths.work_dir``
may be an ``s3://bucket/prefix`` URI (see :mod:`lrface.storage`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = Path("params.yaml")
# dotted param <- environment variable (an empty variable does not override)
ENV_OVERRIDES: dict[str, str] = {
    "paths.data_root": "LRFACE_DATA_ROOT",
    "paths.frnet_checkpoint": "LRFACE_FRNET",
    "paths.work_dir": "LRFACE_WORK_DIR",
    "ray.address": "LRFACE_RAY_ADDRESS",
    "mlflow.tracking_uri": "MLFLOW_TRACKING_URI",
    "mlflow.registry_uri": "MLFLOW_REGISTRY_URI",
    "orchestration.prefect_api_url": "PREFECT_API_URL",
}

# Values that lrface itself (or a library it configured, e.g. MLflow's set_tracking_uri) wrote into
# the process environment: they are not the user's override, and a later load must ignore them.
_process_written: dict[str, set[str]] = {}


def mark_process_env(name: str, value: str) -> None:
    """Record that this process (not the user) put ``value`` into ``os.environ[name]``."""
    _process_written.setdefault(name, set()).add(value)


def env_override(name: str) -> str | None:
    """The user's value of environment variable ``name``, or None (unset, empty, or ours)."""
    value = os.environ.get(name)
    return value if value and value not in _process_written.get(name, set()) else None


class Params(dict):
    """The merged parameters with the file's location (for relative paths) and their sources."""

    def __init__(self, data: Mapping[str, Any], base_dir: Path,
                 sources: Mapping[str, str] | None = None) -> None:
        super().__init__(data)
        self.base_dir = base_dir
        self.sources: dict[str, str] = dict(sources or {})

    def section(self, name: str) -> dict[str, Any]:
        if name not in self:
            raise KeyError(f"params.yaml has no section {name!r} (has: {sorted(self)})")
        return dict(self[name])

    def get_dotted(self, dotted: str, default: Any = None) -> Any:
        node: Any = self
        for key in dotted.split("."):
            if not isinstance(node, Mapping) or key not in node:
                return default
            node = node[key]
        return node

    def source(self, dotted: str) -> str:
        """Where ``dotted`` came from: ``-S``, ``env NAME``, ``params.yaml`` or ``default``."""
        if dotted in self.sources:
            return self.sources[dotted]
        return "params.yaml" if self.get_dotted(dotted) not in (None, "") else "default"

    def raw_path(self, key: str) -> str:
        """``paths.<key>`` as written (a URI stays a URI), made absolute when it is a local path."""
        raw = self.get_dotted(f"paths.{key}")
        if raw in (None, ""):
            raise KeyError(f"params.yaml has no paths.{key}")
        raw = str(raw).removeprefix("file://")
        if "://" in raw:
            return raw
        p = Path(os.path.expanduser(raw))
        return str(p if p.is_absolute() else (self.base_dir / p).resolve())

    def path(self, key: str) -> Path:
        """``paths.<key>`` as a local directory or file. For a remote ``work_dir`` this is the
        local mirror (:class:`lrface.storage.Workspace`); other paths must be local."""
        raw = self.raw_path(key)
        if "://" in raw:
            if key != "work_dir":
                raise ValueError(f"paths.{key} = {raw}: only paths.work_dir may be a URI")
            return self.workspace().local
        return Path(raw)

    def workspace(self):
        """The work directory (local, or ``s3://`` with a local mirror): :mod:`lrface.storage`."""
        from lrface.storage import Workspace

        return Workspace.of(self.raw_path("work_dir"))

    def describe(self, keys: tuple[str, ...] = tuple(ENV_OVERRIDES)) -> str:
        """One line naming each key's value and source, e.g. for a command's first log line."""
        parts = []
        for k in keys:
            v = self.get_dotted(k)
            if v not in (None, ""):
                parts.append(f"{k}={redact(str(v))} ({self.source(k)})")
        return "; ".join(parts)


def redact(value: str) -> str:
    """Hide a password in ``scheme://user:password@host`` URIs."""
    if "://" in value and "@" in value.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = value.split("://", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else value
    return value


def load_params(path: str | Path = DEFAULT_PARAMS, overrides: Mapping[str, Any] | None = None) -> Params:
    """Read ``params.yaml``, apply environment overrides, then ``overrides`` (``-S``: dotted keys),
    then check every section against its typed config (:mod:`lrface.schema`): a typo or a value
    out of range fails here, naming the dotted param, before any work starts."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"params file not found: {p.resolve()}")
    with open(p) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping at top level")
    sources: dict[str, str] = {}
    for dotted, name in ENV_OVERRIDES.items():
        value = env_override(name)
        if value:
            set_dotted(data, dotted, value)
            sources[dotted] = f"env {name}"
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
        sources[dotted] = "-S"
    from lrface.schema import check_params  # imports every section's owner: not at module import

    try:
        check_params(data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{p}: {e}") from e
    return Params(data, p.resolve().parent, sources)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
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
