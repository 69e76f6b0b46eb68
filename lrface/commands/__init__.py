"""CLI sub-commands: ``lrface.cli.COMMANDS`` names each one's argument function and runner
(``add_arguments`` / ``run`` by default)."""

from __future__ import annotations

import argparse

from lrface.config import Params, load_params


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Which SRNet, and which thresholds decide: shared by verify, identify and serve."""
    from lrface.protocols import PROTOCOLS

    p.add_argument("--srnet", default="", metavar="SPEC",
                   help="SRNet checkpoint path or models:/lrface-srnet@alias (default: inference.srnet)")
    p.add_argument("--bicubic", action="store_true", help="no SRNet: small faces are upscaled bicubically")
    p.add_argument("--threshold", type=float, help="fixed decision threshold instead of the evaluation's")
    p.add_argument("--protocol", choices=PROTOCOLS,
                   help="whose thresholds: the clean LFW protocol's or the surveillance one's, for camera "
                        "footage (default: inference.protocol)")


def bad_input_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the input is wrong" (a bad shard, checkpoint, pairs file or storage
    setting, a NaN loss): running the same command again cannot help."""
    from lrface.checkpoints import CheckpointError
    from lrface.data.shards import ShardError
    from lrface.data.sources import PairsFileError
    from lrface.storage import StorageError
    from lrface.train.step import NonFiniteLossError

    return (FileNotFoundError, ValueError, KeyError, TypeError, CheckpointError, ShardError, PairsFileError,
            NonFiniteLossError, StorageError)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def params_from_args(args: argparse.Namespace) -> Params:
    """The merged params (``-S`` > environment > params.yaml); says on stderr what came from where."""
    import sys

    params = load_params(args.params, getattr(args, "override_map", None))
    print(f"lrface {getattr(args, 'command', '')}: {params.describe()}", file=sys.stderr)
    return params
