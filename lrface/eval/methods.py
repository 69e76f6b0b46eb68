"""Restoration methods under test, by name: ``bicubic``, an SRNet checkpoint or an MLflow model.

``hr`` (no degradation) is handled by the protocol; the restorers themselves live in
:mod:`lrface.restoration`, shared with inference.
"""

from __future__ import annotations

from pathlib import Path

from lrface.restoration import Bicubic, Restorer, SRNetRestorer


def load_restorer(spec: str, isr_resize: str = "bicubic") -> Restorer:
    """``bicubic``, a path to an SRNet checkpoint, or an MLflow model URI (``models:/...``)."""
    if spec == "bicubic":
        return Bicubic()
    if spec.startswith(("models:/", "runs:/")):
        from lrface.tracking import describe_model, load_srnet_uri

        return SRNetRestorer(load_srnet_uri(spec), name=describe_model(spec), isr_resize=isr_resize, uri=spec)
    from lrface.checkpoints import load_srnet
    from lrface.locations import checkpoint_label

    path = Path(spec)
    return SRNetRestorer(load_srnet(path), name=checkpoint_label(path), isr_resize=isr_resize, uri=str(path))
