"""The training sweep (``train.sweep``): alpha keys as DVC names their models, start models, order."""

from __future__ import annotations

import pytest

from lrface.train.config import TrainConfig, sweep_order, train_config


def test_sweep_members_start_from_the_model_they_name():
    params = {"train": {"sweep": {"0": "srnet-init", "0.5": "srnet-alpha0"}}}
    assert train_config(params, 0.5).init_from == "srnet-alpha0"
    assert train_config(params, 0.0).init_from == "srnet-init"
    assert train_config(params, 0.25).init_from is None  # outside the sweep: its own seeded init
    # train.init_from is for a lone `lrface train` outside the sweep: DVC's stages ignore it
    explicit = {"train": {**params["train"], "init_from": "srnet-alpha0"}}
    assert train_config(explicit, 0.0).init_from == "srnet-init"
    assert train_config(explicit, 0.25).init_from == "srnet-alpha0"
    with pytest.raises(ValueError, match="must map each alpha"):
        TrainConfig.from_dict({"sweep": [0, 0.5]})


def test_old_alphas_list_means_every_model_from_scratch():
    assert TrainConfig.from_dict({"alphas": [0, 1.0]}).sweep == {"0": "srnet-init", "1": "srnet-init"}
    with pytest.raises(ValueError, match="not both"):
        TrainConfig.from_dict({"alphas": [0], "sweep": {"0": "srnet-init"}})


@pytest.mark.parametrize(("sweep", "message"), [
    ({"1.0": "srnet-init"}, r"'1.0': write it as '1' \(its model is srnet-alpha1\)"),  # DVC's folder name
    ({"x": "srnet-init"}, "not an alpha"),
    ({"0.5": "srnet-alpha0.5"}, "cycle"),
    ({"0.5": "srnet-alpha1", "1": "srnet-alpha0.5"}, "cycle"),
])
def test_bad_sweeps_are_refused_naming_the_key(sweep, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict({"sweep": sweep})


def test_sweep_order_trains_a_start_model_before_the_models_that_start_from_it():
    sweep = {"1": "srnet-alpha0.5", "0.5": "srnet-alpha0", "0": "srnet-init", "2": "srnet-init"}
    assert sweep_order(sweep) == [["0", "2"], ["0.5"], ["1"]]
    assert sweep_order({"0.5": "srnet-alpha0"}) == [["0.5"]]  # a start model outside the sweep


def test_wise_ft_applies_to_warm_starts_from_a_trained_model_only():
    sweep = {"0": "srnet-init", "0.5": "srnet-alpha0"}
    params = {"train": {"sweep": sweep, "wise_ft": 0.7}}
    assert train_config(params, 0.5).wise_ft == 0.7  # starts from srnet-alpha0: blends toward it
    assert train_config(params, 0.0).wise_ft == 1.0  # srnet-init: nothing trained to blend with
    assert train_config(params, 0.25).wise_ft == 1.0  # a seeded start outside the sweep
    assert train_config({"train": {"sweep": sweep, "wise_ft": 0.7, "init_from": "srnet-alpha0"}}, 0.25).wise_ft == 0.7


def test_toward_start_keeps_that_share_of_the_change():
    import torch

    from lrface.train.warm_start import toward_start

    start = {"w": torch.zeros(3), "n": torch.tensor(1)}
    trained = {"w": torch.tensor([1.0, -2.0, 4.0]), "n": torch.tensor(5)}
    out = toward_start(start, trained, 0.25)
    assert torch.equal(out["w"], torch.tensor([0.25, -0.5, 1.0])) and int(out["n"]) == 5
    assert torch.equal(toward_start(start, trained, 1.0)["w"], trained["w"])
    with pytest.raises(ValueError, match="differ in parameters"):
        toward_start({"w": torch.zeros(3)}, trained, 0.5)
