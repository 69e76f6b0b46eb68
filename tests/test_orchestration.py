"""The whole pipeline on a tiny real-data config, three ways: `dvc repro` (each stage a Prefect
flow run on a real loopback Prefect server), the `pipeline` flow against the same server (its
steps come from the task cache), deployments registered there, `dvc exp run`; and screenshots
of the Prefect and MLflow UIs saved under test-artifacts/."""

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, tiny_params
from tests.servers import child_env, mlflow_server, prefect_server, rendered_dom, screenshot

pytestmark = pytest.mark.slow
ARTIFACTS = Path(os.environ.get("LRFACE_TEST_ARTIFACTS", REPO / "test-artifacts"))


def sh(cmd: str, cwd: Path, env: dict, timeout: int = 900) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, shell=True, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout + out.stderr


def api(url: str, path: str, body: dict | None = None):
    req = urllib.request.Request(f"{url}/api/{path}", data=json.dumps(body or {}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A temporary copy of the repo (tiny params, own git) and a Prefect server on 127.0.0.1."""
    root = tmp_path_factory.mktemp("orchestration")
    repo = root / "repo"
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if f != "dvc.lock" and (REPO / f).is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, repo / f)
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(root), sort_keys=False))
    home = root / "prefect-home"
    home.mkdir()
    with prefect_server(home) as url:
        env = child_env(PREFECT_HOME=str(home), PREFECT_API_URL=f"{url}/api",
                        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(repo))
        sh("git init -q && git add -A && git -c user.email=t@t -c user.name=t commit -qm tiny", repo, env)
        yield {"repo": repo, "url": url, "env": env, "root": root}


def _mlflow_client(repo: Path):
    """The repo's own MLflow store, tracking and registry (this process may have set up another)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{repo / 'data' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _flow_runs(url: str) -> list[dict]:
    return api(url, "flow_runs/filter", {"limit": 200})


def test_dvc_repro_runs_every_stage_as_a_flow_run(world):
    repo, url, env = world["repo"], world["url"], world["env"]
    # warn (not the flows' default, ignore): no line may be logged outside a flow run's context
    out = sh("dvc repro", repo, {**env, "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "warn"}, timeout=1500)
    for stage in ("align@lfw", "align@train", "shards@lfw", "shards@train", "init", "train@0", "train@0.5",
                  "evaluate"):
        assert f"Running stage '{stage}'" in out
    assert "without a flow run id" not in out
    # MLflow (embedded SQLite in the repo's work dir): two registered versions, each evaluated.
    client = _mlflow_client(repo)
    versions = client.search_model_versions("name = 'lrface-srnet'")
    assert sorted(v.tags["alpha"] for v in versions) == ["0", "0.5"], [
        (v.version, v.tags, v.run_id, v.source) for v in versions]
    # train@0.5 started from train@0's model, as train.sweep says, and train@0 from srnet-init
    starts = {v.tags["alpha"]: client.get_run(v.run_id).data.tags for v in versions}
    assert starts["0.5"]["lrface.init_from"] == "srnet-alpha0" and starts["0"]["lrface.init_from"] == "srnet-init"
    import hashlib

    alpha0 = (repo / "data" / "models" / "srnet-alpha0" / "srnet.pt").read_bytes()
    assert starts["0.5"]["lrface.init_sha256"] == hashlib.sha256(alpha0).hexdigest()
    metrics = json.loads((repo / "data" / "metrics.json").read_text())
    evaluated = metrics["mlflow_runs"]
    # The evaluate stage promoted the best version, so `lrface verify` works right after dvc repro.
    assert metrics["promotion"]["moved"], metrics["promotion"]
    champion = client.get_model_version_by_alias("lrface-srnet", "champion").version
    assert str(champion) == metrics["promotion"]["best_version"]
    for v in versions:
        run_id = next(r for m, r in evaluated.items() if f"v{v.version}" in m or f"/{v.version}" in m)
        run = client.get_run(run_id)
        assert "lfw/acc_14x12" in run.data.metrics and 0.3 <= run.data.metrics["lfw/acc_14x12"] <= 1
    assert (repo / "data" / "reports" / "lfw_table.md").read_text().count("|") > 10
    # Each stage was a Prefect flow run on the server, named for what it ran, and completed.
    runs = _flow_runs(url)
    names = {r["name"]: r["state_type"] for r in runs}
    for name in ("prepare lfw: ['align']", "prepare train: ['shards']", "train alpha=0.5", "evaluate lfw"):
        assert names.get(name) == "COMPLETED", (name, names)
    # lrface's progress lines reach the flow run's logs in the UI.
    align = next(r["id"] for r in runs if r["name"] == "prepare lfw: ['align']")
    logs = api(url, "logs/filter", {"logs": {"flow_run_id": {"any_": [align]}}, "limit": 200})
    assert any("align lfw" in entry["message"] for entry in logs), [e["message"] for e in logs]
    # Nothing changed: nothing runs.
    again = sh("dvc repro", repo, env)
    assert "Running stage" not in again
    # A degradation change invalidates only the shards stages and what follows them.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["degrade"]["kernel"] = "bilinear"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = sh("dvc status", repo, env)
    assert "shards@lfw" in status and "align@lfw" not in status and "align@train" not in status
    params["degrade"]["kernel"] = "bicubic"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git add -A && git -c user.email=t@t -c user.name=t commit -qm 'dvc repro'", repo, env)


def test_pipeline_flow_on_the_server_uses_the_task_cache(world):
    repo, url, env = world["repo"], world["url"], world["env"]
    out = sh(f"{sys.executable} -m flows pipeline", repo, env, timeout=900)
    assert "trained" in out
    pipeline = [r for r in _flow_runs(url) if r["name"].startswith("pipeline")]
    assert len(pipeline) == 1 and pipeline[0]["state_type"] == "COMPLETED"
    children = api(url, "flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [pipeline[0]["id"]]}}})
    tasks = api(url, "task_runs/filter", {"flow_runs": {"id": {"any_": [pipeline[0]["id"]] +
                                                          [c["id"] for c in children]}}, "limit": 200})
    states = {t["name"]: t["state_name"] for t in tasks}
    # Data and models exist with the same inputs: those steps are cached, not recomputed.
    for name in ("align lfw", "shards train", "train alpha=0.0", "train alpha=0.5"):
        assert states.get(name) == "Cached", states
    assert states.get("evaluate lfw") == "Completed"
    artifacts = api(url, "artifacts/filter", {"artifacts": {"key": {"any_": ["lfw-results"]}}})
    assert len(artifacts) == 2  # one from the dvc repro's evaluate stage, one from this pipeline
    latest = max(artifacts, key=lambda a: a["created"])["data"]
    assert "| bicubic" in latest and "training alpha=0.5" in latest
    surv = latest.index("# LFW surveillance protocol")  # its own table, after the clean one
    assert latest.index("# LFW cross-resolution") < surv and "| bicubic" in latest[surv:]


def test_deployments_and_ui_screenshots(world):
    repo, url, env = world["repo"], world["url"], world["env"]
    sh("prefect work-pool create lrface --type process --overwrite", repo, env)
    sh("prefect --no-prompt deploy --all", repo, {**env, "LRFACE_REPO": str(repo)})
    deps = {d["name"]: d for d in api(url, "deployments/filter", {})}
    assert {"lrface-pipeline", "lrface-prepare", "lrface-train", "lrface-evaluate"} <= set(deps)
    pipe = deps["lrface-pipeline"]
    assert pipe["work_pool_name"] == "lrface" and pipe["entrypoint"] == "flows/pipeline.py:pipeline"
    assert str(repo) in json.dumps(pipe["pull_steps"])
    tmp = world["root"] / "chromium"
    # The UI rendered the runs (not an error toast): the DOM holds flow-run names.
    dom, wait = rendered_dom(f"{url}/runs", tmp, expect="train alpha=0.5")
    assert "train alpha=0.5" in dom and "Can't connect" not in dom
    shots = [screenshot(f"{url}/runs", ARTIFACTS / "prefect-flow-runs.png", tmp, size="1440,1600",
                        wait_ms=2 * wait)]  # the run list renders after the chart
    with mlflow_server(f"sqlite:///{repo / 'data' / 'mlflow.db'}", repo / "data" / "mlartifacts",
                       world["root"]) as mlflow_url:
        query = urllib.parse.urlencode({"filter": "name='lrface-srnet'"})
        with urllib.request.urlopen(f"{mlflow_url}/api/2.0/mlflow/model-versions/search?{query}", timeout=30) as r:
            served = json.loads(r.read())["model_versions"]
        assert {v["version"] for v in served} >= {"1", "2"}, served  # what the page below must show
        dom, wait = rendered_dom(f"{mlflow_url}/#/models/lrface-srnet", tmp, expect="Version 2")
        assert "Version 2" in dom and "alpha" in dom
        shots.append(screenshot(f"{mlflow_url}/#/models/lrface-srnet", ARTIFACTS / "mlflow-registry.png", tmp,
                                wait_ms=wait))
    for s in shots:
        assert s.stat().st_size > 20_000


def test_dvc_exp_run_trains_and_evaluates_a_new_alpha(world):
    repo, env = world["repo"], world["env"]
    # A numeric sweep key (what `-S '+train.sweep={0.25: ...}'` writes) would get no DVC stage; since
    # evaluate reads train.sweep, the experiment fails instead of silently training nothing.
    bad = subprocess.run("dvc exp run -n bad -S '+train.sweep={0.25: srnet-alpha0}'", cwd=repo, env=env,
                         shell=True, capture_output=True, text=True, timeout=900)
    assert bad.returncode != 0 and "Running stage 'train@0.25'" not in bad.stdout, bad.stdout + bad.stderr
    sh("git checkout -- params.yaml", repo, env)  # the failed experiment's change stays in the workspace
    # alpha 0.25 added to the sweep in params.yaml, warm-started from the alpha-0 model
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["sweep"]["0.25"] = "srnet-alpha0"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh("dvc exp run -n alpha025", repo, env, timeout=900)
    assert "Running stage 'train@0.25'" in out and "Running stage 'evaluate'" in out
    shown = sh("dvc exp show --json", repo, env)
    assert "alpha025" in shown
    client = _mlflow_client(repo)
    assert "0.25" in {v.tags["alpha"] for v in client.search_model_versions("name = 'lrface-srnet'")}
