"""Shared fixtures. Real data comes from ../shared (override with LRFACE_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LRFACE_SHARED", REPO.parent / "shared")).resolve()
FRNET_CKPT = SHARED / "weights" / "mobilefacenet_casia_112x96.ckpt"
LFW_DIR = SHARED / "data" / "lfw"
CELEBA_DIR = SHARED / "data" / "celeba-wild"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def frnet_ckpt() -> Path:
    if not FRNET_CKPT.is_file():
        pytest.fail(f"shared MobileFaceNet checkpoint missing: {FRNET_CKPT}")
    return FRNET_CKPT


@pytest.fixture(scope="session")
def frnet(frnet_ckpt):
    from lrface.checkpoints import load_frnet

    return load_frnet(frnet_ckpt)


@pytest.fixture(scope="session", autouse=True)
def _stop_ray_at_exit():
    """Tests that start a local Ray share it; it is shut down once, at the end."""
    yield
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
