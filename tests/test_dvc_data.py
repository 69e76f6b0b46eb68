"""`dvc repro` of the data stages in a temporary copy of the repo, on a real-data subset."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SHARED

pytestmark = pytest.mark.slow


def _sh(cmd, cwd, **kw):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=True, **kw)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def test_data_stages_are_cached_and_rerun_selectively(tmp_path):
    repo = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if f == "dvc.lock":
            continue
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, repo / f)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["paths"]["data_root"] = str(SHARED / "data")
    params["data"]["rows_per_shard"] = 50
    params["data"]["datasets"]["lfw"].update(folds=[0], limit=40, reference_landmarks=None)
    params["data"]["datasets"]["train"].update(limit=40)
    params["align"]["workers"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _sh("git init -q && git add -A && git -c user.email=t@t -c user.name=t commit -qm init", repo)
    stages = "shards@lfw shards@train"
    _sh(f"dvc repro {stages}", repo, timeout=900)
    for ds in ("lfw", "train"):
        manifest = yaml.safe_load((repo / "data" / ds / "shards" / "manifest.json").read_text())
        c = manifest["counts"]
        assert c["in"] == 40 and c["in"] == c["aligned"] + c["rejected"]
    again = _sh(f"dvc repro {stages}", repo)
    assert "didn't change" in again and "Running stage" not in again
    params["degrade"]["kernel"] = "bilinear"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = _sh("dvc status", repo)
    assert "shards@lfw" in status and "shards@train" in status
    assert "align@lfw" not in status and "align@train" not in status
    rerun = _sh(f"dvc repro {stages}", repo, timeout=900)
    assert "Running stage 'shards@lfw'" in rerun and "Running stage 'align@lfw'" not in rerun
