"""Where MLflow runs and registered models go (real SQLite stores in temporary dirs)."""

import os
import subprocess
import sys

import yaml

from lrface.config import load_params
from lrface.tracking import setup_mlflow
from tests.servers import child_env


def _params(tmp_path, name):
    path = tmp_path / name / "params.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"paths": {"work_dir": "data"}}))
    return load_params(path)


def test_second_setup_follows_its_own_params(tmp_path, monkeypatch):
    """MLflow copies the URIs into the env; a later setup with other params must not inherit them."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    setup_mlflow(_params(tmp_path, "a"))
    setup_mlflow(_params(tmp_path, "b"))
    want = f"sqlite:///{tmp_path / 'b' / 'data' / 'mlflow.db'}"
    assert mlflow.get_tracking_uri() == want and mlflow.get_registry_uri() == want


def test_user_env_wins_and_registry_follows_tracking(tmp_path, monkeypatch):
    import mlflow

    user = f"sqlite:///{tmp_path / 'user.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", user)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    for name in ("a", "b"):  # twice: the user's value stays the user's
        setup_mlflow(_params(tmp_path, name))
        assert mlflow.get_tracking_uri() == user and mlflow.get_registry_uri() == user
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry)
    setup_mlflow(_params(tmp_path, "c"))
    assert mlflow.get_tracking_uri() == user and mlflow.get_registry_uri() == registry


def test_child_env_drops_inherited_uris(tmp_path, monkeypatch):
    """A subprocess for another work dir, started after this process set up MLflow, uses its own."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    setup_mlflow(_params(tmp_path, "a"))
    other = _params(tmp_path, "b")
    code = ("import mlflow, sys; from lrface.config import load_params; from lrface.tracking import setup_mlflow;"
            f"setup_mlflow(load_params({str(other.base_dir / 'params.yaml')!r}));"
            "print(mlflow.get_registry_uri())")
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith(str(tmp_path / "b" / "data" / "mlflow.db"))


def test_env_restored_to_an_earlier_setup_is_not_a_user_override(tmp_path, monkeypatch):
    """A: params; then a user's URI for a while; the env goes back to A's; B must follow B's params."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    setup_mlflow(_params(tmp_path, "a"))
    with monkeypatch.context() as m:
        m.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'user.db'}")
        setup_mlflow(_params(tmp_path, "u"))
    assert os.environ["MLFLOW_TRACKING_URI"].endswith(str(tmp_path / "a" / "data" / "mlflow.db"))
    setup_mlflow(_params(tmp_path, "b"))
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'b' / 'data' / 'mlflow.db'}"
