"""``ray start`` for a second node on this host that stays on loopback: ``python tests/ray_node.py
start --address=127.0.0.1:PORT --node-ip-address=127.0.0.1 ...``.

Ray binds its servers to 127.0.0.1 only when a node's IP is 127.0.0.1. Multi-node mode
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1``, which ``ray start --address`` requires) rewrites a
loopback ``--node-ip-address`` and ``--address`` to the IP of the host's default route, and the
node then listens on every interface. This entry point keeps loopback addresses as given,
and is otherwise ``ray start``. It replaces a private function of Ray (2.60, as pinned); if Ray
moves it, the cluster test's loopback check fails.
"""

from __future__ import annotations

import sys

from ray._private import services
from ray.scripts.scripts import main


def _as_given(host: str) -> str:
    if not host:
        raise ValueError(f"Malformed host: {host!r}")
    return host


if __name__ == "__main__":
    services.resolve_ip_for_localhost = _as_given
    sys.exit(main())
