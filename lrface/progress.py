"""Progress bars that stay readable in logs: frequent redraws on a terminal, a line every
``log_interval`` seconds otherwise (DVC stages, CI, Ray workers). With ``LRFACE_PROGRESS=log``
(the Prefect flows set it) the lines go to the ``lrface.progress`` logger instead of stderr, so an
orchestrator that collects that logger (Prefect's UI) shows them."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

LOGGER = logging.getLogger("lrface.progress")


class _LogLines:
    """A file-like sink for tqdm that logs each refreshed bar as one line."""

    def write(self, text: str) -> int:
        for line in text.replace("\r", "\n").split("\n"):
            if line.strip():
                LOGGER.info(line.strip())
        return len(text)

    def flush(self) -> None:
        pass


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", disable: bool = False, log_interval: float = 30.0) -> Any:
    """A ``tqdm`` bar; on a non-terminal stderr it refreshes every ``log_interval`` seconds."""
    from tqdm import tqdm

    to_log = os.environ.get("LRFACE_PROGRESS") == "log"
    if to_log:
        if LOGGER.level == logging.NOTSET:
            LOGGER.setLevel(logging.INFO)
        # tqdm's monitor thread would log from outside the caller's context (e.g. a Prefect flow
        # run's, which its log handler needs): only the caller's own thread writes lines
        tqdm.monitor_interval = 0
    tty = sys.stderr.isatty() and not to_log
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable,
                mininterval=0.5 if tty else log_interval, ascii=not tty, dynamic_ncols=tty,
                file=_LogLines() if to_log else None)
