"""Real servers for tests, on 127.0.0.1 only, telemetry off, stopped by the PID we started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

BIN = Path(sys.executable).parent
QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0", "DVC_NO_ANALYTICS": "1",
}

# MLflow writes the URIs (and experiment) this process set up into these; a child working elsewhere must not inherit them.
INHERITED_MLFLOW = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")


# Ray's multi-node switch, read at import: "0" keeps 127.0.0.1 as given (see tests/ray_node.py).
RAY_MODE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def child_env(drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """The environment for a subprocess: this one's, telemetry off, without MLflow URIs set
    in-process, with ``extra`` set and the names in ``drop`` left out."""
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_MLFLOW}
    return {k: v for k, v in {**env, **QUIET_ENV, **extra}.items() if k not in drop}


# How ``ss`` prints a socket bound to loopback.
LOOPBACK = ("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:")


def descendants(roots: set[int]) -> set[int]:
    """``roots`` and every process below them (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += children.get(p, [])
    return out


def listening(pids: set[int]) -> list[str]:
    """The ``address:port`` of every listening TCP socket that one of ``pids`` holds."""
    res = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    addrs = []
    for line in res.splitlines():
        owners = {int(m) for m in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            addrs.append(line.split()[3])
    return addrs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} not healthy after {timeout} s")


def stop(proc: subprocess.Popen, grace: float = 20, leftovers: bool = False) -> None:
    """SIGTERM the process group we started (by its PID), after ``grace`` seconds SIGKILL what is
    left of it. A leader that had already exited is only waited for, unless ``leftovers``: then
    its group is killed too (a failed ``ray start`` leaves its raylet; call it right away, before
    the group's id could be reused)."""
    alive = proc.poll() is None
    if alive:
        os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    if alive or leftovers:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextmanager
def serve(cmd: list[str], env: dict, log_path: Path, health: str):
    """Run a server command in its own process group until the block ends; yield when healthy."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(health, proc)
            yield proc
        finally:
            stop(proc)


@contextmanager
def prefect_server(home: Path):
    port = free_port()
    env = child_env(PREFECT_HOME=str(home), PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",  # the UI's own calls
                    drop=("PREFECT_API_URL",))
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with serve(cmd, env, home.parent / "prefect-server.log", f"http://127.0.0.1:{port}/api/health"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def mlflow_server(backend_uri: str, artifacts: Path, log_dir: Path):
    port = free_port()
    cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", backend_uri, "--default-artifact-root", str(artifacts)]
    with serve(cmd, child_env(), log_dir / "mlflow-server.log", f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}"


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def _chromium() -> str:
    chromium = next((c for c in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(c).exists()), None)
    if chromium is None:
        raise RuntimeError("Chromium is not installed: .ci/install installs Debian's chromium")
    return chromium


def screenshot(url: str, out: Path, tmp: Path, size: str = "1440,900", wait_ms: int = 15000) -> Path:
    """A headless Chromium screenshot of ``url`` (a loopback page) saved to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp}", f"--window-size={size}",
                    f"--virtual-time-budget={wait_ms}", f"--screenshot={out}", url],
                   check=True, capture_output=True, timeout=120)
    return out


def rendered_dom(url: str, tmp: Path, expect: str = "",
                 waits_ms: tuple[int, ...] = (15000, 30000, 60000)) -> tuple[str, int]:
    """The page's DOM after its scripts ran (what the screenshot shows, as text), and the script
    budget that rendered it: rendered again with a longer budget while ``expect`` is not in it
    (a busy machine renders slowly). Take the screenshot with that budget."""
    dom, wait = "", waits_ms[0]
    for wait in waits_ms:
        dom = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp}", "--window-size=1440,900",
                              f"--virtual-time-budget={wait}", "--dump-dom", url],
                             check=True, capture_output=True, text=True, timeout=180).stdout
        if expect in dom:
            break
    return dom, wait
