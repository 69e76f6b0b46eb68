"""``lrface evaluate``: LFW cross-resolution verification table and reports."""

from __future__ import annotations

import argparse
from typing import Any

from lrface.commands import params_from_args
from lrface.config import Params


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", action="append", dest="methods", metavar="SPEC",
                   help="SRNet checkpoint path or models:/lrface-srnet@alias (repeatable); "
                        "default: evaluate.methods in params.yaml. hr and bicubic always run.")
    p.add_argument("--no-progress", action="store_true")


def evaluate(params: Params, methods: list[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the LFW evaluation; per protocol (``lfw``, ``lfw_surv``) its tables (plain cosine,
    both-low, the authors' mean-subtracted scoring), plus the MLflow runs, reports folder and
    metrics. ``table`` & co. are the clean protocol's (the paper's)."""
    from lrface.eval.report import by_protocol, protocol_text, table_markdown
    from lrface.eval.run import evaluate_lfw
    from lrface.sizes import is_both_lr

    out = evaluate_lfw(params, methods, progress=progress)
    tables = {}
    for protocol, rs in by_protocol(out.results).items():
        both_low = any(is_both_lr(r.size) for r in rs)
        heading, intro = protocol_text(protocol)
        tables[protocol] = {"heading": heading, "intro": intro, "table": table_markdown(rs),
                            "table_both_low": table_markdown(rs, both_low=True) if both_low else "",
                            "table_meansub": table_markdown(rs, meansub=True)}
    first = tables.get("lfw") or next(iter(tables.values()))
    return {**first, "tables": tables, "runs": out.run_ids, "reports": str(out.out_dir), "metrics": out.metrics}


def run(args: argparse.Namespace) -> int:
    result = evaluate(params_from_args(args), args.methods, progress=not args.no_progress)
    for protocol, t in result["tables"].items():
        print(f"{protocol}:\n{t['table']}")
    print(f"reports: {result['reports']}")
    return 0
