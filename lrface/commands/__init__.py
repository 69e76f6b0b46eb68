"""CLI sub-commands: each module has ``add_arguments(parser)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse

from lrface.config import Params, load_params


def params_from_args(args: argparse.Namespace) -> Params:
    return load_params(args.params, getattr(args, "override_map", None))
