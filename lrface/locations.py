"""Where stage outputs live under ``paths.work_dir``: one owner for the layout that training writes
and evaluation, inference and the flows read (so none of them imports another's code for it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: config imports the section owners (through schema) that read these names
    from lrface.config import Params

TRAIN_SUMMARY = "train_summary.json"


def run_name(name: str | None, alpha: float) -> str:
    """A training's name: ``train.name`` if set, else ``srnet-alpha<alpha>`` (``srnet-alpha0.5``)."""
    return name or f"srnet-alpha{float(alpha):g}"


INIT_MODEL = "srnet-init"  # the seeded random SRNet (DVC stage init)
DEFAULT_SWEEP = {"0": INIT_MODEL, "0.5": "srnet-alpha0"}  # Ours(0) from scratch, Ours(0.5) from it


def sweep_of(train: Mapping[str, Any]) -> dict[str, str]:
    """The ``train`` section's sweep: alpha (as its model folder spells it) -> the model it starts
    from. The old ``train.alphas: [0, 0.5]`` (the library still reads it; dvc.yaml needs
    ``train.sweep``) means every model from scratch."""
    if "alphas" in train and "sweep" in train:
        raise ValueError("give train.sweep (alpha -> start model) or the old train.alphas, not both")
    if "alphas" in train:
        return {f"{float(a):g}": INIT_MODEL for a in train["alphas"]}
    sweep = train.get("sweep", DEFAULT_SWEEP)
    if not isinstance(sweep, Mapping):
        raise ValueError(f"train.sweep must map each alpha to the model it starts from "
                         f"(e.g. {{'0': srnet-init, '0.5': srnet-alpha0}}), got {sweep!r}")
    return {str(k): str(v) for k, v in sweep.items()}


def checkpoint_label(path: str | Path) -> str:
    """How evaluation names an SRNet checkpoint given by path: its folder for ``.../srnet.pt``
    (``srnet-alpha0.5``), else the file's stem; inference looks its thresholds up by the same name."""
    p = Path(path)
    return p.parent.name if p.stem == "srnet" and p.parent.name else p.stem


def model_rel(run_name: str) -> str:
    """``models/<run name>``, relative to the work dir (local or a bucket)."""
    return f"models/{run_name}"


def train_summary_rel(run_name: str) -> str:
    return f"{model_rel(run_name)}/{TRAIN_SUMMARY}"


def model_dir(params: Params, run_name: str) -> Path:
    """The local folder of a trained model (the work dir's mirror when it is remote)."""
    return params.path("work_dir") / model_rel(run_name)
