"""infra/: every YAML parses and agrees with pyproject.toml; nothing is published beyond loopback or
served without authentication; every path of the KubeRay pods comes from one ConfigMap; no secret
is committed; builds and syncs leave data and environments behind; the local start/stop scripts
bring up a Ray head, a Prefect server and an MLflow server on 127.0.0.1 and stop exactly those."""

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.conftest import REPO
from tests.servers import LOOPBACK, RAY_MODE, child_env, descendants, free_port, listening

_PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PINS = {  # runtime and dev pins (the MLflow server's PostgreSQL driver is a dev pin)
    re.split(r"[\[=<>]", d)[0]: d.split("==")[1].split()[0]
    for d in [*_PROJECT["dependencies"], *_PROJECT["optional-dependencies"]["dev"]] if "==" in d
}
PYTHON = "3.11"


def _yaml_files() -> list[Path]:
    return sorted([*(REPO / "infra").rglob("*.yaml"), REPO / "prefect.yaml", REPO / "dvc.yaml", REPO / "params.yaml"])


def _all_docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_parses(path):
    assert _all_docs(path), f"{path} is empty"


def _images(node) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "image" and isinstance(v, str)] + \
               [i for v in node.values() for i in _images(v)]
    if isinstance(node, list):
        return [i for v in node for i in _images(v)]
    return []


def test_ray_definitions_match_the_pins():
    ray_v = PINS["ray"]
    launcher = _all_docs(REPO / "infra/ray/cluster.yaml")[0]
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type", "setup_commands"):
        assert key in launcher
    assert any(t["resources"].get("GPU") for t in launcher["available_node_types"].values())
    assert launcher["docker"]["image"] == f"rayproject/ray:{ray_v}-py{PYTHON.replace('.', '')}-gpu"
    assert "torch==" + PINS["torch"] in " ".join(launcher["setup_commands"])
    dockerfile = (REPO / "infra/ray/Dockerfile").read_text()
    assert f"FROM rayproject/ray:{ray_v}-py311-gpu" in dockerfile and f"torch=={PINS['torch']}" in dockerfile
    for name, kind in (("raycluster.yaml", "RayCluster"), ("rayjob.yaml", "RayJob")):
        doc = _all_docs(REPO / "infra/ray" / name)[0]
        assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == kind
        spec = doc["spec"] if kind == "RayCluster" else doc["spec"]["rayClusterSpec"]
        assert spec["rayVersion"] == ray_v
        assert "headGroupSpec" in spec and spec["workerGroupSpecs"]
        gpu = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert gpu.get("nvidia.com/gpu")
        for image in _images(doc):
            assert f"ray{ray_v}-py311" in image, image
    job = _all_docs(REPO / "infra/ray/rayjob.yaml")[0]
    assert "python -m flows" in job["spec"]["entrypoint"] and "train" in job["spec"]["entrypoint"]


def test_server_definitions_match_the_pins():
    mlflow = _all_docs(REPO / "infra/mlflow/compose.yaml")[0]
    assert {"postgres", "seaweedfs", "mlflow"} <= set(mlflow["services"])
    svc = mlflow["services"]["mlflow"]
    assert svc["build"] == "." and svc["image"] == f"lrface-mlflow:{PINS['mlflow']}"
    dockerfile = (REPO / "infra/mlflow/Dockerfile").read_text()
    for pin in (f"mlflow[auth]=={PINS['mlflow']}", f"psycopg2-binary=={PINS['psycopg2-binary']}",
                f"boto3=={PINS['boto3']}"):
        assert pin in dockerfile, pin
    assert svc["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert "s3://" in svc["command"]
    # the S3 store is pinned, and is not MinIO (no longer published as community images)
    store = mlflow["services"]["seaweedfs"]["image"]
    assert re.fullmatch(r"chrislusf/seaweedfs:\d+\.\d+", store), store
    assert not any("minio" in i for i in _images(mlflow))
    prefect = _all_docs(REPO / "infra/prefect/compose.yaml")[0]
    assert {"postgres", "server", "worker"} <= set(prefect["services"])
    assert prefect["services"]["server"]["image"] == f"prefecthq/prefect:{PINS['prefect']}-python{PYTHON}"
    assert "postgresql+asyncpg://" in prefect["services"]["server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]


def test_prefect_yaml_deploys_real_flows():
    import importlib

    conf = _all_docs(REPO / "prefect.yaml")[0]
    assert conf["prefect-version"] == PINS["prefect"]
    for d in conf["deployments"]:
        path, func = d["entrypoint"].split(":")
        mod = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(mod, func)
        assert hasattr(flow, "deploy") and d["work_pool"]["name"] == "lrface"
        assert set(d.get("parameters", {})) <= set(flow.parameters.properties)


# --- exposure and authentication -----------------------------------------------------------------

COMPOSE_FILES = sorted((REPO / "infra").rglob("compose.yaml"))
LOOPBACK_BIND = ("127.0.0.1:", "${LRFACE_BIND:-127.0.0.1}:")
REQUIRED_VAR = re.compile(r"^\$\{(\w+):\?[^}]*\}$")            # ${NAME:?message}: no default
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH_STRING|ACCESS_KEY", re.I)


def _k8s_docs() -> list[dict]:
    """Every Kubernetes object under infra/ (compose files and the Ray launcher config excluded)."""
    return [d for path in sorted((REPO / "infra").rglob("*.yaml")) for d in _all_docs(path)
            if isinstance(d, dict) and "apiVersion" in d and "kind" in d]


def _containers(node) -> list[dict]:
    """Every container (and init container) spec anywhere below ``node``."""
    if isinstance(node, dict):
        own = [c for key in ("containers", "initContainers") for c in node.get(key) or []
               if isinstance(c, dict) and "image" in c]
        return own + [c for v in node.values() for c in _containers(v)]
    if isinstance(node, list):
        return [c for v in node for c in _containers(v)]
    return []


def _ray_cluster_specs() -> dict[str, dict]:
    docs = {n: _all_docs(REPO / "infra/ray" / n)[0] for n in ("raycluster.yaml", "rayjob.yaml")}
    return {"raycluster.yaml": docs["raycluster.yaml"]["spec"],
            "rayjob.yaml": docs["rayjob.yaml"]["spec"]["rayClusterSpec"]}


def _ray_pod_specs(spec: dict) -> list[tuple[str, dict]]:
    return [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec["workerGroupSpecs"]]


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_compose_publishes_on_loopback_only(path):
    services = _all_docs(path)[0]["services"]
    published = 0
    for name, svc in services.items():
        assert svc.get("network_mode") != "host", name
        for port in svc.get("ports", []):
            published += 1
            if isinstance(port, dict):          # long syntax
                assert port.get("host_ip") in ("127.0.0.1", "${LRFACE_BIND:-127.0.0.1}"), (name, port)
            else:
                assert str(port).startswith(LOOPBACK_BIND), (name, port)
    assert published, f"{path} publishes nothing: the check would be vacuous"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_compose_secrets_come_from_the_environment(path):
    """Every credential is ``${VAR:?...}`` (compose refuses to start without it) or passed through."""
    services = _all_docs(path)[0]["services"]
    for name, svc in services.items():
        env = svc.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use the mapping form of environment"
        for key, value in env.items():
            if SECRET_NAME.search(key):
                assert value is None or REQUIRED_VAR.match(str(value)), (name, key, value)
            for var in re.findall(r"\$\{(\w+)([^}]*)\}", str(value or "")):
                if SECRET_NAME.search(var[0]):   # a secret inside a URL, e.g. the DB password
                    assert var[1].startswith(":?"), (name, key, var)


def test_prefect_api_requires_the_auth_string():
    import prefect.settings

    services = _all_docs(REPO / "infra/prefect/compose.yaml")[0]["services"]
    server = services["server"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"]
    client = services["worker"]["environment"]["PREFECT_API_AUTH_STRING"]
    assert REQUIRED_VAR.match(server) and REQUIRED_VAR.match(client)
    assert REQUIRED_VAR.match(server).group(1) == REQUIRED_VAR.match(client).group(1)
    # they are real Prefect 3 settings (a typo would silently leave the API open)
    assert hasattr(prefect.settings, "PREFECT_SERVER_API_AUTH_STRING")
    assert hasattr(prefect.settings, "PREFECT_API_AUTH_STRING")
    assert "PREFECT_API_KEY" not in (REPO / "infra/prefect/compose.yaml").read_text()


def _mlflow_server_args() -> dict[str, list[str]]:
    """``mlflow server`` arguments of the compose service and of the k8s Deployment."""
    compose = _all_docs(REPO / "infra/mlflow/compose.yaml")[0]["services"]["mlflow"]
    k8s = next(c for d in _k8s_docs() if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow"
               for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == "mlflow")
    out = {}
    for where, argv in (("compose", shlex.split(compose["command"])), ("k8s", k8s["command"])):
        assert argv[:2] == ["mlflow", "server"], where
        flat = []
        for a in argv[2:]:
            flat += a.split("=", 1) if a.startswith("--") and "=" in a else [a]
        out[where] = flat
    return out


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_mlflow_server_is_authenticated_and_checks_hosts():
    from mlflow.server.security_utils import is_allowed_host_header

    paths = _configmap("lrface-paths")["data"]
    in_cluster = urlparse(paths["MLFLOW_TRACKING_URI"]).netloc          # mlflow.lrface.svc:5000
    for where, args in _mlflow_server_args().items():
        assert _flag(args, "--app-name") == "basic-auth", where
        assert "--serve-artifacts" in args and _flag(args, "--artifacts-destination").startswith("s3://"), where
        hosts = _flag(args, "--allowed-hosts").split(",")
        assert "*" not in hosts, where
        for host in (in_cluster, "mlflow:5000", "127.0.0.1:5000", "localhost:5000"):
            assert is_allowed_host_header(hosts, host), (where, host)
        assert not is_allowed_host_header(hosts, "evil.example.com:5000"), where
    # the admin password only from the environment: none in the committed auth config
    ini = (REPO / "infra/mlflow/basic_auth.ini").read_text()
    assert not re.search(r"^\s*admin_password\s*=", ini, re.M)
    assert "password1234" not in ini
    svc = _all_docs(REPO / "infra/mlflow/compose.yaml")[0]["services"]["mlflow"]["environment"]
    assert REQUIRED_VAR.match(svc["MLFLOW_AUTH_ADMIN_PASSWORD"])
    assert REQUIRED_VAR.match(svc["MLFLOW_FLASK_SERVER_SECRET_KEY"])
    assert svc["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow/basic_auth.ini"
    assert "COPY basic_auth.ini /etc/mlflow/basic_auth.ini" in (REPO / "infra/mlflow/Dockerfile").read_text()


def test_ray_dashboard_is_loopback_or_token_protected():
    for name, spec in _ray_cluster_specs().items():
        token = (spec.get("authOptions") or {}).get("mode") == "token"
        host = spec["headGroupSpec"]["rayStartParams"].get("dashboard-host", "0.0.0.0")  # KubeRay's default
        assert host == "127.0.0.1" or token, name
        # GCS (6379) and Ray Client (10001) are reachable in the cluster whatever the dashboard
        # does, and run arbitrary code: token auth is on for both manifests.
        assert token, name
        if token:   # the token comes from a Secret, never from the manifest
            for _, group in _ray_pod_specs(spec):
                for c in group["template"]["spec"]["containers"]:
                    for e in c.get("env") or []:
                        assert not (e["name"] == "RAY_AUTH_TOKEN" and "value" in e), name
    launcher = _all_docs(REPO / "infra/ray/cluster.yaml")[0]
    head = " ".join(launcher["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    start = (REPO / "infra/local/start.sh").read_text()
    assert "HOST=127.0.0.1" in start and "--include-dashboard=false" in start


# --- one place for every path ---------------------------------------------------------------------

PATH_VARS = ("LRFACE_DATA_ROOT", "LRFACE_FRNET", "LRFACE_WORK_DIR")
ENDPOINT_VARS = ("LRFACE_RAY_ADDRESS", "MLFLOW_TRACKING_URI", "PREFECT_API_URL", "AWS_ENDPOINT_URL")


def _configmap(name: str) -> dict:
    return next(d for d in _k8s_docs() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)


def test_every_path_comes_from_the_paths_configmap():
    import lrface.config

    read_by_lrface = set(lrface.config.ENV_OVERRIDES.values())
    assert set(PATH_VARS) <= read_by_lrface, "the library no longer reads these names"
    data = _configmap("lrface-paths")["data"]
    for var in PATH_VARS + ENDPOINT_VARS:
        assert data.get(var), f"{var} missing from the lrface-paths ConfigMap"
    assert data["LRFACE_WORK_DIR"].startswith("s3://") and data["LRFACE_RAY_ADDRESS"] == "auto"
    job = _all_docs(REPO / "infra/ray/rayjob.yaml")[0]["spec"]
    # -S on the command line would beat the ConfigMap; so would env in the runtime env
    assert "paths." not in job["entrypoint"]
    runtime_env = yaml.safe_load(job.get("runtimeEnvYAML") or "{}") or {}
    assert not set(runtime_env.get("env_vars") or {}) & set(PATH_VARS + ENDPOINT_VARS)
    for name, spec in _ray_cluster_specs().items():
        for group, pod in _ray_pod_specs(spec):
            template = pod["template"]["spec"]
            claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                      for v in template.get("volumes", []) if "persistentVolumeClaim" in v}
            for c in template["containers"]:
                where = (name, group, c["name"])
                refs = c.get("envFrom") or []
                assert {"configMapRef": {"name": "lrface-paths"}} in refs, where
                assert {"secretRef": {"name": "lrface-secrets"}} in refs, where
                assert not {e["name"] for e in c.get("env") or []} & set(PATH_VARS + ENDPOINT_VARS), where
                # the data root and the checkpoint are on the read-only data volume
                for var in ("LRFACE_DATA_ROOT", "LRFACE_FRNET"):
                    mounts = [m for m in c.get("volumeMounts", [])
                              if Path(data[var]).is_relative_to(m["mountPath"])]
                    assert mounts and all(m.get("readOnly") for m in mounts), (where, var)
                    assert claims.get(mounts[0]["name"]) == "lrface-data", (where, var)
    pvc = next(d for d in _k8s_docs() if d["kind"] == "PersistentVolumeClaim"
               and d["metadata"]["name"] == "lrface-data")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_configmap_endpoints_name_the_services():
    data = _configmap("lrface-paths")["data"]
    services = {(d["metadata"]["name"], d["metadata"]["namespace"], p["port"])
                for d in _k8s_docs() if d["kind"] == "Service" for p in d["spec"]["ports"]}
    for var in ("MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL"):
        url = urlparse(data[var])
        name, namespace = url.hostname.split(".")[:2]
        assert (name, namespace, url.port) in services, (var, data[var])


def test_no_secret_is_committed_in_a_manifest():
    assert not [d for d in _k8s_docs() if d["kind"] == "Secret"], "create Secrets with kubectl, not in git"
    for d in _k8s_docs():
        if d["kind"] == "ConfigMap":
            assert not [k for k in d.get("data", {}) if SECRET_NAME.search(k)], d["metadata"]["name"]
        for c in _containers(d):
            for e in c.get("env") or []:
                if SECRET_NAME.search(e["name"]):
                    assert "value" not in e and "secretKeyRef" in e.get("valueFrom", {}), (c["name"], e)
    texts = [p.read_text() for p in (REPO / "infra").rglob("*") if p.is_file()]
    for text in texts:
        assert not re.search(r"AKIA[0-9A-Z]{16}", text)             # an AWS access key id
        assert not re.search(r"(?i)(aws_secret_access_key|secretKey)\W{1,4}[A-Za-z0-9/+]{20,}", text)
        assert "minioadmin" not in text and "password1234" not in text


# --- what builds and syncs leave behind -----------------------------------------------------------

MUST_STAY_HOME = [".venv/bin/python", "data/lfw/a.jpg", "mlflow.db", "mlruns/0/meta.yaml",
                  "mlartifacts/1/a", ".git/HEAD", "lrface/__pycache__/x.cpython-311.pyc",
                  "lrface.egg-info/PKG-INFO", ".infra/pids", "test-artifacts/x.png", "runs/a",
                  ".pytest_cache/v", ".ruff_cache/x", "tests/__pycache__/y.pyc"]
MUST_TRAVEL = ["lrface/data/align.py", "lrface/config.py", "flows/__main__.py", "pyproject.toml",
               "params.yaml", "infra/ray/Dockerfile", "README.md"]


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore matching (no ``!`` rules here): a pattern excludes the path or a parent;
    ``*`` stays within one path component, ``**/`` matches in any directory."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pat in (p.strip("/") for p in patterns):
        for prefix in prefixes:
            if pat.startswith("**/"):
                hit = fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], pat[3:])
            else:
                hit = prefix.count("/") == pat.count("/") and fnmatch.fnmatchcase(prefix, pat)
            if hit:
                return True
    return False


def test_dockerignore_keeps_data_and_environments_out_of_images():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert not [p for p in patterns if p.startswith("!")]
    for path in MUST_STAY_HOME:
        assert _dockerignored(path, patterns), f"{path} would be sent to the Docker daemon"
    for path in MUST_TRAVEL:
        assert not _dockerignored(path, patterns), f"{path} would be missing from the image"


def test_cluster_launcher_syncs_source_only():
    from ray.autoscaler._private.util import prepare_config, validate_config

    launcher = _all_docs(REPO / "infra/ray/cluster.yaml")[0]
    validate_config(prepare_config(dict(launcher)))       # Ray's own schema: the keys are real
    excludes, filters = launcher["rsync_exclude"], launcher["rsync_filter"]
    assert ".venv" in excludes and "/data/" in excludes and ".gitignore" in filters
    assert launcher["file_mounts"] == {"/home/ray/lrface": "."}
    if shutil.which("rsync") is None:
        pytest.skip("rsync not installed: the patterns were checked, not a transfer")
    from ray.autoscaler._private.command_runner import SSHCommandRunner

    args = SSHCommandRunner._create_rsync_filter_args(None, {"rsync_exclude": excludes, "rsync_filter": filters})
    with tempfile.TemporaryDirectory() as src, tempfile.TemporaryDirectory() as dst:
        for rel in MUST_STAY_HOME + MUST_TRAVEL:
            (Path(src) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(src) / rel).write_text("x")
        shutil.copy(REPO / ".gitignore", Path(src) / ".gitignore")
        subprocess.run(["rsync", "-a", *args, f"{src}/", f"{dst}/"], check=True, capture_output=True)
        synced = {str(p.relative_to(dst)) for p in Path(dst).rglob("*") if p.is_file()}
    assert not synced & set(MUST_STAY_HOME), synced & set(MUST_STAY_HOME)
    assert set(MUST_TRAVEL) <= synced


@pytest.mark.slow
def test_local_start_and_stop_scripts(tmp_path):
    state = tmp_path / "infra"
    ports = {"RAY_PORT": free_port(), "PREFECT_PORT": free_port(), "MLFLOW_PORT": free_port()}
    env = {**child_env(), **{k: str(v) for k, v in ports.items()}, "LRFACE_INFRA_DIR": str(state),
           "VENV_BIN": str(Path(os.sys.executable).parent)}
    tree: set[int] = set()
    try:
        out = subprocess.run([str(REPO / "infra/local/start.sh")], env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        pids = dict(line.split() for line in (state / "pids").read_text().splitlines())
        assert set(pids) == {"ray", "prefect", "mlflow"}
        for url in (f"http://127.0.0.1:{ports['PREFECT_PORT']}/api/health", f"http://127.0.0.1:{ports['MLFLOW_PORT']}/health"):
            with urllib.request.urlopen(url, timeout=5) as r:
                assert r.status == 200
        assert f"PREFECT_API_URL=http://127.0.0.1:{ports['PREFECT_PORT']}/api" in (state / "env").read_text()
        # The loopback-only head is reachable from a shell that sourced the env file: by plain Ray,
        # and by lrface without the env file's Ray mode (lrface keeps a loopback head's address).
        plain = "import os, ray; ray.init(address=os.environ['LRFACE_RAY_ADDRESS']); print('CPUS', ray.cluster_resources()['CPU'])"
        ours = plain.replace("ray.init(", "from lrface.ray_env import init_ray; init_ray(")
        shell = child_env(drop=(RAY_MODE,))
        for driver, unset in ((plain, ""), (ours, f"unset {RAY_MODE} && ")):
            joined = subprocess.run(["bash", "-c", f'. "{state}/env" && {unset}exec "{sys.executable}" -c "{driver}"'],
                                    env=shell, capture_output=True, text=True, timeout=120)
            assert "CPUS" in joined.stdout, driver + joined.stdout + joined.stderr[-3000:]
        # Every listening TCP socket of what was started is on loopback.
        tree = descendants({int(p) for p in pids.values()})
        sockets = listening(tree)
        assert sockets, "no listening sockets found"
        bad = [a for a in sockets if not a.startswith(LOOPBACK)]
        assert not bad, f"sockets not on loopback: {bad}"
    finally:
        stop = subprocess.run([str(REPO / "infra/local/stop.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    alive = [p for p in tree if Path(f"/proc/{p}").exists() and
             "Z" not in Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[0]]
    assert not alive, f"still running after stop.sh: {alive}"
