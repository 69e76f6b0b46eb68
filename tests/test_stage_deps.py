"""dvc.yaml's stages and the flows' cache keys depend on the code their stage runs: all of it, and
not the face detector where the stage never detects (a faster detector must not retrain SRNet)."""

import subprocess
import sys

import yaml

from flows.tasks import TRAIN_DATA_CODE
from lrface.code_digest import DETECTION_MODELS, LRFACE_ROOT, RECOGNITION_MODELS
from tests.conftest import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


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


def test_training_and_evaluation_never_import_the_detector():
    """What justifies leaving the detector out of their deps and keys."""
    code = ("import sys\n"
            "import lrface.train.job, lrface.train.warm_start, lrface.eval.run, lrface.losses\n"
            "bad = sorted(m for m in sys.modules if m in ('lrface.models.mtcnn', 'lrface.data.detector',"
            " 'lrface.data.align'))\n"
            "assert not bad, bad\n"
            "assert 'lrface.train.loop' in sys.modules and 'lrface.eval.lfw' in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
