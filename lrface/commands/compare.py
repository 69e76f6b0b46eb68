"""``lrface compare``: the evaluation table across registered SRNet versions (and hr/bicubic)."""

from __future__ import annotations

import argparse
import json

from lrface.commands import params_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metric", default="acc", help="acc, auc or tar_far1e-3 (default: %(default)s)")
    p.add_argument("--promote-by", metavar="METRIC",
                   help="move the alias to the best version by METRIC (e.g. acc_14x12, or "
                        "lfw_surv/acc_14x12 for the surveillance protocol), "
                        "only if it beats the alias's current version")
    p.add_argument("--alias", default="champion")


def run(args: argparse.Namespace) -> int:
    from lrface.eval.registry import comparison, comparison_markdown, promote
    from lrface.tracking import setup_mlflow

    setup_mlflow(params_from_args(args))
    for protocol, title in (("lfw", "LFW (clean probes)"), ("lfw_surv", "LFW surveillance protocol")):
        rows = comparison(f"{protocol}/")
        if protocol == "lfw" or any(r.metrics for r in rows if r.label not in ("hr",)):
            print(f"{title}, {args.metric}:\n{comparison_markdown(rows, args.metric)}")
    if args.promote_by:
        print(json.dumps(promote(args.promote_by, args.alias), indent=2))
    return 0
