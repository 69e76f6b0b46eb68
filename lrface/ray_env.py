"""Starting or joining Ray: local by default, a cluster by configuration (``ray.address``).

A local Ray binds 127.0.0.1 only, with usage stats, auth tokens and the dashboard off.
"""

from __future__ import annotations

import os
from typing import Any

# Every Ray this process talks to: no usage stats; Train polls its workers often enough.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}
# Only for the private local Ray: single node on 127.0.0.1, no auth token written to ~/.ray.
# (A cluster keeps its own auth mode and node addresses.)
LOOPBACK_ENV = {**QUIET_ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


_connected: tuple[str, str | None] | None = None  # (requested address, GCS address) of init_ray's last connection


def _gcs_address() -> str | None:
    """The GCS this process's Ray talks to (None where the runtime context does not say: Ray Client)."""
    import ray

    try:
        return ray.get_runtime_context().gcs_address
    except Exception:  # noqa: BLE001 -- only used to tell whether the connection is still ours
        return None


def init_ray(address: str | None = None, num_cpus: int | None = None, **kwargs: Any) -> None:
    """Connect to ``address`` (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``) or start a
    loopback-only local Ray when it is empty/``"local"``. No-op if this function already connected
    the process to the same address; a different one raises ``RuntimeError`` naming both (a job
    asked to run on a cluster must not run quietly on the local Ray instead). A Ray that something
    else connected (``ray.init`` outside lrface, a Ray worker), or one whose GCS address the runtime
    context does not give (Ray Client, ``ray://``), is kept as it is. Addresses compare as written:
    ``auto`` and ``host:6379`` of the same cluster count as different.

    ``address`` is ``ray.address`` of the merged params (``-S`` > ``LRFACE_RAY_ADDRESS`` >
    params.yaml): this function reads no environment of its own."""
    import ray

    global _connected
    address = address or "local"  # ray.address, already merged with LRFACE_RAY_ADDRESS and -S
    if ray.is_initialized():
        now = _gcs_address()  # None (Ray Client, a dead connection): cannot tell, so not ours
        ours = _connected is not None and now is not None and _connected[1] == now
        if ours and _connected[0] != address:
            raise RuntimeError(f"Ray in this process is already connected to {_connected[0]!r}, not to the "
                               f"requested ray.address {address!r}; call ray.shutdown() first to switch")
        too_small = num_cpus is not None and ray.cluster_resources().get("CPU", 0) < num_cpus
        if not (ours and too_small and address == "local"):
            return
        ray.shutdown()  # our own local Ray, started smaller than this job needs: restart it
    for k, v in (LOOPBACK_ENV if address == "local" else QUIET_ENV).items():
        os.environ.setdefault(k, v)
    _connected = None
    if address == "local":
        ray.init(
            address="local",
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            num_cpus=num_cpus,
            configure_logging=False,
            log_to_driver=True,
            **kwargs,
        )
    else:
        check_reachable(address)
        ray.init(address=address, **kwargs)
    _connected = (address, _gcs_address())


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the address, when a ``host:port`` / ``ray://host:port`` cluster
    does not answer (``ray.init`` alone would keep retrying for a minute)."""
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"ray.address {address!r}: expected local, auto, host:port or ray://host:port")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ConnectionError(f"Ray cluster at {address} does not answer: {e}") from e
