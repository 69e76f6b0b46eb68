"""Real services for the off-one-machine test, all on 127.0.0.1 and stopped by the PID we started:
an S3-API server (moto's server mode), PostgreSQL (Debian's package, run as the ``postgres``
user), an MLflow server on PostgreSQL with ``--serve-artifacts`` into S3, and a Ray cluster of a
head plus a worker node whose processes cannot read the paths we hide from it (its own mount
namespace with an empty tmpfs over each)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tests.servers import BIN, RAY_MODE, child_env, free_port, serve, stop

S3_KEYS = {"AWS_ACCESS_KEY_ID": "lrface-test", "AWS_SECRET_ACCESS_KEY": "lrface-test-secret",
           "AWS_DEFAULT_REGION": "us-east-1"}
# Multi-node on one host, loopback only. Every node's IP is 127.0.0.1, so Ray binds 127.0.0.1:
# the head and drivers with Ray's single-host setting (a loopback address stays loopback), the
# worker node through tests/ray_node.py (``ray start --address`` needs the multi-node setting,
# which would put the node on the default route's IP, listening on every interface).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", RAY_MODE: "0"}
_WORKER_NODE_ENV = {**RAY_ENV, RAY_MODE: "1"}


def wait_tcp(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before port {port} answered")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"port {port} not open after {timeout} s")


@contextmanager
def s3_server(log_dir: Path, buckets: tuple[str, ...], **server_env: str):
    """moto's S3 server; yields the env a client needs (endpoint + dummy keys)."""
    port = free_port()
    cmd = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with serve(cmd, child_env(**server_env), log_dir / "moto.log", f"http://127.0.0.1:{port}/moto-api/data.json"):
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", **S3_KEYS}
        import boto3

        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
        for b in buckets:
            s3.create_bucket(Bucket=b)
        yield env


def s3_keys(env: dict, bucket: str, prefix: str = "") -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: .ci/install installs Debian's postgresql")
    return found[-1]


@contextmanager
def postgres(log_dir: Path, database: str = "mlflow"):
    """A throw-away PostgreSQL cluster as user ``postgres`` on 127.0.0.1; yields its SQLAlchemy URI."""
    base = Path(tempfile.mkdtemp(prefix="lrface-pg-"))  # /tmp: the postgres user can reach it
    os.chmod(base, 0o755)
    shutil.chown(base, "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run([*as_pg, _pg_bin("initdb"), "-D", str(base / "data"), "-A", "trust", "-U", "postgres",
                        "--no-sync"], check=True, capture_output=True, timeout=120)
        port = free_port()
        with open(log_dir / "postgres.log", "w") as log:
            proc = subprocess.Popen([*as_pg, _pg_bin("postgres"), "-D", str(base / "data"), "-k", str(base),
                                     "-h", "127.0.0.1", "-p", str(port)],
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_tcp(port, proc)
                for _ in range(50):  # the port opens before the server accepts connections
                    made = subprocess.run([*as_pg, _pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port),
                                           database], capture_output=True, text=True)
                    if made.returncode == 0:
                        break
                    time.sleep(0.2)
                else:
                    raise RuntimeError(f"createdb failed: {made.stderr}")
                yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"
            finally:
                stop(proc)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def mlflow_on_postgres(backend_uri: str, artifacts: str, s3_env: dict, log_dir: Path):
    """``mlflow server`` with a PostgreSQL backend, proxying artifacts to S3 (``--serve-artifacts``)."""
    port = free_port()
    cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", backend_uri, "--serve-artifacts", "--artifacts-destination", artifacts]
    env = child_env(**s3_env, MLFLOW_S3_ENDPOINT_URL=s3_env["AWS_ENDPOINT_URL"])
    with serve(cmd, env, log_dir / "mlflow-server.log", f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}"


def _ray_ports() -> list[str]:
    names = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
             "--runtime-env-agent-port", "--node-manager-port", "--object-manager-port")
    return [f"{n}={free_port()}" for n in names]


class _NodeExited(RuntimeError):
    pass


@contextmanager
def ray_cluster(log_dir: Path, hidden: list[Path], worker_cpus: int = 2, head_cpus: int = 1, attempts: int = 3):
    """A Ray head and a worker node in its own mount namespace where every path in ``hidden`` is
    an empty tmpfs. Yields the address, node ids and the PIDs we started (the head's first,
    the worker node's last).

    Ray gives a joining node a fixed 30 s to register with the GCS; on 2 busy cores (the other
    test worker training beside us) that can pass, and ``ray start`` exits. The worker node is
    then started again, up to ``attempts`` times, each attempt's output appended to its log."""
    port = free_port()
    env = child_env(**RAY_ENV)
    common = ["--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    head_cmd = [str(BIN / "ray"), "start", "--head", f"--port={port}", f"--num-cpus={head_cpus}", "--include-dashboard=false",
                f"--ray-client-server-port={free_port()}", *common, *_ray_ports()]
    mounts = " && ".join(f"mount -t tmpfs -o size=1m lrface-hidden {p}" for p in hidden)
    procs: list[subprocess.Popen] = []
    try:
        with open(log_dir / "ray-head.log", "w") as hl, open(log_dir / "ray-worker.log", "w") as wl:
            procs.append(subprocess.Popen(head_cmd, env=env, stdout=hl, stderr=subprocess.STDOUT,
                                          start_new_session=True))
            wait_tcp(port, procs[0], timeout=120)
            for attempt in range(1, attempts + 1):
                worker = " ".join([sys.executable, str(Path(__file__).with_name("ray_node.py")), "start",
                                   f"--address=127.0.0.1:{port}",
                                   f"--num-cpus={worker_cpus}", *common, *_ray_ports()])
                worker_cmd = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                              f"{mounts} && exec {worker}"]
                wl.write(f"--- worker node, attempt {attempt}/{attempts}\n")
                wl.flush()
                procs.append(subprocess.Popen(worker_cmd, env=child_env(**_WORKER_NODE_ENV), stdout=wl,
                                              stderr=subprocess.STDOUT, start_new_session=True))
                try:
                    nodes = _wait_nodes(f"127.0.0.1:{port}", 2, head=procs[0], worker=procs[-1])
                    break
                except _NodeExited:
                    stop(procs.pop(), leftovers=True)
                    if attempt == attempts:
                        raise
                    _wait_gone(f"127.0.0.1:{port}", 2)  # a raylet that did register must be dead first
            yield {"address": f"127.0.0.1:{port}", "pids": [p.pid for p in procs], **nodes}
    finally:
        for p in reversed(procs):
            stop(p, grace=5)  # a Ray node drains for up to 30 s on SIGTERM; nothing here needs it


_PROBE = """
import json, os, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
alive = [n for n in ray.nodes() if n["Alive"]]
out = {"n": len(alive)}
if 0 < int(sys.argv[2]) <= len(alive):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On
    head = next(n["NodeID"] for n in alive if "node:__internal_head__" in n["Resources"])
    worker = next(n["NodeID"] for n in alive if n["NodeID"] != head)
    @ray.remote(num_cpus=0)
    def sees(paths):
        return {p: os.access(p, os.R_OK) and bool(os.listdir(p)) if os.path.isdir(p) else os.access(p, os.R_OK)
                for p in paths}
    paths = json.loads(sys.argv[3])
    out.update(head=head, worker=worker,
               head_sees=ray.get(sees.options(scheduling_strategy=On(head, soft=False)).remote(paths)),
               worker_sees=ray.get(sees.options(scheduling_strategy=On(worker, soft=False)).remote(paths)))
print("PROBE" + json.dumps(out))
"""


def probe(address: str, want_nodes: int, paths: list[str] | None = None, timeout: float = 120) -> dict:
    """Ask the cluster (from a separate driver process) for its nodes and, once it has
    ``want_nodes`` of them, what each one can read (``want_nodes`` 0: only count them)."""
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE, address, str(want_nodes), json.dumps(paths or [])],
                             env=child_env(**RAY_ENV), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"cluster probe did not answer in {timeout:.0f} s") from e
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("PROBE")), None)
    if line is None:
        raise RuntimeError(f"cluster probe failed: {out.stdout[-2000:]}{out.stderr[-2000:]}")
    return json.loads(line.removeprefix("PROBE"))


def _count_until(address: str, want: int, done, timeout: float, what: str, check=lambda: None) -> dict:
    """Probe (``want`` as in :func:`probe`) until ``done(result)``; ``check`` runs before each
    probe and raises to stop.
    A probe that fails (the GCS slow to answer on 2 busy cores) is retried until ``timeout``;
    the last failure is in the error raised then."""
    t0, last = time.time(), ""
    while (left := timeout - (time.time() - t0)) > 0:
        check()
        try:
            got = probe(address, want, timeout=min(120, max(left, 10)))
        except RuntimeError as e:
            last = f"; last probe: {e}"
        else:
            if done(got):
                return got
            last = f"; last probe saw {got['n']} node(s)"
        time.sleep(1)
    raise TimeoutError(f"Ray cluster at {address}: {what} not seen in {timeout:.0f} s{last}")


def _wait_gone(address: str, n: int, timeout: float = 90) -> None:
    """Wait until the cluster has fewer than ``n`` live nodes (the GCS marks a killed one dead
    after its heartbeat times out), so a new node, not a dying one, is what the next wait counts."""
    _count_until(address, 0, lambda got: got["n"] < n, timeout, f"fewer than {n} nodes")


def _wait_nodes(address: str, n: int, head: subprocess.Popen, worker: subprocess.Popen,
                timeout: float = 120) -> dict:
    def alive() -> None:
        if head.poll() is not None:
            raise RuntimeError(f"the Ray head exited ({head.returncode}); see ray-head.log")
        if worker.poll() is not None:
            raise _NodeExited(f"the Ray worker node exited ({worker.returncode}); see ray-worker.log")

    got = _count_until(address, n, lambda got: got["n"] >= n, timeout, f"{n} nodes", alive)
    return {"head": got["head"], "worker": got["worker"]}
