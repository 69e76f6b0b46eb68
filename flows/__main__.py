"""Run an lrface Prefect flow from the command line (what every DVC stage calls).

    python -m flows prepare --dataset lfw --steps align
    python -m flows init
    python -m flows train --alpha 0.5 [-S train.steps=200]
    python -m flows evaluate
    python -m flows pipeline [--alphas 0,0.5]

Without ``PREFECT_API_URL`` the flow runs against an ephemeral local Prefect; with it, against
that server (and shows up in its UI). Exit status: 0 on success, 1 if the flow failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a params.yaml value (dotted key), e.g. -S train.steps=20")
    sub = ap.add_subparsers(dest="flow", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--dataset", required=True)
    p.add_argument("--steps", default="align,shards")
    sub.add_parser("init")
    p = sub.add_parser("train")
    p.add_argument("--alpha", type=float, required=True)
    p = sub.add_parser("evaluate")
    p.add_argument("--dataset", help="the dataset to evaluate on (sets evaluate.dataset; default: params)")
    p = sub.add_parser("pipeline")
    p.add_argument("--alphas", default=None, help="comma-separated; default: the alphas of train.sweep")
    args = ap.parse_args(argv)

    import os

    from lrface.cli import parse_overrides
    from lrface.config import load_params, mark_process_env
    from lrface.schema import typed_section

    params_path = str(Path(args.params).resolve())
    overrides = parse_overrides(args.set) or None
    if args.flow == "evaluate" and args.dataset:
        overrides = {**(overrides or {}), "evaluate.dataset": args.dataset}
    params = load_params(params_path, overrides)  # -S > env > params.yaml, as every entry point
    print(f"python -m flows {args.flow}: {params.describe()}", file=sys.stderr)
    api = params.get_dotted("orchestration.prefect_api_url")
    if api:  # before Prefect reads its settings
        os.environ["PREFECT_API_URL"] = str(api)
        mark_process_env("PREFECT_API_URL", str(api))
    elif params.source("orchestration.prefect_api_url") == "-S":  # -S ...= clears the env's server
        os.environ.pop("PREFECT_API_URL", None)

    from flows import pipeline as f

    if args.flow == "prepare":
        state = f.prepare(args.dataset, params_path, overrides, steps=args.steps.split(","),
                          return_state=True)
    elif args.flow == "init":
        state = f.init_model(params_path, overrides, return_state=True)
    elif args.flow == "train":
        state = f.train(args.alpha, params_path, overrides, return_state=True)
    elif args.flow == "evaluate":
        state = f.evaluate(params_path, overrides, typed_section(params, "evaluate").dataset, return_state=True)
    else:
        alphas = [float(a) for a in args.alphas.split(",")] if args.alphas else None
        state = f.pipeline(params_path, overrides, alphas, return_state=True)
    if not state.is_completed():
        print(f"flow {args.flow} ended {state.type.value}: {state.message}", file=sys.stderr)
        try:
            state.result()
        except Exception as e:  # the original error, named
            print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    result = state.result()
    if args.flow == "evaluate":
        print(result["table"])
    else:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
