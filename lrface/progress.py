"""Progress bars that stay readable in logs: frequent redraws on a terminal, a line every
``log_interval`` seconds otherwise (DVC stages, CI, Ray workers)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", disable: bool = False, log_interval: float = 30.0) -> Any:
    """A ``tqdm`` bar; on a non-terminal stderr it refreshes every ``log_interval`` seconds."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable,
                mininterval=0.5 if tty else log_interval, ascii=not tty, dynamic_ncols=tty)
