import json
import subprocess
import sys

from tests.conftest import REPO


def _run(*args, **kw):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, **kw)


def test_import_lrface_pulls_no_orchestration():
    code = (
        "import sys, lrface, lrface.models, lrface.losses, lrface.checkpoints, lrface.cli, lrface.config;"
        "bad=[m for m in ('prefect','dvc','ray','mlflow','flows') if m in sys.modules];"
        "print(bad)"
    )
    out = _run("-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_help_lists_commands():
    out = _run("-m", "lrface.cli", "--help")
    assert out.returncode == 0
    assert "info" in out.stdout


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
