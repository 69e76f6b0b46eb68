"""lrface's Ray stays on loopback where it is meant to: its local Ray binds 127.0.0.1 only, and a
head that listens on loopback only is reached at 127.0.0.1. Ray on Linux would swap 127.0.0.1 for
the IP of the host's default route; each check runs in a fresh process (Ray reads its mode at
import) without ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` in its environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.servers import LOOPBACK, RAY_MODE, child_env


def _fresh(code: str, timeout: int = 300) -> object:
    """Run ``code`` in a new Python without Ray's mode set; return what it prints after ``OUT``."""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=child_env(drop=(RAY_MODE,)), capture_output=True, text=True,
                         timeout=timeout)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("OUT")), None)
    assert line, out.stdout[-2000:] + out.stderr[-3000:]
    return json.loads(line.removeprefix("OUT"))


@pytest.fixture(scope="module")
def routed_ip() -> str:
    """Where Ray would put 127.0.0.1 on this host; without a default route there is nothing to test."""
    ip = _fresh("import json, ray; print('OUT' + json.dumps(ray.util.get_node_ip_address()))", timeout=120)
    if ip == "127.0.0.1":
        pytest.skip("this host has no default route: Ray keeps 127.0.0.1 on its own")
    return ip


def test_local_ray_listens_on_loopback_only(routed_ip):
    code = ("import json, os, ray.train; from lrface.ray_env import init_ray; init_ray('local', num_cpus=1); "
            "from tests.servers import descendants, listening; "
            "print('OUT' + json.dumps([ray.nodes()[0]['NodeManagerAddress'], listening(descendants({os.getpid()}))]))")
    node_ip, sockets = _fresh(code)
    assert node_ip == "127.0.0.1", routed_ip
    assert len(sockets) >= 3, sockets  # GCS, the raylet's node manager and object manager at least
    assert all(a.startswith(LOOPBACK) for a in sockets), sockets


def test_a_head_on_loopback_only_is_kept_at_127_0_0_1(routed_ip):
    """A listener on 127.0.0.1 is such a head; ``ray://``, ``auto``, IPv6 and other hosts are left
    to Ray (no connection is tried to a host other than this one)."""
    code = ("import json, socket; from lrface.ray_env import loopback_only_head\n"
            "with socket.create_server(('127.0.0.1', 0)) as head:\n"
            "    p = head.getsockname()[1]\n"
            "    asks = [f'127.0.0.1:{p}', f'localhost:{p}', f'ray://127.0.0.1:{p}', 'auto', f'[::1]:{p}',\n"
            "            f'192.0.2.99:{p}', '127.0.0.1:x']\n"
            "    print('OUT' + json.dumps([loopback_only_head(a) for a in asks]))")
    assert _fresh(code, timeout=120) == [True, True, False, False, False, False, False], routed_ip
