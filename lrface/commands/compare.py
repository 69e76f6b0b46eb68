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
    import mlflow

    from lrface.config import redact
    from lrface.eval.registry import comparison, comparison_markdown, promote
    from lrface.eval.report import protocol_text
    from lrface.protocols import PROTOCOLS, protocol_name
    from lrface.schema import typed_section
    from lrface.tracking import setup_mlflow

    params = params_from_args(args)
    setup_mlflow(params)
    uri = redact(mlflow.get_tracking_uri())
    dataset = typed_section(params, "evaluate").dataset
    for protocol in PROTOCOLS:
        name = protocol_name(dataset, protocol)
        rows = [r for r in comparison(f"{name}/") if r.metrics or protocol == "clean"]
        if protocol == "clean" and not rows:
            print(f"no evaluation runs and no registered SRNet versions in {uri}: run `lrface evaluate` "
                  "(or `dvc repro`) against this tracking URI first")
        elif protocol == "clean" or rows:
            print(f"{protocol_text(name)[0]} ({name}/{args.metric}_*):\n{comparison_markdown(rows, args.metric)}")
    if args.promote_by:
        print(json.dumps(promote(args.promote_by, args.alias), indent=2))
    return 0
