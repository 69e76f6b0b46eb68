"""params.yaml is checked at load: every section typed, unknown keys and bad values named."""

from __future__ import annotations

import pytest

from lrface.config import load_params
from tests.conftest import REPO

PARAMS = REPO / "params.yaml"


def test_the_shipped_params_load():
    assert load_params(PARAMS).get_dotted("frnet.precision") == "auto"


@pytest.mark.parametrize(("override", "message"), [
    ({"train.stpes": 3}, r"unknown param train\.stpes \(train has: "),
    ({"align.polcy": "center"}, r"unknown param align\.polcy"),
    ({"degrade.surveillance.blur_sigmaa": [0, 1]}, r"unknown param degrade\.surveillance\.blur_sigmaa"),
    ({"data.datasets.lfw.foldz": [0, 1]}, r"unknown param data\.datasets\.lfw\.foldz"),
    ({"evaluate.sizez": ["7x6"]}, r"unknown param evaluate\.sizez"),
    ({"trian.steps": 3}, r"unknown params section trian"),
    ({"degrade.surveillance.jpeg_quality": [0, 50]}, r"degrade\.surveillance\.jpeg_quality must be .* \[1, 100\]"),
    ({"degrade.surveillance.blur_sigma": [-1.0, 1.0]}, r"degrade\.surveillance\.blur_sigma"),
    ({"degrade.surveillance.blur_prob": 1.5}, r"degrade\.surveillance\.blur_prob must be within \[0, 1\]"),
    ({"degrade.surveillance.scale": [0.5, 16]}, r"degrade\.surveillance\.scale must be .* \[1\.0, 48\.0\]"),
    ({"degrade.surveillance.noise_sigma": [-2.0, 3.0]}, r"degrade\.surveillance\.noise_sigma"),
    ({"degrade.surveillance.jpeg_quality": [30, 101]}, r"degrade\.surveillance\.jpeg_quality"),
    ({"degrade.surveillance.color_shift": 1.5}, r"degrade\.surveillance\.color_shift"),
    ({"train.degradation": "jpeg"}, r"train\.degradation must be one of"),
    ({"degrade.surveillance.scale": 4}, r"degrade\.surveillance\.scale must be a list"),
    ({"degrade.surveillance.scale": ["a", "b"]}, r"degrade\.surveillance\.scale must be two numbers"),
    ({"train.factor_weights": ["a", "b", "c"]}, r"train\.factor_weights must be 3 positive numbers"),
    ({"train.seed": -1}, r"train\.seed must be >= 0"),
    ({"evaluate.protocols": ["clean", "cctv"]}, r"evaluate\.protocols must be"),
    ({"evaluate.protocols": []}, r"evaluate\.protocols must be"),
    ({"evaluate.grid_pairs": -1}, r"evaluate\.grid_pairs must be >= 0"),
    ({"inference.protocol": "cctv"}, r"inference\.protocol must be one of"),
    ({"loss.isr_resize": "magic"}, r"loss\.isr_resize must be one of"),
    ({"inference.isr_resize": "magic"}, r"inference\.isr_resize must be one of"),
    ({"inference.far": 0.0}, r"inference\.far"),
    ({"inference.far": 0.005}, r"inference\.far must be one of the rates evaluation publishes a threshold at"),
    ({"frnet.precision": "fp8"}, r"frnet\.precision must be one of"),
    ({"orchestration.parallel_trainings": 0}, r"orchestration\.parallel_trainings"),
    ({"align.policy": "random"}, r"align\.policy must be one of"),
    ({"align.detector": "opencv"}, r"align\.detector must be one of"),
    ({"train.camera_share": 2}, r"train\.camera_share must be a number within \[0, 1\]"),
    ({"train.wise_ft": 0}, r"train\.wise_ft must be a number within \(0, 1\]"),
    ({"train.wise_ft": 1.5}, r"train\.wise_ft must be a number within \(0, 1\]"),
    ({"train.lr_schedule": "linear"}, r"train\.lr_schedule must be one of"),
    ({"degrade.surveillance.enabled": True}, r"degrade\.surveillance\.enabled .* was removed"),
    ({"data.datasets.lfw.folds": [0]}, r"data\.datasets\.lfw\.folds"),
    ({"train.sweep": {"1.0": "srnet-init"}}, r"train\.sweep key '1\.0'"),
    ({"train.sweep": {0.25: "srnet-init"}}, r"train\.sweep keys must be quoted"),  # DVC: no stage for it
])
def test_a_bad_param_fails_at_load_naming_it(override, message):
    with pytest.raises(ValueError, match=message) as e:
        load_params(PARAMS, override)
    assert "params.yaml" in str(e.value)  # and the file it came from
