"""``lrface evaluate``: the LFW cross-resolution table for hr, bicubic and any SRNets, with reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrface import storage
from lrface.allocator import keep_freed_memory
from lrface.checkpoints import load_frnet
from lrface.config import Params
from lrface.data.datasets import DatasetSpec, data_path, open_shards
from lrface.data.degrade import DegradeConfig
from lrface.data.tensors import png_to_tensor
from lrface.eval import report
from lrface.eval.config import EvaluateConfig
from lrface.eval.lfw import LfwEvaluator, Result, load_lfw
from lrface.eval.methods import load_restorer
from lrface.eval.probes import Probes, probes_for
from lrface.hashing import sha256_file
from lrface.losses import LossConfig
from lrface.models import model_size
from lrface.models.precision import resolve_precision
from lrface.models.summary import weights_digest
from lrface.restoration import Restorer, SRNetRestorer
from lrface.viz import sr_grid


@dataclass
class EvalOutput:
    results: list[Result]
    out_dir: Path
    files: dict[str, Path]
    metrics: dict[str, Any]
    run_ids: dict[str, str]


def evaluate_lfw(params: Params, methods: list[str] | None = None, progress: bool = True,
                 track: bool = True) -> EvalOutput:
    """Run the LFW protocol for ``hr``, ``bicubic`` and every method spec; write all reports."""
    keep_freed_memory()  # FRNet's batches free and re-allocate the same large maps
    cfg = EvaluateConfig.from_dict(params.section("evaluate"))
    ws = params.workspace()
    storage.check(ws.uri)
    if ws.remote:  # what this driver reads: the models' summaries and the feature cache
        ws.pull("models", missing_ok=True)
        ws.pull("cache/features", missing_ok=True)
    specs = expand_methods(params, list(methods if methods is not None else cfg.methods))
    if "bicubic" not in specs:
        specs.insert(0, "bicubic")
    isr = LossConfig.from_dict(params.section("loss")).isr_resize
    if track or any(s.startswith(("models:/", "runs:/")) for s in specs):
        from lrface.tracking import setup_mlflow

        setup_mlflow(params)  # before resolving models:/ URIs against the registry
    restorers: list[Restorer] = [load_restorer(s, isr) for s in specs]
    frnet_path = params.path("frnet_checkpoint")
    frnet = load_frnet(frnet_path, precision=resolve_precision(params.get_dotted("frnet.precision", "auto")))
    frnet_sha = sha256_file(frnet_path)
    spec = DatasetSpec.from_params(params, cfg.dataset)
    shards = open_shards(params, spec.name)
    data = load_lfw(shards, data_path(params, spec.pairs), spec.folds)
    out = params.path("work_dir") / cfg.out_dir
    ev = LfwEvaluator(frnet, data, f"{frnet_sha}-{frnet.precision}", cache_dir=params.path("work_dir") / "cache" / "features",
                      batch_size=cfg.batch_size, progress=progress, dataset=spec.name)

    degrade = DegradeConfig.from_dict(params.get("degrade"))
    results = [ev.evaluate_hr()]
    for protocol in cfg.protocols:  # clean probes (the paper's), then the camera chain's
        pev = ev.with_probes(probes_for(protocol, degrade.surveillance, degrade.kernel))
        for size in cfg.sizes:
            for r in restorers:
                results.append(pev.evaluate(r, size))  # features cached by the model's weights digest
        if cfg.both_lr:  # both faces low-resolution: calibrates LR-vs-LR verification
            for size in cfg.sizes:
                for r in restorers:
                    results.append(pev.evaluate_both_lr(r, size))
    files = report.write_tables(results, out)
    for i, p in enumerate(report.plot_rocs(results, out)):
        files[f"roc{i}"] = p
    for protocol in cfg.protocols if cfg.grid_pairs else ():  # sr_grid.png, sr_grid_surveillance.png
        probes = probes_for(protocol, degrade.surveillance, degrade.kernel)
        name = "sr_grid.png" if protocol == "clean" else f"sr_grid_{protocol}.png"
        files[f"grid_{protocol}"] = _grid(data, restorers, cfg, probes, out / name)
    complexity = _complexity(frnet, restorers, list(cfg.timing_batches))
    files["complexity"] = out / "complexity.json"
    files["complexity"].write_text(json.dumps(complexity, indent=2) + "\n")
    metrics = {**report.metrics_by_protocol(results), "pairs": len(data.pairs),
               "manifest_sha256": data.manifest_sha256}
    run_ids: dict[str, str] = {}
    if track:
        from lrface.eval.registry import log_evaluation

        uris = {r.name: r.uri for r in restorers if getattr(r, "uri", None)}
        digests = {r.name: weights_digest(r.model).hexdigest() for r in restorers if isinstance(r, SRNetRestorer)}
        run_ids = log_evaluation(results, files, data.manifest_sha256, frnet_sha, spec.name, uris, digests,
                                 frnet.precision)
        metrics["mlflow_runs"] = run_ids
        if cfg.promote_by:  # so `lrface verify` has a champion right after `dvc repro`
            from lrface.eval.registry import promote

            try:
                metrics["promotion"] = promote(cfg.promote_by)
            except ValueError as e:  # no evaluated version has that metric (e.g. size not evaluated)
                metrics["promotion"] = {"skipped": str(e)}
    files["metrics"] = params.path("work_dir") / cfg.metrics_file
    files["metrics"].write_text(json.dumps(metrics, indent=2) + "\n")
    ws.remove(cfg.metrics_file)  # the old one must not vouch for new reports
    ws.push(cfg.out_dir)
    ws.push("cache/features", skip_existing=True)
    ws.push(cfg.metrics_file)  # last: the evaluation is complete
    return EvalOutput(results, out, files, metrics, run_ids)


def expand_methods(params: Params, specs: list[str]) -> list[str]:
    """``trained`` -> the model of each ``train.sweep`` alpha under ``<work_dir>/models``: its registered
    version (``models:/lrface-srnet/N``) when it has one, else its checkpoint path."""
    out: list[str] = []
    for spec in specs:
        if spec != "trained":
            out.append(spec)
            continue
        from lrface.locations import model_dir, run_name, sweep_of

        for alpha in sweep_of(params.section("train")):
            d = model_dir(params, run_name(params.get_dotted("train.name"), float(alpha)))
            summary = d / "train_summary.json"
            if not summary.is_file():
                raise FileNotFoundError(f"no trained model for alpha={alpha}: {summary} (run lrface train)")
            version = json.loads(summary.read_text()).get("model_version")
            out.append(f"models:/lrface-srnet/{version}" if version else str(d / "srnet.pt"))
    return out


def _grid(data, restorers, cfg, probes: Probes, path: Path) -> Path:
    n = cfg.grid_pairs
    # fixed, spread-out probes: the first same-identity pair of each of the first n folds
    picks = [next(i for i, p in enumerate(data.pairs) if p.fold == f and p.same)
             for f in sorted({p.fold for p in data.pairs})[:n]]
    rows = data.probe_rows[picks]
    hr = png_to_tensor([data.table.column("hr_png")[int(i)].as_py() for i in rows])
    shown = [s for s in ("7x6", "14x12", "28x24") if s in cfg.sizes] or list(cfg.sizes)
    lr = {s: probes.faces(data.table, rows, s) for s in shown}
    return sr_grid(hr, lr, [(r.name, r) for r in restorers], path)


def _complexity(frnet, restorers: list[Restorer], batches: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"frnet": _size(frnet.net), "methods": {}}
    for r in restorers:
        entry = {f"ms_per_pair@28x24_batch{b}": round(report.ms_per_pair(frnet, r, b), 3) for b in batches}
        if isinstance(r, SRNetRestorer):
            entry.update(_size(r.model))
        out["methods"][r.name] = entry
    return out


def _size(m) -> dict[str, Any]:
    s = model_size(m)
    return {"params": s.params, "mb": round(s.megabytes, 3)}
