"""Evaluation protocol names, shared by evaluation (which measures them) and inference (which
uses their thresholds): ``clean`` probes are bicubic downsamplings of the aligned face (metrics
``lfw/...``, the paper's protocol); ``surveillance`` probes went through the camera chain
(``lfw_surv/...``)."""

from __future__ import annotations

PROTOCOLS = ("clean", "surveillance")
# the false-accept rates at which evaluation publishes a decision threshold (``thr_far1e-3_14x12``):
# the rates ``inference.far`` may name
DECISION_FARS = (1e-2, 1e-3)
_SUFFIX = {"clean": "", "surveillance": "_surv"}


def protocol_name(dataset: str, protocol: str) -> str:
    """The metric prefix of ``protocol`` on ``dataset``: ``lfw`` or ``lfw_surv``."""
    if protocol not in _SUFFIX:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return f"{dataset}{_SUFFIX[protocol]}"
