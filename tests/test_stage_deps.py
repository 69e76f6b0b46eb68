"""dvc.yaml's stages depend on the code their stage runs (the flows' training key on the same
model and data files), and not on the face detector where the stage never detects (a faster
detector must not retrain SRNet)."""

import ast
import subprocess
import sys

import yaml

from lrface.code_digest import DETECTION_MODELS, LRFACE_ROOT, RECOGNITION_MODELS, TRAIN_DATA_CODE
from tests.conftest import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
DETECTION = ("lrface.data.detector", "lrface.data.detection", "lrface.data.mtcnn_", "lrface.data.align", "lrface.models.mtcnn",
             "lrface.inference")
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


# Where each stage's work starts (the flows and the CLI only dispatch to these).
STAGE_CODE = {"align": ["lrface.data.align_stage"], "shards": ["lrface.data.shard_stage"],
              "init": ["lrface.train.warm_start"], "train": ["lrface.train.job"], "evaluate": ["lrface.eval.run"]}
# Edges that carry no stage arithmetic: params are checked at load (schema imports every section's
# config class, which leaves the values as they are), and the geometry-only edge above.
NOT_CODE_EDGES = {("config.py", "lrface.schema"), *GEOMETRY_ONLY}
DISPLAY_ONLY = {"progress.py"}  # progress bars: they write nothing a stage outputs


def _module_file(name: str):
    """lrface/<...>.py or lrface/<...>/__init__.py of a dotted name, else None (an attribute)."""
    rel = name.split(".")[1:]
    if not rel:
        return None
    base = LRFACE_ROOT.joinpath(*rel)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _closure(entries: list[str]) -> set[str]:
    """Every lrface module file reachable from ``entries`` by imports (function-level ones too), with
    the ``__init__.py`` of each package on the way (importing a module runs them)."""
    todo = [_module_file(e) for e in entries]
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        rel = path.relative_to(LRFACE_ROOT).as_posix()
        if rel in seen:
            continue
        seen.add(rel)
        parent = path.parent if path.name != "__init__.py" else path.parent.parent
        if parent != LRFACE_ROOT.parent and (parent / "__init__.py").is_file():
            todo.append(parent / "__init__.py")
        for name in _imported(path):
            target = _module_file(name) if name.startswith("lrface.") else None
            if target is not None and (rel, name) not in NOT_CODE_EDGES:
                todo.append(target)
    return seen


def _runs_nothing(rel: str) -> bool:
    """lrface/__init__.py (telemetry switches), or a package ``__init__`` that is only a docstring."""
    if rel == "__init__.py":
        return True
    body = ast.parse((LRFACE_ROOT / rel).read_text()).body
    return rel.endswith("__init__.py") and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                               for n in body)


def _covered(rel: str, deps: set[str]) -> bool:
    path = f"lrface/{rel}"
    return path in deps or any(path.startswith(f"{d.rstrip('/')}/") for d in deps)


def test_every_stage_depends_on_the_code_it_imports():
    """A change to any lrface module a stage's code can run makes DVC re-run that stage (package
    ``__init__`` files hold docstrings and the telemetry switches only)."""
    assert set(STAGE_CODE) == set(STAGES), "a dvc.yaml stage without its entry module here"
    for stage, entries in STAGE_CODE.items():
        deps = _deps(stage)
        missing = sorted(r for r in _closure(entries)
                         if not _runs_nothing(r) and r not in DISPLAY_ONLY and not _covered(r, deps))
        assert not missing, f"dvc.yaml stage {stage} imports but does not depend on {missing}"


def test_the_import_closure_sees_function_level_imports_and_package_inits():
    closure = _closure(["lrface.train.job"])
    assert {"train/loop.py", "data/shards.py", "hashing.py", "models/srnet.py"} <= closure
    assert {"ray_env.py", "tracking.py"} <= closure  # imported inside functions only
    assert {"models/__init__.py", "models/summary.py"} <= closure  # via the package's __init__
    assert "data/detector.py" not in closure and "schema.py" not in closure
    assert not _runs_nothing("models/__init__.py") and _runs_nothing("eval/__init__.py")


def test_the_shard_stage_loads_neither_torch_nor_the_models():
    """The data layer stays light: importing the shard stage loads no weights code (and no torch).
    (Running it loads params, whose check imports every section's config class, models' included.)"""
    code = ("import sys\nimport lrface.data.shard_stage\n"
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('lrface.models', "
            "'lrface.checkpoints')))\nassert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
