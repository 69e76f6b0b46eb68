"""infra/: every YAML parses and agrees with pyproject.toml; the local start/stop scripts bring
up a Ray head, a Prefect server and an MLflow server on 127.0.0.1 and stop exactly those."""

import os
import re
import subprocess
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.servers import child_env, free_port

PINS = {
    re.split(r"[\[=<>]", d)[0]: d.split("==")[1]
    for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"] if "==" in d
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
    assert {"postgres", "minio", "mlflow"} <= set(mlflow["services"])
    svc = mlflow["services"]["mlflow"]
    assert f"mlflow=={PINS['mlflow']}" in svc["build"]["dockerfile_inline"]
    assert "postgresql://" in svc["command"] and "s3://" in svc["command"]
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
        # Every listening TCP socket of what was started is on loopback.
        tree = _descendants({int(p) for p in pids.values()})
        listening = _listening(tree)
        assert listening, "no listening sockets found"
        bad = [a for a in listening if not a.startswith(("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:"))]
        assert not bad, f"sockets not on loopback: {bad}"
    finally:
        stop = subprocess.run([str(REPO / "infra/local/stop.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    alive = [p for p in tree if Path(f"/proc/{p}").exists() and
             "Z" not in Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[0]]
    assert not alive, f"still running after stop.sh: {alive}"


def _descendants(roots: set[int]) -> set[int]:
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


def _listening(pids: set[int]) -> list[str]:
    res = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    addrs = []
    for line in res.splitlines():
        owners = {int(m) for m in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            addrs.append(line.split()[3])
    return addrs
