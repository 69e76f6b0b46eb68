"""A Ray cluster of two nodes on this machine (head + a second raylet, both on 127.0.0.1) and a
training job whose two workers land one on each node (placement SPREAD)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_training_workers_span_two_nodes(tiny, tmp_path):
    from ray.cluster_utils import Cluster

    from lrface.ray_env import LOOPBACK_ENV

    for k, v in LOOPBACK_ENV.items():
        os.environ.setdefault(k, v)
    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 2, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        params = yaml.safe_load(tiny.read_text())
        params["ray"] = {"address": cluster.address}
        params["train"].update(num_workers=2, placement_strategy="SPREAD", steps=4, checkpoint_every=2,
                               validate_every=4, register=False)
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params))
        out = subprocess.run([sys.executable, "-m", "lrface.cli", "--params", str(path), "train", "--alpha", "0",
                              "--name", "multinode"], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    finally:
        cluster.shutdown()
    from lrface.config import load_params

    root = load_params(path).path("work_dir") / "ray_results"
    beats = [json.loads(p.read_text()) for p in root.glob("multinode-*/heartbeat/rank*.json")]
    assert len(beats) == 2 and all(b["step"] == 4 for b in beats)
    assert len({b["node_id"] for b in beats}) == 2, beats
