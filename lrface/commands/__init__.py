"""CLI sub-commands: each module has ``add_arguments(parser)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse

from lrface.config import Params, load_params


def permanent_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the input is wrong" (bad shard, checkpoint, pairs file, storage, a NaN
    loss): retrying the same command cannot help."""
    from lrface.checkpoints import CheckpointError
    from lrface.data.shards import ShardError
    from lrface.data.sources import PairsFileError
    from lrface.storage import StorageError
    from lrface.train.step import NonFiniteLossError

    return (FileNotFoundError, ValueError, KeyError, TypeError, CheckpointError, ShardError, PairsFileError,
            NonFiniteLossError, StorageError)


def params_from_args(args: argparse.Namespace) -> Params:
    """The merged params (``-S`` > environment > params.yaml); says on stderr what came from where."""
    import sys

    params = load_params(args.params, getattr(args, "override_map", None))
    print(f"lrface {getattr(args, 'command', '')}: {params.describe()}", file=sys.stderr)
    return params
