"""Smoke run of notebooks/04_continual_forgetting.ipynb (continual pretraining, replay and forgetting)
at its default (smoke) parameters."""

import math

from nbutil import default_parameters, finite_below, run_default

STEM = "04_continual_forgetting"


def test_parameters_are_the_smoke_preset():
    params = default_parameters(STEM)
    assert params["proxy"] == "smoke"
    assert params["workers"] == 2
    assert params["out_dir"] == params["data_dir"] == params["runs_dir"] == ""
    assert params["new_domain"] not in params["original"].split(",")
    assert 0.0 in [float(r) for r in params["replay_shares"].split(",")], "forgetting_r0 needs the share r = 0"


def test_continual_notebook_smoke(tmp_path):
    params = default_parameters(STEM)
    m = run_default(STEM, tmp_path)
    shares = {float(r) for r in params["replay_shares"].split(",")}
    seeds = params["noise_seeds"].split(",")
    # pretraining + one continual run per share + the extra seeds of the repeated share + validation:
    # r* at every validation seed, and no replay at the seeds the grid (seed 0) did not train.
    k = len(params["val_seeds"].split(","))
    assert m["n_runs"] == 1 + len(shares) + len(seeds) - 1 + k + (k - 1)
    assert m["validation_seeds"] == k >= 2
    assert m["validation_ci_low"] <= m["validation_loss"] <= m["validation_ci_high"]
    assert m["replay_ci_low"] <= m["replay_gain"] <= m["replay_ci_high"]

    finite_below(m, "pre_continual_loss", 20.0)
    # Training on the new domain alone must visibly forget the original domains (well above noise).
    assert m["forgetting_r0"] > 0
    noise = finite_below(m, "noise_floor", 0.5)
    assert m["forgetting_r0"] > 5 * noise, f"forgetting {m['forgetting_r0']} is not above the seed noise {noise}"
    assert 0.0 <= m["critical_proportion"] <= 1.0
    finite_below(m, "heldout_mae", 0.5)
    finite_below(m, "heldout_rel_error", 0.1)
    # The law is fitted to pass through L0 + tolerance at r*; the trained run there must land near it.
    assert abs(m["predicted_loss_at_critical"] - (m["pre_continual_loss"] + m["tolerance"])) < 0.01
    finite_below(m, "validation_loss", 20.0)
    assert m["validation_loss"] > 0
    assert math.isfinite(m["validation_gap"])
    assert abs(m["validation_gap"]) < m["forgetting_r0"], "replay at r* did not reduce forgetting"
    finite_below(m, "new_domain_loss_r0", 20.0)
