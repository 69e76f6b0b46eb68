"""dvc.yaml's stages and the flows' cache keys depend on the code their stage runs, and not on the
face detector where the stage never detects (a faster detector must not retrain SRNet)."""

import ast
import subprocess
import sys

import yaml

from lrface.code_digest import DETECTION_MODELS, LRFACE_ROOT, RECOGNITION_MODELS, TRAIN_DATA_CODE
from tests.conftest import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
DETECTION = ("lrface.data.detector", "lrface.data.align", "lrface.models.mtcnn", "lrface.inference")
# geometry, not detection: degrade.small_face_frame (frames for tests and benches) sizes a face by
# its eye distance
GEOMETRY_ONLY = {("data/degrade.py", "lrface.data.align"), ("data/degrade.py", "lrface.data.align.face_width")}


def _deps(stage: str) -> set[str]:
    spec = STAGES[stage]
    return set((spec.get("do") or spec)["deps"])


def test_models_split_into_detection_and_recognition():
    every = {f"models/{p.name}" for p in (LRFACE_ROOT / "models").glob("*.py")}
    assert set(RECOGNITION_MODELS) | set(DETECTION_MODELS) == every
    assert not set(RECOGNITION_MODELS) & set(DETECTION_MODELS)
    assert {"models/srnet.py", "models/mobilefacenet.py"} <= set(RECOGNITION_MODELS)


def test_training_and_evaluation_stages_list_the_recognition_models_only():
    for stage in ("init", "train", "evaluate"):
        deps = _deps(stage)
        missing = {f"lrface/{m}" for m in RECOGNITION_MODELS} - deps
        assert not missing, f"{stage} does not depend on {sorted(missing)}"
        assert "lrface/models" not in deps and not {f"lrface/{m}" for m in DETECTION_MODELS} & deps, stage
    assert {f"lrface/{m}" for m in TRAIN_DATA_CODE} <= _deps("train")  # the flows' key and DVC agree
    assert {"lrface/models", "lrface/data/detector.py"} <= _deps("align")  # alignment runs the detector


def _imported(path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_training_and_evaluation_code_never_reaches_for_the_detector():
    """What justifies leaving the detector out of their deps and keys: no import of it anywhere in
    their code (function-level ones included). (Loading params imports the align config, whose
    module imports the detector's for its list of kinds; nothing there builds or runs a net.)"""
    files = [*(LRFACE_ROOT / "train").rglob("*.py"), *(LRFACE_ROOT / "eval").rglob("*.py"),
             *(LRFACE_ROOT / m for m in ("losses.py", "checkpoints.py", *RECOGNITION_MODELS, *TRAIN_DATA_CODE))]
    for path in files:
        rel = path.relative_to(LRFACE_ROOT).as_posix()
        bad = sorted(n for n in _imported(path) if n.startswith(DETECTION) and (rel, n) not in GEOMETRY_ONLY)
        assert not bad, f"{rel} imports {bad}"
    code = ("import sys\n"
            "import lrface.train.job, lrface.train.warm_start, lrface.eval.run, lrface.losses\n"
            f"bad = sorted(m for m in sys.modules if m.startswith({DETECTION!r}))\n"
            "assert not bad, bad\n"
            "assert 'lrface.train.loop' in sys.modules and 'lrface.eval.lfw' in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
