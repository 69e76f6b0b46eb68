"""Starting or joining Ray: local by default, a cluster by configuration (``ray.address``).

A local Ray binds 127.0.0.1 only, with usage stats, auth tokens and the dashboard off; a
cluster address on 127.0.0.1 whose head listens on loopback only is reached there. Every
job lrface starts runs :func:`quiet_worker_logs` in each of its worker processes.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

# Every Ray this process talks to: no usage stats; Train polls its workers often enough.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}
# Only for the private local Ray: single node on 127.0.0.1, no auth token written to ~/.ray.
# (A cluster keeps its own auth mode and node addresses.)
LOOPBACK_ENV = {**QUIET_ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


# Ray Train's PlacementGroupCleaner (a detached actor per training) asks the State API every
# second whether the training's controller still lives. The Ray dashboard serves that API; where
# it is off (lrface's local Ray, infra/local/start.sh) every ask fails with this warning: about
# 3,000 lines in a 50-minute training.
CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"
STATE_API_DOWN = "Failed to query Ray Train Controller actor state"


class _FirstStateApiWarning(logging.Filter):
    """Lets the cleaner's first "State API unavailable" warning through, saying what it means;
    drops its repeats. Every other record passes."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(STATE_API_DOWN):
            return True
        if self.seen:
            return False
        self.seen = True
        record.msg = (f"{message} (no Ray dashboard, which serves the State API: the placement group of a "
                      "training whose controller dies is not removed by this watcher; repeats not logged)")
        record.args = ()
        return True


def quiet_worker_logs() -> None:
    """Worker setup hook of every Ray job lrface starts (``runtime_env``'s
    ``worker_process_setup_hook``): the cleaner's repeated warning, once."""
    log = logging.getLogger(CLEANER_LOGGER)
    if not any(isinstance(f, _FirstStateApiWarning) for f in log.filters):
        log.addFilter(_FirstStateApiWarning())


def _runtime_env(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs``' runtime_env with :func:`quiet_worker_logs` as its setup hook (a hook given there wins)."""
    env = dict(kwargs.pop("runtime_env", None) or {})
    env.setdefault("worker_process_setup_hook", f"{__name__}.quiet_worker_logs")
    return env


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
    runtime_env = _runtime_env(kwargs)
    if address == "local":
        with _loopback_kept():
            ray.init(
                address="local",
                _node_ip_address="127.0.0.1",
                include_dashboard=False,
                num_cpus=num_cpus,
                configure_logging=False,
                log_to_driver=True,
                runtime_env=runtime_env,
                **kwargs,
            )
    else:
        check_reachable(address)
        with _loopback_kept() if loopback_only_head(address) else nullcontext():
            ray.init(address=address, runtime_env=runtime_env, **kwargs)
    _connected = (address, _gcs_address())


@contextmanager
def _loopback_kept() -> Iterator[None]:
    """Ray's single-host mode for the ``ray.init`` inside: 127.0.0.1 stays 127.0.0.1.

    Otherwise Ray on Linux swaps a loopback address, the driver's own and a new node's, for the
    IP of the host's default route: a local Ray then listens on every interface, and a driver
    cannot reach a head that listens on loopback only. Ray reads the mode
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``) once, when it is imported, so it is set on Ray's
    constants here; once connected, Ray asks the node for its IP instead. (A Ray that starts
    outside :func:`init_ray`, e.g. by a bare ``ray.remote`` call, gets Ray's default.)
    """
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def loopback_only_head(address: str) -> bool:
    """Whether ``address`` is ``127.0.0.1:port`` or ``localhost:port`` and nothing answers on
    that port at this host's routed IP: a head on loopback only (``infra/local/start.sh``), which
    Ray must be left to reach as given. ``auto`` and ``ray://`` (the head's Ray Client server
    connects for us) are not looked into; a ``::1`` head is not kept."""
    import ray

    host, _, port = address.rpartition(":")
    if "://" in address or host not in ("127.0.0.1", "localhost") or not port.isdigit():
        return False
    routed = ray.util.get_node_ip_address()
    if routed == "127.0.0.1":  # no default route: Ray keeps loopback anyway
        return False
    try:
        with socket.create_connection((routed, int(port)), timeout=2):
            return False
    except OSError:
        return True


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the address, when a ``host:port`` / ``ray://host:port`` cluster
    does not answer (``ray.init`` alone would keep retrying for a minute)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"ray.address {address!r}: expected local, auto, host:port or ray://host:port")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):  # [::1]:6379
            pass
    except OSError as e:
        raise ConnectionError(f"Ray cluster at {address} does not answer: {e}") from e
