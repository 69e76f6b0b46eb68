"""Shared fixtures. Real data comes from ../shared (override with LRFACE_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.servers import INHERITED_MLFLOW

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LRFACE_SHARED", REPO.parent / "shared")).resolve()
FRNET_CKPT = SHARED / "weights" / "mobilefacenet_casia_112x96.ckpt"
LFW_DIR = SHARED / "data" / "lfw"
CELEBA_DIR = SHARED / "data" / "celeba-wild"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _thread_share() -> int | None:
    """Under pytest-xdist, each test process's share of the cores (else None: torch's default).

    Two workers on two cores that both run torch with a thread per core spin against each other:
    a short training took 2.8x as long with 2 threads as with 1 beside a 2-thread load. So each
    worker's torch (reset before every test: ``run_training`` sets the driver's to all cores) and,
    through ``OMP_NUM_THREADS``, its subprocesses' (CLI runs, ``dvc repro`` stages) use cores /
    workers threads; Ray workers set their own (``train.threads_per_worker``).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        return None
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    return threads


THREAD_SHARE = _thread_share()


@pytest.fixture(autouse=True)
def _share_the_cores():
    if THREAD_SHARE is not None:
        import torch

        torch.set_num_threads(THREAD_SHARE)


@pytest.fixture(autouse=True)
def _mlflow_uris_stay_in_their_test():
    """Undo the MLflow URIs and experiment a test's in-process tracking wrote into ``os.environ``.

    ``lrface.tracking.setup_mlflow`` points MLflow at the test's store, and MLflow copies the URIs
    and the experiment id into the environment, where every later subprocess of this worker (a CLI
    run, say) would take them as the user's: ``compare`` on an empty store then listed another
    test's registered models. Only the environment is restored (what subprocesses inherit), and
    only what a test changed: in-process code calls ``setup_mlflow`` itself before it tracks.
    """
    before = {name: os.environ.get(name) for name in INHERITED_MLFLOW}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# The files that take longest (worker-seconds in a full run on 2 cores: about 1,180, 1,100, 660,
# 290, 150, 100; the next is under 95). pytest-xdist hands out whole files in collection order
# (`--no-loadscope-reorder` in pyproject.toml; its default puts files with many quick tests first
# and left these to the end, where one worker ran on alone for 4 min): these go first, and the
# many short files fill in behind them.
SLOWEST_FIRST = ("test_train.py", "test_cluster.py", "test_orchestration.py", "test_train_step.py",
                 "test_inference.py", "test_detector.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def tiny_pairs_file(path: Path, folds: int = 2, per_fold: int = 12) -> Path:
    """A View-2 style pairs file: ``folds`` x (``per_fold`` same + ``per_fold`` different) real pairs."""
    lines = (LFW_DIR / "pairs.txt").read_text().splitlines()[1:]
    body = []
    for fold in range(folds):
        block = lines[600 * fold : 600 * fold + 600]
        body += block[:per_fold] + block[300 : 300 + per_fold]
    path.write_text(f"{folds} {per_fold}\n" + "\n".join(body) + "\n")
    return path


def tiny_params(root: Path) -> dict:
    """2 LFW folds x 24 real pairs; ~100 real training faces; a few steps per alpha on one worker."""
    tiny_pairs_file(root / "pairs-tiny.txt")
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["paths"].update(data_root=str(SHARED / "data"), frnet_checkpoint=str(FRNET_CKPT))
    p["data"]["rows_per_shard"] = 100
    p["data"]["datasets"]["lfw"].update(pairs=str(root / "pairs-tiny.txt"), reference_landmarks=None,
                                        landmarks_file="lfw/reference_landmarks.txt", fallback_landmarks=None)
    p["data"]["datasets"]["train"].update(sources=[{"name": "lfw", "root": "lfw/lfw-deepfunneled"}],
                                          limit=100, val_fraction=0.1,
                                          landmarks_file="lfw/reference_landmarks.txt")
    p["align"]["workers"] = 1
    p["train"].update(steps=6, batch_size=8, checkpoint_every=3, validate_every=6, log_every=2,
                      val_max_faces=16, num_workers=1)
    p["evaluate"].update(sizes=["7x6", "14x12"], grid_pairs=2, timing_batches=[1])
    return p


@pytest.fixture(scope="session")
def frnet_ckpt() -> Path:
    if not FRNET_CKPT.is_file():
        pytest.fail(f"shared MobileFaceNet checkpoint missing: {FRNET_CKPT}")
    return FRNET_CKPT


@pytest.fixture(scope="session")
def frnet(frnet_ckpt):
    from lrface.checkpoints import load_frnet

    return load_frnet(frnet_ckpt)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Params + shards of 120 real faces (LFW identities outside pairs.txt, reference landmarks)."""
    from lrface.data.align_stage import run_align
    from lrface.data.shard_stage import run_shards

    root = tmp_path_factory.mktemp("train")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"] = {"data_root": str(LFW_DIR.parent), "work_dir": str(root / "work"),
                       "frnet_checkpoint": str(LFW_DIR.parents[1] / "weights" / "mobilefacenet_casia_112x96.ckpt")}
    params["data"]["datasets"] = {"train": {
        "role": "train", "sources": [{"name": "lfw", "root": "lfw/lfw-deepfunneled"}],
        "test_pairs": "lfw/pairs.txt", "val_fraction": 0.2, "limit": 120, "drop_duplicates": True,
        "landmarks_file": "lfw/reference_landmarks.txt"}}
    params["train"].update(steps=12, batch_size=8, checkpoint_every=4, validate_every=6, log_every=2,
                           val_max_faces=16, max_failures=2, sweep={"0": "srnet-init", "0.5": "srnet-init"})
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    from lrface.config import load_params

    p = load_params(path)
    assert run_align(p, "train", progress=False)["counts"]["aligned"] == 120
    run_shards(p, "train")
    return path


@pytest.fixture(scope="session", autouse=True)
def _stop_ray_at_exit():
    """Tests that start a local Ray share it; it is shut down once, at the end."""
    yield
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
