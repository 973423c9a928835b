"""Smoke run of notebooks/03_bivariate.ipynb (BiMix: bivariate law, entropy mixtures) at its default
(smoke) parameters."""

import math

import pytest

from nbutil import default_parameters, finite_below, run_default

STEM = "03_bivariate"


def test_parameters_are_the_smoke_preset():
    params = default_parameters(STEM)
    assert params["proxy"] == "smoke"
    assert params["workers"] == 2
    assert params["out_dir"] == params["data_dir"] == params["runs_dir"] == ""
    assert params["noise_seeds"] >= 2, "the seed-noise floor needs at least two seeds"
    assert 0 < params["fit_fraction"] < 1, "step extrapolation must hold out the final step"
    assert params["eval_every"] * 3 <= params["steps"], "the step axis needs several recorded steps"


def test_bivariate_notebook_smoke(tmp_path):
    params = default_parameters(STEM)
    m = run_default(STEM, tmp_path)
    # uniform, natural, entropy + Dirichlet design runs (seed 0), then the validation: the optimum at
    # every seed, and uniform, natural and entropy at the seeds the design did not train.
    k = params["noise_seeds"]
    assert m["n_runs"] == 3 + params["n_dirichlet"] + k + 3 * (k - 1)
    assert m["validation_seeds"] == k
    for name in ("optimum", "entropy"):
        for base in ("uniform", "natural"):
            low, gain, high = (m[f"{name}_{x}_vs_{base}"] for x in ("ci_low", "gain", "ci_high"))
            assert low <= gain <= high
    assert m["optimum_gain_vs_uniform"] == pytest.approx(m["uniform_loss"] - m["optimum_loss"], abs=1e-9)

    noise = finite_below(m, "noise_floor", 0.5)
    assert noise > 0
    # Held out in both directions: unseen mixtures, and the final step from earlier steps.
    finite_below(m, "heldout_mae", max(0.5, 10 * noise))
    finite_below(m, "heldout_mae_power", max(0.5, 10 * noise))
    finite_below(m, "heldout_rel_error", 0.1)
    finite_below(m, "step_extrapolation_mae", max(0.5, 10 * noise))

    # The optimiser starts from uniform (the centre of the box), so it can only improve on it.
    assert m["optimum_pred_loss"] <= m["uniform_pred_loss"] + 1e-9
    for key in ("optimum_pred_loss", "uniform_pred_loss", "entropy_loss", "natural_loss", "uniform_loss",
                "optimum_loss"):
        finite_below(m, key, 20.0)
        assert m[key] > 0, f"{key}={m[key]!r}"
    # Trained losses must be below the untrained model's ~log(vocab) and the law's prediction near them.
    assert m["uniform_loss"] < math.log(4096)
    assert abs(m["uniform_pred_loss"] - m["uniform_loss"]) < max(0.5, 10 * noise)
