"""``lrface serve``: package the configured verifier as an MLflow model and serve it on 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from lrface.commands import add_model_arguments, params_from_args, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=5001)
    add_model_arguments(p)
    p.add_argument("--model-uri", help="serve this logged verifier (models:/lrface-verifier/N) as it is")
    p.add_argument("--workers", type=positive_int, default=1)


def run(args: argparse.Namespace) -> int:
    import mlflow

    from lrface.tracking import setup_mlflow

    params = params_from_args(args)
    setup_mlflow(params)
    uri = args.model_uri
    if uri is None:
        from lrface.checkpoints import save_srnet
        from lrface.inference import load_verifier
        from lrface.inference.serving import log_verifier

        v = load_verifier(params, None if args.bicubic else args.srnet, args.threshold, args.protocol)
        if not v.thresholds and v.config.threshold is None:  # it would answer every request with an error
            raise ValueError(f"no thresholds for {v.model_name}: evaluate it first (lrface evaluate), or pass "
                             "--threshold")
        with tempfile.TemporaryDirectory() as d:
            srnet_path = save_srnet(v.srnet, Path(d) / "srnet.pt") if v.srnet is not None else None
            uri = log_verifier(v, srnet_path, params.path("frnet_checkpoint"))
        print(f"logged {uri} ({v.model_name}; thresholds {v.thresholds or f'fixed {v.config.threshold:g}'})",
              flush=True)
    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    cmd = [mlflow_bin, "models", "serve", "-m", uri, "--env-manager", "local", "-h", args.host,
           "-p", str(args.port), "-w", str(args.workers)]
    print(f"serving {uri} on http://{args.host}:{args.port}/invocations", flush=True)
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs uvicorn from PATH: this venv's
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(), "MLFLOW_REGISTRY_URI": mlflow.get_registry_uri()}
    os.execvpe(cmd[0], cmd, env)
