"""``lrface evaluate``: LFW cross-resolution verification table and reports."""

from __future__ import annotations

import argparse

from lrface.commands import params_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", action="append", dest="methods", metavar="SPEC",
                   help="SRNet checkpoint path or models:/lrface-srnet@alias (repeatable); "
                        "default: evaluate.methods in params.yaml. hr and bicubic always run.")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from lrface.eval.report import table_markdown
    from lrface.eval.run import evaluate_lfw

    out = evaluate_lfw(params_from_args(args), args.methods, progress=not args.no_progress)
    print(table_markdown(out.results))
    print(f"reports: {out.out_dir}")
    return 0
