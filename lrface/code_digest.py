"""A digest of lrface's own source, for cache keys that must miss when the code they cache changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

LRFACE_ROOT = Path(__file__).resolve().parent
DETECTION_MODELS = ("models/mtcnn.py",)  # run by alignment and inference's face detection only
# lrface/models less the detector's nets: what training and evaluation run (dvc.yaml lists the same)
RECOGNITION_MODELS = tuple(sorted(f"models/{p.name}" for p in (LRFACE_ROOT / "models").glob("*.py")
                                  if f"models/{p.name}" not in DETECTION_MODELS))
# the lrface.data modules a training runs or imports (shards, batches, PNG decoding, the camera chain,
# the dataset specs): with RECOGNITION_MODELS and lrface/train, the training's code (dvc.yaml lists the same)
TRAIN_DATA_CODE = ("data/datasets.py", "data/degrade.py", "data/images.py", "data/shards.py", "data/sources.py",
                   "data/splits.py", "data/tensors.py")

# top-level modules no cached result is computed by: argument parsing, progress bars, plots, ONNX
# export. An edit there must not rename training jobs (they would not resume) nor miss a cache.
NOT_COMPUTATION = ("cli.py", "export.py", "progress.py", "viz.py")


def code_digest(*parts: str) -> str:
    """sha256 over the ``.py`` files of the given lrface sub-packages / modules (relative to the
    package, e.g. ``"train"``, ``"losses.py"``) plus every top-level module of the package but
    :data:`NOT_COMPUTATION` (config, storage, checkpoints...: shared plumbing, so an edit there
    conservatively misses every cache)."""
    files: list[Path] = sorted(p for p in LRFACE_ROOT.glob("*.py") if p.name not in NOT_COMPUTATION)
    for part in parts:
        target = LRFACE_ROOT / part
        if not target.exists():
            raise FileNotFoundError(f"code_digest: no lrface module {part!r} ({target})")
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    h = hashlib.sha256()
    for f in dict.fromkeys(files):
        h.update(f.relative_to(LRFACE_ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()
