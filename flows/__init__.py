"""Prefect flows: thin orchestration over ``lrface`` functions (the library never imports this)."""
