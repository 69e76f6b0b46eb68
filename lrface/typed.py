"""Typed config sections: a frozen dataclass built from a ``params.yaml`` mapping, where an unknown
key (a typo) fails loudly and list values become the tuples the dataclass declares."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_mapping(cls: type[T], d: dict[str, Any] | None, section: str, tuples: tuple[str, ...] = ()) -> T:
    """``cls(**d)`` after rejecting unknown keys and turning the ``tuples`` keys into tuples."""
    d = dict(d or {})
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(d) - known
    if unknown:
        names = ", ".join(f"{section}.{k}" for k in sorted(unknown))
        raise ValueError(f"unknown param{'s' if len(unknown) > 1 else ''} {names} "
                         f"({section} has: {', '.join(sorted(known))})")
    for k in tuples:
        if k in d and d[k] is not None:
            if isinstance(d[k], (str, bytes)) or not hasattr(d[k], "__iter__"):
                raise ValueError(f"{section}.{k} must be a list, got {d[k]!r}")
            d[k] = tuple(d[k])
    return cls(**d)


def is_number(v: Any) -> bool:
    """An int or float param value (a YAML ``true`` is a bool, not a number)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)
