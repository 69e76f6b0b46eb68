"""Prefect flows: thin orchestration over ``lrface`` functions (the library never imports this)."""

import lrface  # noqa: F401 - sets the telemetry switches off before Prefect reads its settings
