"""Flow plumbing that needs no server: retry policy, cache keys, sweep width."""

import os
from pathlib import Path

import yaml
from prefect.states import Failed

from flows.caching import stage_key
from flows.pipeline import parallel_trainings
from flows.tasks import fresh_if_missing, retry_unless_bad_input, train_task
from lrface.checkpoints import CheckpointError
from lrface.config import load_params
from lrface.data.shards import ShardError
from lrface.train.step import NonFiniteLossError
from tests.conftest import REPO


def test_retries_only_transient_failures():
    for permanent in (ShardError("bad shard"), CheckpointError("bad ckpt"), NonFiniteLossError("nan"),
                      FileNotFoundError("x"), ValueError("bad param")):
        assert not retry_unless_bad_input(None, None, Failed(data=permanent))
    for transient in (ConnectionError("ray head gone"), TimeoutError("mlflow"), RuntimeError("worker died")):
        assert retry_unless_bad_input(None, None, Failed(data=transient))


def test_cache_key_follows_params_and_inputs():
    p = load_params(REPO / "params.yaml")
    base = stage_key("shards-lfw", p, ["degrade"], ["digest-a"])
    assert base == stage_key("shards-lfw", load_params(REPO / "params.yaml"), ["degrade"], ["digest-a"])
    assert base != stage_key("shards-lfw", p, ["degrade"], ["digest-b"])
    changed = load_params(REPO / "params.yaml", {"degrade.kernel": "bilinear"})
    assert base != stage_key("shards-lfw", changed, ["degrade"], ["digest-a"])
    assert stage_key("x", changed, ["align"], []) == stage_key("x", p, ["align"], [])


def test_missing_output_refreshes_the_cache(tmp_path):
    p = load_params(REPO / "params.yaml", {"paths.work_dir": str(tmp_path)})
    assert fresh_if_missing(train_task, p, "missing.json").refresh_cache is True
    (tmp_path / "there.json").write_text("{}")
    assert fresh_if_missing(train_task, p, "there.json") is train_task


def test_cache_key_notices_an_edited_function(tmp_path, monkeypatch):
    """The key digests the code a step runs: editing a function in it changes the key."""
    import shutil

    import lrface.code_digest as code

    pkg = tmp_path / "lrface"
    shutil.copytree(code.LRFACE_ROOT, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code, "LRFACE_ROOT", pkg)
    p = load_params(REPO / "params.yaml")
    before = stage_key("train", p, ["loss"], ["x"], code=("train", "losses.py"))
    assert before == stage_key("train", p, ["loss"], ["x"], code=("train", "losses.py"))
    losses = pkg / "losses.py"
    losses.write_text(losses.read_text().replace("(1.0 - F.cosine", "(1.0 + F.cosine"))  # a sign error
    assert "(1.0 + F.cosine" in losses.read_text()
    assert stage_key("train", p, ["loss"], ["x"], code=("train", "losses.py")) != before
    # code a step does not run does not change its key
    data_key = stage_key("shards", p, [], [], code=("data",))
    loop = pkg / "train" / "loop.py"
    loop.write_text(loop.read_text() + "\n# edited\n")
    assert stage_key("shards", p, [], [], code=("data",)) == data_key
    assert stage_key("train", p, ["loss"], ["x"], code=("train", "losses.py")) != before
    # nor does a change to the CLI's help text; shared plumbing (config) misses every key
    cli = pkg / "cli.py"
    cli.write_text(cli.read_text() + "\n# a clearer help text\n")
    assert stage_key("shards", p, [], [], code=("data",)) == data_key
    config = pkg / "config.py"
    config.write_text(config.read_text() + "\n# edited\n")
    assert stage_key("shards", p, [], [], code=("data",)) != data_key


def test_sweep_width(tmp_path, monkeypatch):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["orchestration"]["parallel_trainings"] = 3
    path = Path(tmp_path / "p.yaml")
    path.write_text(yaml.safe_dump(params))
    assert parallel_trainings(str(path), None) == 3
    params["orchestration"]["parallel_trainings"] = "auto"
    path.write_text(yaml.safe_dump(params))
    # auto on a local Ray: CPUs over what one job holds (its workers' threads + its trainer)
    for cpus, workers, threads, width in ((8, 2, 1, 2), (8, 1, 1, 4), (16, 2, 3, 2), (2, 2, 1, 1), (1, 4, 1, 1)):
        monkeypatch.setattr("os.cpu_count", lambda n=cpus: n)
        over = {"train.num_workers": workers, "train.threads_per_worker": threads, "train.batch_size": 4 * workers}
        assert parallel_trainings(str(path), over) == width, (cpus, workers, threads)


def test_progress_lines_go_to_the_lrface_logger_in_flows(monkeypatch, caplog):
    """Under the flows (LRFACE_PROGRESS=log) a progress bar is logged, so Prefect can ship it."""
    import logging

    import flows  # noqa: F401 - sets the defaults below
    from lrface.progress import progress

    assert "lrface" in os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"]
    monkeypatch.setenv("LRFACE_PROGRESS", "log")
    with caplog.at_level(logging.INFO, logger="lrface.progress"):
        for _ in progress(range(3), desc="features 7x6", log_interval=0):
            pass
    assert any("features 7x6" in r.getMessage() and "3/3" in r.getMessage() for r in caplog.records)


def test_lfw_feature_cache_misses_when_the_embedding_code_changes(tmp_path, monkeypatch):
    """The evaluation's feature cache is keyed on the code that computes the features too."""
    import shutil

    import numpy as np

    import lrface.code_digest as code
    from lrface.eval.lfw import LfwEvaluator

    class Data:
        manifest_sha256 = "m" * 64

    pkg = tmp_path / "lrface"
    shutil.copytree(code.LRFACE_ROOT, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code, "LRFACE_ROOT", pkg)
    ev = LfwEvaluator(None, Data(), "f" * 64, cache_dir=tmp_path / "cache", progress=False)
    calls, rows = [], np.arange(3)

    def compute():
        calls.append(1)
        return np.zeros(3, np.float32)

    ev._cached("bicubic/14x12", rows, compute)
    ev._cached("bicubic/14x12", rows, compute)
    assert len(calls) == 1  # a hit
    methods = pkg / "restoration.py"
    methods.write_text(methods.read_text().replace("return to_face_size(lr)", "return to_face_size(lr, 'area')"))
    ev._cached("bicubic/14x12", rows, compute)
    assert len(calls) == 2  # bicubic's code changed: a miss, though its name did not
