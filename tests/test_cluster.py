"""Off one machine, on loopback only: S3 (moto's server), MLflow on PostgreSQL with artifacts in S3,
and a Ray head plus a worker node that cannot read the head's checkout, its ``data/`` or the
shared face data. The pipeline flow runs with its work dir in S3 and trains on both nodes;
then ``dvc repro`` on the same cluster, ``dvc push`` to an S3 remote, and a second clone that
``dvc pull``s, finds every stage up to date and verifies with the champion from the server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster import (
    RAY_ENV,
    mlflow_on_postgres,
    postgres,
    probe,
    ray_cluster,
    s3_keys,
    s3_server,
)
from tests.conftest import LFW_DIR, REPO, SHARED, tiny_params
from tests.servers import LOOPBACK, RAY_MODE, child_env, descendants, listening

pytestmark = pytest.mark.slow
BUCKET = "lrface"
def _can_hide_paths() -> bool:
    """Root and a kernel that lets us make a mount namespace (a worker node that cannot see our disk)."""
    if os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


needs_root = pytest.mark.skipif(not _can_hide_paths(),
                                reason="hiding paths from a Ray node needs a mount namespace (root, unshare)")


def _checkout(dest: Path, params: dict) -> Path:
    """A copy of this repo's tracked files (no dvc.lock) with ``params``, committed in its own git."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if f != "dvc.lock" and (REPO / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dest / f)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _sh("git init -q && git add -A && git -c user.email=t@t -c user.name=t commit -qm tiny", dest, child_env())
    return dest


def _sh(cmd: str, cwd: Path, env: dict, timeout: int = 900, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, shell=True, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert out.returncode == 0, f"{cmd}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    logs = root / "logs"
    logs.mkdir()
    params = tiny_params(root)
    params["train"]["sweep"] = {"0.5": "srnet-init"}
    params["evaluate"]["both_lr"] = False
    head = root / "head-checkout"
    head.mkdir()
    clone_b = root / "second-clone"
    clone_b.mkdir()
    mirror = root / "mirror"  # the driver's mirror of the S3 work dir: workers must not need it
    mirror.mkdir()
    with s3_server(logs, (BUCKET,)) as s3, \
            postgres(logs) as pg_uri, \
            mlflow_on_postgres(pg_uri, f"s3://{BUCKET}/mlartifacts", s3, logs) as mlflow_url, \
            ray_cluster(logs, hidden=[head, clone_b, mirror, SHARED]) as ray:
        # Without Ray's mode (lrface itself keeps the loopback head's address) and without a Prefect server.
        env = child_env(**s3, **RAY_ENV, MLFLOW_TRACKING_URI=mlflow_url, LRFACE_RAY_ADDRESS=ray["address"],
                        PREFECT_HOME=str(root / "prefect-home"), LRFACE_CACHE_DIR=str(mirror),
                        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", drop=(RAY_MODE, "PREFECT_API_URL"))
        yield {"root": root, "params": params, "head": head, "clone_b": clone_b, "s3": s3, "mlflow": mlflow_url,
               "ray": ray, "env": env, "timings": {}}
    print("\ncross-node stage wall times (s):", json.dumps(_timings, indent=1))


_timings: dict[str, float] = {}


def _timed(name: str, fn, *a, **kw):
    t0 = time.time()
    try:
        return fn(*a, **kw)
    finally:
        _timings[name] = round(time.time() - t0, 1)


def _client(url: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


@needs_root
def test_worker_node_cannot_read_the_head_checkout_or_data(cluster):
    paths = [str(cluster["head"]), str(SHARED / "weights"), str(LFW_DIR)]
    _checkout(cluster["head"], cluster["params"])
    seen = probe(cluster["ray"]["address"], 2, paths)
    assert all(seen["head_sees"].values()), seen
    assert not any(seen["worker_sees"].values()), seen


@needs_root
def test_every_server_the_cluster_runs_listens_on_loopback_only(cluster):
    """S3, PostgreSQL, MLflow and both Ray nodes (GCS, raylets, agents, Ray Client server)."""
    sockets = listening(descendants({os.getpid()}))
    worker_node = listening(descendants({cluster["ray"]["pids"][-1]}))
    assert len(worker_node) >= 2, f"the worker node's raylet sockets were not found: {sockets}"
    gcs = cluster["ray"]["address"].rsplit(":", 1)[1]
    assert any(a.endswith(f":{gcs}") for a in sockets), sockets
    exposed = [a for a in sockets if not a.startswith(LOOPBACK)]
    assert not exposed, f"listening beyond loopback: {exposed}"


@needs_root
def test_pipeline_flow_with_work_dir_in_s3_trains_on_the_worker_node(cluster):
    head, env = cluster["head"], {**cluster["env"], "LRFACE_WORK_DIR": f"s3://{BUCKET}/work"}
    if not (head / "params.yaml").exists():
        _checkout(head, cluster["params"])
    # Two DDP workers, one per node (SPREAD): gloo across the nodes, neither reading the other's disk.
    cmd = f"{sys.executable} -m flows -S train.num_workers=2 -S train.placement_strategy=SPREAD pipeline"
    out = _timed("pipeline flow (S3 work dir)", _sh, cmd, head, env, 1500)
    assert "trained" in out.stdout
    assert not (head / "data").exists(), "the flow wrote into the checkout's data/"
    keys = s3_keys(cluster["s3"], BUCKET, "work/")
    for want in ("work/train/shards/manifest.json", "work/lfw/shards/manifest.json", "work/lfw/aligned/summary.json",
                 "work/models/srnet-alpha0.5/srnet.pt", "work/models/srnet-alpha0.5/train_summary.json",
                 "work/reports/lfw_table.md", "work/metrics.json"):
        assert want in keys, (want, keys)
    assert any(k.startswith("work/train/shards/part-") for k in keys)
    assert any("/checkpoint_" in k and k.endswith("state.pt") for k in keys)  # Ray Train storage in S3
    # MLflow: one run, trained across both nodes (DDP); its model's artifacts are the server's (S3).
    client = _client(cluster["mlflow"])
    exp = client.get_experiment_by_name("lrface")
    assert exp.artifact_location.startswith("mlflow-artifacts:"), exp.artifact_location
    runs = client.search_runs([exp.experiment_id], "tags.`lrface.kind` = 'training'")
    nodes = set(runs[0].data.tags["lrface.train_nodes"].split(","))
    assert len(runs) == 1 and nodes == {cluster["ray"]["worker"], cluster["ray"]["head"]}, nodes
    assert runs[0].data.tags["lrface.storage_path"] == f"s3://{BUCKET}/work/ray_results"
    versions = client.search_model_versions("name = 'lrface-srnet'")
    assert len(versions) == 1 and versions[0].source.startswith(("models:/", "mlflow-artifacts:"))
    assert any(k.startswith("mlartifacts/") and k.endswith("srnet.pt") for k in s3_keys(cluster["s3"], BUCKET))
    evals = client.search_runs([exp.experiment_id], "tags.`lrface.kind` = 'evaluation'")
    assert any("lfw/acc_14x12" in r.data.metrics for r in evals)
    # Promotion against the server.
    promoted = _sh("lrface compare --promote-by acc_14x12", head, env)
    assert "champion" in promoted.stdout
    assert client.get_model_version_by_alias("lrface-srnet", "champion").version == versions[0].version


@needs_root
def test_dvc_remote_second_clone_is_up_to_date_and_verifies_with_the_champion(cluster):
    """dvc repro (local work dir, Ray Train storage in S3) on the cluster; push; pull elsewhere."""
    head, clone_b, env = cluster["head"], cluster["clone_b"], cluster["env"]
    if not (head / "params.yaml").exists():
        _checkout(head, cluster["params"])
    params = yaml.safe_load((head / "params.yaml").read_text())
    params["train"]["storage_path"] = f"s3://{BUCKET}/dvc-ray-results"
    (head / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    endpoint = cluster["s3"]["AWS_ENDPOINT_URL"]
    _sh(f"dvc remote add -d --local ci s3://{BUCKET}/dvc && dvc remote modify --local ci endpointurl {endpoint}",
        head, env)
    repro = _timed("dvc repro (cluster)", _sh, "dvc repro", head, env, 1500)
    assert "Running stage 'train@0.5'" in repro.stdout
    _sh("git add -A && git -c user.email=t@t -c user.name=t commit -qm 'tiny run'", head, env)
    _timed("dvc push", _sh, "dvc push", head, env)
    assert s3_keys(cluster["s3"], BUCKET, "dvc/")
    _sh(f"git clone -q {head} {clone_b}", clone_b.parent, env)
    _sh(f"dvc remote add -d --local ci s3://{BUCKET}/dvc && dvc remote modify --local ci endpointurl {endpoint}",
        clone_b, env)
    _timed("dvc pull (second clone)", _sh, "dvc pull", clone_b, env)
    status = _timed("dvc repro (second clone, nothing to do)", _sh, "dvc repro", clone_b, env)
    assert "Running stage" not in status.stdout, status.stdout
    assert "up to date" in (status.stdout + status.stderr).lower()
    # The champion is promoted on the server; the second clone verifies with it.
    _sh("lrface compare --promote-by acc_14x12", clone_b, env)
    a, b = sorted((LFW_DIR / "lfw-deepfunneled" / "Aaron_Peirsol").glob("*.jpg"))[:2]
    out = _timed("lrface verify (second clone)", _sh, f"lrface verify {a} {b} --json", clone_b, env)
    res = json.loads(out.stdout)
    champion = _client(cluster["mlflow"]).get_model_version_by_alias("lrface-srnet", "champion").version
    assert f"lrface-srnet v{champion}" in res["model"], res


@needs_root
def test_bad_storage_and_cluster_addresses_fail_fast_and_name_them(cluster):
    from tests.servers import free_port

    head, env = cluster["head"], cluster["env"]
    if not (head / "params.yaml").exists():
        _checkout(head, cluster["params"])
    work = {**env, "LRFACE_WORK_DIR": f"s3://{BUCKET}/work"}
    dead = f"127.0.0.1:{free_port()}"
    cases = [  # (command, env, what the error must name)
        ("lrface train --alpha 0", {**env, "LRFACE_WORK_DIR": "s3://no-such-bucket/work"},
         ["s3://no-such-bucket/work", "does not exist"]),
        ("lrface align --dataset lfw", {**env, "LRFACE_WORK_DIR": "s3://no-such-bucket/work"},
         ["s3://no-such-bucket/work", "does not exist"]),
        ("lrface train --alpha 0", {**work, "LRFACE_RAY_ADDRESS": dead}, [dead, "does not answer"]),
        ("lrface align --dataset lfw", {**work, "LRFACE_RAY_ADDRESS": dead}, [dead, "does not answer"]),
        ("lrface train --alpha 0", {**work, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"},
         [f"s3://{BUCKET}/work", "storage not usable"]),
        ("lrface evaluate", {**work, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"},
         ["MLflow tracking server at http://127.0.0.1", "does not answer"]),
    ]
    for cmd, case_env, names in cases:
        t0 = time.time()
        out = _sh(cmd, head, case_env, 120, ok=False)
        took = time.time() - t0
        assert out.returncode == 1 and all(n in out.stderr for n in names), (cmd, names, out.stderr[-2000:])
        assert "Traceback" not in out.stderr and took < 45, (cmd, took)
