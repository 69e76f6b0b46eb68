"""SRNet training on a real local Ray cluster with tiny real data: tracking, resume, failures."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lrface.config import load_params
from lrface.ray_env import STATE_API_DOWN
from tests.conftest import REPO
from tests.servers import child_env

pytestmark = pytest.mark.slow


def _client(params_path):
    from mlflow import MlflowClient

    from lrface.tracking import setup_mlflow

    setup_mlflow(load_params(params_path))
    return MlflowClient()


def _training_runs(client, name):
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, f"tags.`lrface.train_name` = '{name}'")


def _cli(params_path, *args, stdout=subprocess.PIPE, **kw):
    env = child_env(PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "lrface.cli", "--params", str(params_path), *args],
                            cwd=REPO, env=env, stdout=stdout, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


class _heartbeat:
    """The heartbeat file of rank ``rank`` of the (hash-suffixed) job named ``name``."""

    def __init__(self, params, name, rank):
        self.root, self.pattern = params.path("work_dir") / "ray_results", f"{name}-*/heartbeat/rank{rank}.json"

    def is_file(self):
        return any(self.root.glob(self.pattern))

    def read_text(self):
        return next(self.root.glob(self.pattern)).read_text()


def _wait_registered(params, name, at_least: int, proc, timeout=240) -> int:
    """Wait until Ray Train's controller has registered a checkpoint of step >= ``at_least`` (its
    snapshot file): a checkpoint reported but not yet registered is not resumed from."""
    root = params.path("work_dir") / "ray_results"
    t0 = time.time()
    while time.time() - t0 < timeout:
        for snap in root.glob(f"{name}-*/checkpoint_manager_snapshot.json"):
            try:
                latest = json.loads(snap.read_text()).get("latest_checkpoint_result") or {}
            except json.JSONDecodeError:
                continue
            step = int((latest.get("metrics") or {}).get("step", 0))
            if step >= at_least:
                return step
        if proc.poll() is not None:
            raise AssertionError("training exited early")
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of step >= {at_least} registered")


def _wait_step(heartbeat, at_least: int, proc, timeout=240) -> dict:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if heartbeat.is_file():
            try:
                hb = json.loads(heartbeat.read_text())
            except json.JSONDecodeError:
                hb = {}
            if hb.get("step", 0) >= at_least:
                return hb
        if proc.poll() is not None:
            raise AssertionError(f"training exited early:\n{proc.stdout.read()[-3000:] if proc.stdout else proc.args}")
        time.sleep(0.2)
    raise AssertionError("no progress")


def test_train_registers_a_model_that_serves_any_size(tiny):
    import mlflow.pyfunc

    from lrface.train.job import run_training

    out = run_training(load_params(tiny), alpha=0.5, name="e2e")
    assert out.metrics["step"] == 12 and out.metrics["status"] == "done"
    for k in ("val/idcos_14x12", "val_bicubic/idcos_14x12", "val/psnr_7x6", "val/ssim_28x24"):
        assert np.isfinite(out.metrics[k])
    client = _client(tiny)
    runs = _training_runs(client, "e2e")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["alpha"] == "0.5" and run.data.tags["lrface.git_commit"]
    assert run.data.tags["lrface.shards_manifest_sha256"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [2, 4, 6, 8, 10, 12]
    arts = [a.path for a in client.list_artifacts(run.info.run_id, "sr_grids")]
    assert len(arts) == 2  # validations at steps 6 and 12
    mv = client.get_model_version("lrface-srnet", out.model_version)
    assert mv.tags["alpha"] == "0.5" and mv.tags["scale"] == "4"
    model = mlflow.pyfunc.load_model(f"models:/lrface-srnet/{out.model_version}")
    for shape in [(2, 3, 7, 6), (1, 3, 28, 24), (3, 3, 16, 16)]:
        y = model.predict(np.random.rand(*shape).astype(np.float32))
        assert y.shape == (shape[0], 3, shape[2] * 4, shape[3] * 4)
    # Running the finished job again resumes at its end: no new run, no new version.
    again = run_training(load_params(tiny), alpha=0.5, name="e2e")
    assert again.model_version == out.model_version and len(_training_runs(client, "e2e")) == 1


def test_job_survives_a_killed_worker_and_a_killed_driver(tiny):
    """A killed worker: Ray Train restarts the worker group from the latest checkpoint. A killed
    driver (the whole job, its Ray included): the same command resumes the same job and run.
    Either way the MLflow run is one, and its steps are continuous."""
    params = load_params(tiny)
    args = ("-S", "train.steps=16", "-S", "train.log_every=1", "train", "--alpha", "0", "--name", "survive")
    log = params.path("work_dir") / "survive-first.log"
    with open(log, "w") as f:
        proc = _cli(tiny, *args, stdout=f)
    _wait_registered(params, "survive", 4, proc)
    hb = _wait_step(_heartbeat(params, "survive", 1), 5, proc)
    os.kill(hb["pid"], signal.SIGKILL)  # one worker: the group restarts from a registered checkpoint
    _wait_registered(params, "survive", 8, proc)  # after the restart
    _wait_step(_heartbeat(params, "survive", 0), 10, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray
    proc.wait()
    first = log.read_text()
    time.sleep(2)
    proc = _cli(tiny, *args)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    client = _client(tiny)
    runs = _training_runs(client, "survive")
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    resumed = [m.value for m in sorted(client.get_metric_history(run_id, "train/resumed_from_step"),
                                       key=lambda m: m.timestamp)]
    # Each restart resumed from a checkpoint (every 4 steps), never from scratch nor backwards.
    # (Which one depends on when Ray Train registered it relative to the kill.)
    assert len(resumed) == 2 and all(v >= 4 and v % 4 == 0 for v in resumed) and resumed[1] >= resumed[0], \
        (resumed, first[-4000:])
    steps = sorted({m.step for m in client.get_metric_history(run_id, "train/loss")})
    assert steps == list(range(1, 17))  # continuous
    summary = json.loads((params.path("work_dir") / "models" / "survive" / "train_summary.json").read_text())
    assert summary["step"] == 16
    # Its console shows rank 0's progress lines, not Ray's raw report dicts.
    lines = [ln[ln.index("survive ["):] for ln in out.splitlines() if "survive [" in ln]  # past Ray's prefix
    assert lines and len(set(lines)) == len(lines), lines  # each once (Ray Train's print patch doubled them)
    assert re.search(r"step 16/16 \| loss \d+\.\d+ .* samples/s \| 0:00 left", lines[-1]), out[-3000:]
    assert "'train/loss'" not in out and '"train/loss"' not in out and "Reporting training result" not in out
    # Ray Train's placement-group cleaner, polling a State API that is not there (no dashboard),
    # says so once, not every second
    assert out.count(STATE_API_DOWN) <= 1, out[-3000:]


def test_non_finite_loss_stops_with_clear_error(tiny):
    from lrface.train.job import run_training
    from lrface.train.step import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match=r"step 6.*Last good checkpoint: .*checkpoint") as e:
        run_training(load_params(tiny), alpha=0.0, name="nan", fault={"nan_at_step": 6})
    assert "nan" in str(e.value).lower()
    ckpts = sorted((load_params(tiny).path("work_dir") / "ray_results").glob("nan-*/checkpoint_*"))
    assert ckpts  # the step-4 checkpoint is kept


def test_missing_or_wrong_frnet_fails_before_workers(tiny, tmp_path):
    import ray

    from lrface.checkpoints import CheckpointError, save_srnet
    from lrface.models import SRNet
    from lrface.train.job import run_training

    missing = tmp_path / "nope.ckpt"
    p = load_params(tiny, {"paths.frnet_checkpoint": str(missing)})
    was_up = ray.is_initialized()
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        run_training(p, alpha=0.5, name="bad-frnet")
    wrong = save_srnet(SRNet(), tmp_path / "srnet_not_frnet.pt")
    with pytest.raises(CheckpointError, match="srnet_not_frnet.pt"):
        run_training(load_params(tiny, {"paths.frnet_checkpoint": str(wrong)}), alpha=0.5, name="bad-frnet")
    assert ray.is_initialized() == was_up  # nothing was started


def test_precomputed_hr_features_match_frnet(tiny, frnet, tmp_path):
    """The cached HR side of the identity loss is f(HR) and f(hflip(HR)) of the same rows."""
    import torch

    from lrface.data.datasets import open_shards
    from lrface.data.tensors import iter_face_batches
    from lrface.train.hr_features import HrFeatureLookup, compute_hr_features

    shards = open_shards(load_params(tiny), "train")
    path = compute_hr_features(shards, frnet, tmp_path / "f.parquet", batch_size=7, progress=False)
    batch = next(iter_face_batches(shards, ["hr_png"], 10, split="train", extra_columns=("sample_id",)))
    lookup = HrFeatureLookup.from_file(path)
    assert len(lookup.index) == shards.manifest["splits"]["train"]
    flip = torch.tensor([i % 2 == 1 for i in range(10)])
    hr = batch["hr_png"].clone()
    hr[flip] = hr[flip].flip(-1)
    with torch.inference_mode():
        direct = frnet(hr)
    got = lookup(batch["sample_id"], flip, torch.device("cpu"))
    assert torch.allclose(got, direct, atol=1e-4)
    with pytest.raises(KeyError, match="no precomputed HR feature"):
        lookup(["nope"], torch.tensor([False]), torch.device("cpu"))


def test_warm_start_begins_from_the_model_the_sweep_names(tiny):
    """At lr 0 the weights never move, so a finished training holds exactly the weights it started
    from: the alpha-0 model for a warm start, the seeded srnet-init otherwise."""
    import torch

    from lrface.checkpoints import load_srnet
    from lrface.train.job import run_training
    from lrface.train.warm_start import INIT_MODEL

    def same(a, b) -> bool:
        sa, sb = load_srnet(a).state_dict(), load_srnet(b).state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    base = run_training(load_params(tiny, {"train.steps": 4, "train.register": False}), alpha=0.0)
    assert base.name == "srnet-alpha0"
    still = {"train.lr": 0.0, "train.steps": 2, "train.register": False}
    warm = run_training(load_params(tiny, {**still, "train.sweep": {"0": INIT_MODEL, "0.5": "srnet-alpha0"}}),
                        alpha=0.5, name="warm")
    cold = run_training(load_params(tiny, still), alpha=0.5, name="cold")
    init = load_params(tiny).path("work_dir") / "models" / INIT_MODEL / "srnet.pt"
    assert same(warm.model_path, base.model_path)
    assert same(cold.model_path, init) and not same(warm.model_path, cold.model_path)
    client = _client(tiny)
    tags = _training_runs(client, "warm")[0].data.tags
    assert tags["lrface.init_from"] == "srnet-alpha0" and len(tags["lrface.init_sha256"]) == 64

    # train.wise_ft: the final model keeps that share of the change from its start (WiSE-FT); the
    # Ray checkpoint holds the trained weights themselves
    from pathlib import Path

    from lrface.train.loop import STATE_FILE

    moving = {"train.steps": 2, "train.lr": 0.01, "train.wise_ft": 0.25,
              "train.sweep": {"0": INIT_MODEL, "0.5": "srnet-alpha0"}}
    blend = run_training(load_params(tiny, moving), alpha=0.5, name="blend")
    trained = torch.load(Path(blend.checkpoint_path) / STATE_FILE, weights_only=True)["model"]
    start = load_srnet(base.model_path).state_dict()
    moved = [k for k in trained if not torch.equal(trained[k], start[k])]
    assert moved  # lr 0.01 moved the weights

    def blended(path, keep) -> None:
        final = load_srnet(path).state_dict()
        for k in moved:
            torch.testing.assert_close(final[k], start[k] + keep * (trained[k] - start[k]))

    blended(blend.model_path, 0.25)
    version = client.get_model_version("lrface-srnet", blend.model_version)
    assert version.tags["wise_ft"] == "0.25"
    # another share blends the same trained weights (the finished Ray job, not a new training)
    # into a run and model version of its own
    half = run_training(load_params(tiny, {**moving, "train.wise_ft": 0.5}), alpha=0.5, name="blend")
    assert Path(half.checkpoint_path).parent == Path(blend.checkpoint_path).parent
    assert half.mlflow_run_id != blend.mlflow_run_id and half.model_version != blend.model_version
    blended(half.model_path, 0.5)
    tags = {r.data.tags["lrface.wise_ft"] for r in _training_runs(client, "blend")}
    assert tags == {"0.25", "0.5"}


def test_surveillance_training_runs_on_ray_from_hr_faces_alone(tiny):
    """train.degradation: surveillance makes its LR faces in the workers (camera chain, continuous
    scale): the job trains and reports its data share; the degradation and the chain's parameters
    define the job (a change starts a new one instead of resuming)."""
    from lrface.train.config import train_config
    from lrface.train.identity import job_name
    from lrface.train.job import run_training

    over = {"train.steps": 6, "train.register": False, "train.log_every": 3, "train.sweep": {}}
    surv = run_training(load_params(tiny, {**over, "train.degradation": "surveillance"}), alpha=0.0, name="cam",
                        track=False)
    assert surv.metrics["step"] == 6 and 0.0 < surv.metrics["train/data_share"] < 1.0
    # mixed: clean steps read the shards' LR columns, camera steps make theirs; both kinds run
    mixed = run_training(load_params(tiny, {**over, "train.degradation": "mixed", "train.camera_share": 0.5}),
                         alpha=0.0, name="mix", track=False)
    assert mixed.metrics["step"] == 6

    def name(extra):
        p = load_params(tiny, {**over, **extra})
        return job_name(p, train_config(p, alpha=0.0), "manifest")

    clean, camera = name({}), name({"train.degradation": "surveillance"})
    assert len({clean, camera, name({"train.degradation": "surveillance", "degrade.surveillance.jpeg_prob": 0.0})}) == 3
    assert name({"degrade.surveillance.jpeg_prob": 0.0}) == clean  # a clean training never reads the chain
    mix = name({"train.degradation": "mixed", "train.camera_share": 0.25})
    assert mix not in (clean, camera) and mix != name({"train.degradation": "mixed", "train.camera_share": 0.5})
    assert mix == name({"train.degradation": "mixed", "train.camera_share": 0.250})
    assert name({"train.camera_share": 0.25}) == clean  # only mixed reads the share
    assert name({"train.degradation": "mixed", "train.camera_share": 1}) == name(
        {"train.degradation": "mixed", "train.camera_share": 1.0})
