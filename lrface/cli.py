"""The ``lrface`` command line: one entry point, one sub-command per pipeline step.

Every sub-command module is imported to build the parser, so each keeps its heavy imports (torch
models, Ray, MLflow) inside its run functions: ``lrface --help`` stays fast and ``import lrface``
pulls in no orchestration dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# name -> (module, run function, help); the argument function is add_arguments unless ARGUMENTS says.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "info": ("lrface.commands.info", "run", "show the configured SRNet and FRNet: parameters, size"),
    "align": ("lrface.commands.data", "run_align", "detect and align the faces of a dataset (Ray)"),
    "shards": ("lrface.commands.data", "run_shards", "degrade aligned faces and write Parquet shards"),
    "train": ("lrface.commands.train", "run", "train SRNet with the joint loss on Ray Train"),
    "evaluate": ("lrface.commands.evaluate", "run", "LFW cross-resolution verification table and reports"),
    "compare": ("lrface.commands.compare", "run", "compare registered SRNet versions; promote a champion"),
    "verify": ("lrface.commands.infer", "run_verify", "are the faces in two images the same person?"),
    "identify": ("lrface.commands.infer", "run_identify", "who in a gallery folder is the face in an image?"),
    "export": ("lrface.commands.infer", "run_export", "export SRNet and FRNet to ONNX, checked against torch"),
    "serve": ("lrface.commands.serve", "run", "serve face verification over HTTP on 127.0.0.1 (MLflow)"),
}
# Modules whose argument function is not called add_arguments.
ARGUMENTS = {"verify": "add_verify_arguments", "identify": "add_identify_arguments",
             "export": "add_export_arguments"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrface",
        description="Low-resolution face recognition by identity-preserving super-resolution.",
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    parser.add_argument(
        "-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a param, e.g. -S model.n_blocks=4 (YAML value syntax; repeatable)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, _, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _load(module, ARGUMENTS.get(name, "add_arguments"))(p)
    return parser


def _load(module: str, attr: str) -> Callable:
    return getattr(importlib.import_module(module), attr)


def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    import yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"lrface: bad override {item!r}, expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    args.override_map = parse_overrides(args.overrides)
    try:
        module, func, _ = COMMANDS[args.command]
        return int(_load(module, func)(args) or 0)
    except _user_errors() as e:
        print(f"lrface {args.command}: error: {e}", file=sys.stderr)
        return 1


def _user_errors() -> tuple[type[BaseException], ...]:
    """What a command reports as one line instead of a traceback: files, storage and connections
    (OSError), bad values, failed runs, and the tracking server's answers (MlflowException: an
    unreachable server, a missing model or alias), the latter only once a command has loaded
    MLflow, so commands without it never import it."""
    errors: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError)
    mlflow_errors = sys.modules.get("mlflow.exceptions")
    return errors + (mlflow_errors.MlflowException,) if mlflow_errors else errors


if __name__ == "__main__":
    sys.exit(main())
