"""Evaluation reports: the methods x resolutions table (Markdown, CSV, JSON), ROC curves and
an SR comparison grid (PNG), and the complexity numbers (sizes, ms per verified pair)."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrface.eval.lfw import Result
from lrface.eval.verification import threshold_at_far
from lrface.protocols import DECISION_FARS
from lrface.restoration import Restorer, flip_features
from lrface.sizes import HR_SIZE, both_lr, is_both_lr

LR_ORDER = ["7x6", "14x12", "16x16", "28x24"]
SIZE_ORDER = [*LR_ORDER, HR_SIZE, *[both_lr(s) for s in LR_ORDER]]


def _sizes(results: Sequence[Result]) -> list[str]:
    present = {r.size for r in results}
    return [s for s in SIZE_ORDER if s in present] + sorted(present - set(SIZE_ORDER))


def _methods(results: Sequence[Result]) -> list[str]:
    return list(dict.fromkeys(r.method for r in results))


def table_markdown(results: Sequence[Result], both_low: bool = False, meansub: bool = False) -> str:
    """Accuracy (mean +- std over 10 folds, %) per method and probe resolution: the paper's
    protocol (gallery 112x96), or with ``both_low`` the cells where both faces were low-resolution;
    plain cosine, or with ``meansub`` the authors' mean-subtracted scoring."""
    results = [r for r in results if is_both_lr(r.size) == both_low]
    sizes, cell = _sizes(results), {(r.method, r.size): r for r in results}
    lines = ["| method | " + " | ".join(sizes) + " |", "|---|" + "---|" * len(sizes)]

    def fmt(r: Result) -> str:
        mean, std = (r.acc_meansub, r.acc_meansub_std) if meansub else (r.acc, r.acc_std)
        return f"{100 * mean:.2f} ± {100 * std:.2f}"

    for m in _methods(results):
        row = [fmt(cell[m, s]) if (m, s) in cell else "—" for s in sizes]
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


PROTOCOL_TEXT = {  # protocol -> (heading, what its table shows)
    "lfw": ("LFW cross-resolution verification",
            "LFW View-2 10-fold accuracy (%), gallery 112x96, probe at each resolution (bicubic downsampling of "
            "the aligned face); pairs scored by plain cosine of flip-concat features, as `lrface verify` scores them"),
    "lfw_surv": ("LFW surveillance protocol",
                 "The same pairs and scoring, each probe through the camera chain (degrade.surveillance: colour "
                 "cast, Gaussian/motion blur, downsampling, sensor noise, JPEG; one fixed seeded draw per image "
                 "and size): what camera footage looks like. The hr row is the clean 112x96 reference"),
}


def protocol_text(protocol: str) -> tuple[str, str]:
    """(heading, description) of a protocol's tables."""
    return PROTOCOL_TEXT.get(protocol, (protocol, f"{protocol}: 10-fold accuracy (%), plain cosine"))


def by_protocol(results: Sequence[Result]) -> dict[str, list[Result]]:
    """Results per protocol (``lfw``, ``lfw_surv``), each led by the hr reference row."""
    hr = [r for r in results if r.method == "hr"]
    out: dict[str, list[Result]] = {}
    for r in results:
        if r.method != "hr":
            out.setdefault(r.protocol, list(hr)).append(r)
    return out or ({hr[0].protocol: hr} if hr else {})


def write_tables(results: Sequence[Result], out: Path) -> dict[str, Path]:
    """``<protocol>_table.md`` / ``.csv`` and ``<protocol>_results.json`` for each protocol."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for protocol, rs in by_protocol(results).items():
        paths.update(_write_protocol(protocol, rs, out))
    return paths


def _write_protocol(protocol: str, results: Sequence[Result], out: Path) -> dict[str, Path]:
    tag = "" if protocol == "lfw" else f"_{protocol}"
    paths = {f"md{tag}": out / f"{protocol}_table.md", f"csv{tag}": out / f"{protocol}_table.csv",
             f"json{tag}": out / f"{protocol}_results.json"}
    text = protocol_text(protocol)[1] + "\n\n" + table_markdown(results)
    if any(is_both_lr(r.size) for r in results):
        text += ("\nBoth faces of each pair at the low resolution (e.g. two faces from the same footage)\n\n"
                 + table_markdown(results, both_low=True))
    text += ("\nThe same features scored by the MobileFaceNet authors' recipe (subtract the mean feature of "
             "the 9 threshold folds, then cosine), for comparison with the seed paper\n\n"
             + table_markdown(results, meansub=True))
    paths[f"md{tag}"].write_text(text)
    with open(paths[f"csv{tag}"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "size", "acc", "acc_std", "acc_meansub", "acc_meansub_std", "auc", "tar@far=1e-3"])
        for r in results:
            w.writerow([r.method, r.size, f"{r.acc:.6f}", f"{r.acc_std:.6f}", f"{r.acc_meansub:.6f}",
                        f"{r.acc_meansub_std:.6f}", f"{r.auc:.6f}", f"{r.tar_at_far_1e3:.6f}"])
    paths[f"json{tag}"].write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return paths


def result_metrics(r: Result) -> dict[str, float]:
    """Metric names of one cell, e.g. ``acc_14x12`` (plain cosine, the primary figure) and
    ``acc_meansub_14x12`` (the authors' recipe); MLflow allows no '@' in names.

    ``thr_far1e-3_<size>`` is the raw-cosine threshold that accepts at most 0.1 % of the impostor
    pairs: what inference uses to decide same/different at a stated FAR."""
    out = {f"acc_{r.size}": round(r.acc, 6), f"acc_std_{r.size}": round(r.acc_std, 6),
           f"acc_meansub_{r.size}": round(r.acc_meansub, 6), f"acc_meansub_std_{r.size}": round(r.acc_meansub_std, 6),
           f"auc_{r.size}": round(r.auc, 6), f"tar_far1e-3_{r.size}": round(r.tar_at_far_1e3, 6)}
    for far in DECISION_FARS:
        out[f"thr_far{far:.0e}_{r.size}".replace("e-0", "e-")] = round(threshold_at_far(r.roc, far), 6)
    return out


def metrics_by_protocol(results: Sequence[Result]) -> dict[str, Any]:
    """``{"lfw": {method: {...}}, "lfw_surv": {...}}``: hr only under its own protocol (``lfw``)."""
    out: dict[str, Any] = {}
    for r in results:
        out.setdefault(r.protocol, {}).setdefault(r.method, {}).update(result_metrics(r))
    return out


def plot_rocs(results: Sequence[Result], out: Path) -> list[Path]:
    """One ROC figure per probe resolution, every method on it (log FAR axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for protocol, rs in by_protocol(results).items():
        paths += _plot_protocol_rocs(protocol, rs, out, plt)
    return paths


def _plot_protocol_rocs(protocol: str, results: Sequence[Result], out: Path, plt) -> list[Path]:
    hr = [r for r in results if r.method == "hr"]
    name = "LFW" if protocol == "lfw" else protocol.replace("lfw_surv", "LFW surveillance")
    tag = "" if protocol == "lfw" else f"{protocol.removeprefix('lfw_')}_"
    paths = []
    for size in [s for s in _sizes(results) if s != HR_SIZE]:
        fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
        for r in [*hr, *[r for r in results if r.size == size]]:
            ax.plot(np.maximum(r.roc.fpr, 1e-4), r.roc.tpr, label=f"{r.method} (AUC {r.auc:.3f})")
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false accept rate")
        ax.set_ylabel("true accept rate")
        ax.set_title(f"{name}, both faces {size.split('-')[0]}" if is_both_lr(size)
                     else f"{name}, probe {size} -> 112x96")
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        path = out / f"roc_{tag}{size}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def ms_per_pair(frnet, restorer: Restorer, batch: int, repeats: int = 3, size=(28, 24)) -> float:
    """Wall ms per verified pair: restore the probe, embed probe and gallery (with flips), compare."""
    probe = torch.rand(batch, 3, *size)
    gallery = torch.rand(batch, 3, 112, 96)

    def once() -> None:
        with torch.inference_mode():
            a = frnet.embed_flip(gallery)
            b = flip_features(frnet, probe, restorer)
            torch.nn.functional.cosine_similarity(a, b)

    once()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times)) / batch
