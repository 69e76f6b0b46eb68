"""One precedence for every entry point: -S > environment > params.yaml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lrface.cli import main
from lrface.config import ENV_OVERRIDES, load_params

VALUES = {  # dotted key -> (params.yaml, env, -S)
    "paths.data_root": ("p-data", "e-data", "s-data"),
    "paths.frnet_checkpoint": ("p.ckpt", "e.ckpt", "s.ckpt"),
    "paths.work_dir": ("p-work", "s3://env-bucket/work", "s-work"),
    "ray.address": ("local", "auto", "10.0.0.1:6379"),
    "mlflow.tracking_uri": ("sqlite:///p.db", "http://env:5000", "http://cli:5000"),
    "mlflow.registry_uri": ("sqlite:///pr.db", "http://env-r:5000", "http://cli-r:5000"),
    "orchestration.prefect_api_url": ("http://p:4200/api", "http://e:4200/api", "http://s:4200/api"),
}


def _write(tmp_path, data: dict) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _params_file(tmp_path) -> str:
    data: dict = {}
    for dotted, (value, _, _) in VALUES.items():
        section, key = dotted.split(".")
        data.setdefault(section, {})[key] = value
    return _write(tmp_path, data)


@pytest.mark.parametrize("dotted", sorted(ENV_OVERRIDES))
def test_each_override_layer_wins_over_the_one_below(tmp_path, monkeypatch, dotted):
    assert set(VALUES) == set(ENV_OVERRIDES)
    path = _params_file(tmp_path)
    in_file, in_env, on_cli = VALUES[dotted]
    monkeypatch.delenv(ENV_OVERRIDES[dotted], raising=False)
    assert load_params(path).get_dotted(dotted) == in_file
    assert load_params(path).source(dotted) == "params.yaml"
    monkeypatch.setenv(ENV_OVERRIDES[dotted], "")  # empty: not an override
    assert load_params(path).get_dotted(dotted) == in_file
    monkeypatch.setenv(ENV_OVERRIDES[dotted], in_env)
    p = load_params(path)
    assert p.get_dotted(dotted) == in_env and p.source(dotted) == f"env {ENV_OVERRIDES[dotted]}"
    p = load_params(path, {dotted: on_cli})
    assert p.get_dotted(dotted) == on_cli and p.source(dotted) == "-S"


def test_env_fills_a_key_the_file_lacks_and_paths_resolve(tmp_path, monkeypatch):
    path = _write(tmp_path, {"paths": {"work_dir": "data"}})
    monkeypatch.setenv("LRFACE_RAY_ADDRESS", "auto")
    p = load_params(path)
    assert p.get_dotted("ray.address") == "auto"
    assert p.path("work_dir") == tmp_path / "data"
    monkeypatch.setenv("LRFACE_WORK_DIR", "s3://bucket/prefix")
    p = load_params(path)
    assert p.raw_path("work_dir") == "s3://bucket/prefix" and p.workspace().remote
    assert p.workspace().uri_of("models/x") == "s3://bucket/prefix/models/x"
    monkeypatch.setenv("LRFACE_FRNET", "s3://bucket/frnet.ckpt")
    with pytest.raises(ValueError, match="only paths.work_dir may be a URI"):
        load_params(path).path("frnet_checkpoint")


def test_describe_hides_passwords(tmp_path):
    path = _write(tmp_path, {"mlflow": {"tracking_uri": "postgresql://me:secret@db:5432/mlflow"}})
    line = load_params(path).describe()
    assert "secret" not in line and "me:***@db" in line


# Every CLI entry point loads its params the same way and says which value won. Each is run with
# inputs that make it stop right after (no data, no checkpoint), so nothing starts.
# command -> (arguments, the path its error must name: the winner of data_root / frnet / work_dir;
# None: it stops in MLflow, whose store must then be the one under the winning work dir)
COMMANDS = {
    "align": (["align", "--dataset", "lfw"], "e-data"),
    "shards": (["shards", "--dataset", "lfw"], "s-work"),
    "train": (["train", "--alpha", "0"], "p.ckpt"),
    "evaluate": (["evaluate"], "s-work"),
    "verify": (["verify", "a.jpg", "b.jpg"], None),
    "identify": (["identify", "a.jpg", "--gallery", "nowhere"], None),
    "serve": (["serve"], None),
    "compare": (["compare", "--promote-by", "acc_14x12"], None),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_entry_point_applies_the_precedence(tmp_path, monkeypatch, capsys, command):
    from tests.conftest import REPO

    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["paths"] = {"data_root": str(tmp_path / "p-data"), "frnet_checkpoint": str(tmp_path / "p.ckpt"),
                     "work_dir": str(tmp_path / "p-work")}
    data["mlflow"]["tracking_uri"] = ""
    path = _write(tmp_path, data)
    monkeypatch.setenv("LRFACE_WORK_DIR", str(tmp_path / "e-work"))
    monkeypatch.setenv("LRFACE_DATA_ROOT", str(tmp_path / "e-data"))
    monkeypatch.setenv("LRFACE_RAY_ADDRESS", "127.0.0.1:9")
    monkeypatch.delenv("LRFACE_FRNET", raising=False)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    args, named = COMMANDS[command]
    rc = main(["--params", path, "-S", f"paths.work_dir={tmp_path / 's-work'}", "-S", "ray.address=local", *args])
    err = capsys.readouterr().err
    said = next(line for line in err.splitlines() if line.startswith(f"lrface {command}:"))
    assert f"paths.work_dir={tmp_path / 's-work'} (-S)" in said  # -S beats the env
    assert "ray.address=local (-S)" in said
    assert f"paths.data_root={tmp_path / 'e-data'} (env LRFACE_DATA_ROOT)" in said  # env beats the file
    assert f"paths.frnet_checkpoint={tmp_path / 'p.ckpt'} (params.yaml)" in said
    assert rc == 1  # and it stopped with a clear error, not a traceback
    error = next(line for line in err.splitlines() if line.startswith(f"lrface {command}: error:"))
    if named:  # the error is about the winning value's file, so the command used it
        assert str(tmp_path / named) in error, error
    else:
        assert (tmp_path / "s-work" / "mlflow.db").is_file(), error
    assert not (tmp_path / "e-work").exists() and not (tmp_path / "p-work").exists()


def test_flows_and_their_sweep_width_follow_the_same_precedence(tmp_path, monkeypatch):
    import ray

    from flows.pipeline import parallel_trainings
    from flows.tasks import params_of

    # a local Ray an earlier test in this worker left up would make init_ray refuse the switch to
    # 127.0.0.1:9 (test below) before it is tried
    if ray.is_initialized():
        ray.shutdown()
    path = _params_file(tmp_path)
    monkeypatch.setenv("LRFACE_RAY_ADDRESS", "127.0.0.1:9")
    assert params_of(path, None).get_dotted("ray.address") == "127.0.0.1:9"
    assert params_of(path, {"ray.address": "local"}).get_dotted("ray.address") == "local"
    data = yaml.safe_load(Path(path).read_text())
    data["train"] = {"num_workers": 1, "threads_per_worker": 1}
    data["orchestration"]["parallel_trainings"] = "auto"
    path = _write(tmp_path, data)
    monkeypatch.setattr("os.cpu_count", lambda: 8)  # this machine, as a local Ray would see it
    # -S: no cluster is contacted; a job asks 1 worker x 1 thread + its driver: 8 // 2
    assert parallel_trainings(path, {"ray.address": "local"}) == 4
    assert parallel_trainings(path, {"ray.address": "local", "train.threads_per_worker": 3}) == 2
    assert parallel_trainings(path, {"ray.address": "local", "train.num_workers": 8}) == 1  # at least one
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:9 does not answer"):
        parallel_trainings(path, None)  # the env's cluster address is used, and fails fast


def test_init_ray_never_switches_clusters_silently():
    """Connected by init_ray to one address, a request for another fails naming both (it used to
    keep the first: a job meant for a cluster ran on the local Ray); the same address reuses it; a
    Ray that something else connected is kept."""
    import ray

    from lrface.ray_env import init_ray

    if ray.is_initialized():
        ray.shutdown()
    try:
        init_ray("local", num_cpus=1)
        gcs = ray.get_runtime_context().gcs_address
        init_ray(None)  # empty means local: the same Ray
        assert ray.get_runtime_context().gcs_address == gcs
        with pytest.raises(RuntimeError, match=r"already connected to 'local', not to the requested "
                                               r"ray\.address '127\.0\.0\.1:9'"):
            init_ray("127.0.0.1:9")
        ray.shutdown()
        ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=1)
        init_ray("127.0.0.1:9")  # not init_ray's connection: left alone, nothing contacted
        assert ray.is_initialized() and ray.get_runtime_context().gcs_address != gcs
    finally:
        ray.shutdown()


def test_ray_workers_log_the_cleaners_state_api_warning_once():
    """Every worker of a Ray job init_ray starts runs the setup hook: Ray Train's placement-group
    cleaner, which warns every second while the State API (the dashboard) is away, warns once,
    saying what it means; its other warnings pass."""
    import ray

    from lrface.ray_env import CLEANER_LOGGER, STATE_API_DOWN, init_ray

    if ray.is_initialized():
        ray.shutdown()

    @ray.remote
    def emit() -> list[str]:
        import logging

        seen: list[str] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(record.getMessage())

        log = logging.getLogger(CLEANER_LOGGER)
        log.addHandler(Keep())
        for _ in range(3):
            log.warning(f"{STATE_API_DOWN}. State API may be temporarily unavailable. Continuing to monitor.")
        log.warning("Detected that the Ray Train controller actor (x) is dead.")
        return seen

    try:
        init_ray("local", num_cpus=1)
        seen = ray.get(emit.remote())
    finally:
        ray.shutdown()
    assert len(seen) == 2, seen
    assert seen[0].startswith(STATE_API_DOWN) and "no Ray dashboard" in seen[0]
    assert seen[1].startswith("Detected that the Ray Train controller")


def test_a_single_lfw_fold_is_refused_at_load_naming_the_param(tmp_path):
    from lrface.data.datasets import DatasetSpec
    from tests.conftest import REPO

    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["data"]["datasets"]["lfw"]["folds"] = [0]
    with pytest.raises(ValueError, match=r"data\.datasets\.lfw\.folds = \[0\].*at least 2 folds"):
        DatasetSpec.from_params(load_params(_write(tmp_path, data)), "lfw")
    data["data"]["datasets"]["lfw"]["folds"] = [0, 1]
    assert DatasetSpec.from_params(load_params(_write(tmp_path, data)), "lfw").folds == [0, 1]
