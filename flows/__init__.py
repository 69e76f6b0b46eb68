"""Prefect flows: thin orchestration over ``lrface`` functions (the library never imports this)."""

import os

import lrface  # noqa: F401 - sets the telemetry switches off before Prefect reads its settings

# lrface's progress lines go to its logger, and Prefect ships that logger to the flow run's logs.
os.environ.setdefault("LRFACE_PROGRESS", "log")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "lrface")
# A line logged outside any flow run (a library thread) still reaches the console, without a warning.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# The ephemeral Prefect server (no PREFECT_API_URL) may start slowly on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
