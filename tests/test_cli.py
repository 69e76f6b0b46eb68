import json
import subprocess
import sys

from tests.conftest import REPO
from tests.servers import child_env


def _run(*args, **kw):
    """The CLI as a user starts it: no MLflow URI or experiment that this test process set up."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=child_env(), **kw)


def test_import_lrface_pulls_no_orchestration():
    """Loading params (every stage does) checks every section, and must pull in no orchestration,
    and no inference layer either (the align and shards stages load params too)."""
    code = (
        "import sys, lrface, lrface.models, lrface.losses, lrface.checkpoints, lrface.cli, lrface.config;"
        "lrface.config.load_params('params.yaml');"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('prefect','dvc','ray','mlflow','flows')"
        " or (m.startswith('lrface.inference.') and m != 'lrface.inference.config')];"
        "print(sorted(bad))"
    )
    out = _run("-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_inference_package_exports_resolve_lazily():
    import importlib

    import lrface.inference as inference

    assert sorted(inference.__all__) == sorted(inference._HOME)
    for name, home in inference._HOME.items():
        assert getattr(inference, name) is getattr(importlib.import_module(f"lrface.inference.{home}"), name)
    try:
        inference.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("an unknown name resolved")


def test_help_lists_every_command():
    from lrface.cli import COMMANDS

    out = _run("-m", "lrface.cli", "--help")
    assert out.returncode == 0
    assert all(name in out.stdout for name in COMMANDS)


def test_identify_refuses_a_top_k_below_one():
    out = _run("-m", "lrface.cli", "identify", "probe.jpg", "--gallery", "g", "--top-k", "0")
    assert out.returncode == 2 and "--top-k" in out.stderr and "expected an integer >= 1" in out.stderr


def test_info_reports_sizes():
    out = _run("-m", "lrface.cli", "info", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["frnet"]["params"] == 999_552
    assert 0 < info["srnet"]["params"] <= 2_000_000


def test_override_and_clear_error_for_missing_checkpoint():
    out = _run("-m", "lrface.cli", "-S", "model.n_blocks=2", "info", "--json")
    assert json.loads(out.stdout)["srnet"]["config"]["n_blocks"] == 2
    out = _run("-m", "lrface.cli", "-S", "paths.frnet_checkpoint=/nonexistent/x.ckpt", "info")
    assert out.returncode == 1
    assert "/nonexistent/x.ckpt" in out.stderr


def test_compare_on_an_empty_store_says_so(tmp_path):
    """No evaluations in the tracking store: one line saying what to run, not an empty table."""
    done = _run("-m", "lrface.cli", "-S", f"paths.work_dir={tmp_path}", "compare")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "no evaluation runs and no registered SRNet versions" in out and "| model |" not in out
