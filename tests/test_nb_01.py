"""Notebook 01 (Ye et al. data mixing laws) at its smoke defaults: real proxy runs, honest held-out
errors, an optimum that the law prefers to uniform, and a validation run that was actually trained."""

from __future__ import annotations

import math

import pytest

from nbutil import default_parameters, finite_below, run_default

STEM = "01_mixing_laws"


def test_parameters_cell_has_the_path_parameters():
    params = default_parameters(STEM)
    assert {"out_dir", "data_dir", "runs_dir", "domains", "workers"} <= set(params)
    assert params["out_dir"] == params["data_dir"] == params["runs_dir"] == ""


def test_notebook_smoke_run(tmp_path):
    m = run_default(STEM, tmp_path)
    for key, value in m.items():
        if key == "optimum_steps_equivalent_vs_uniform" and (value is None or math.isnan(value)):
            continue  # NaN: uniform's step law never reaches the optimum's loss
        assert isinstance(value, (int, float)) and math.isfinite(value), f"{key}={value!r}"
    # Held-out (leave one mixture out) errors of the exponential law; smoke losses are about 7 nats.
    finite_below(m, "two_domain_heldout_mae", 0.5)
    finite_below(m, "heldout_mae", 0.5)
    finite_below(m, "heldout_rel_error", 0.1)
    finite_below(m, "nested_mae", 0.5)
    assert m["noise_floor"] > 0, "repeated seeds of one mixture must give a positive seed-noise floor"
    # The exponential law must not lose to the linear baseline on held-out mixtures.
    assert m["heldout_mae"] <= m["linear_heldout_mae"] + 1e-9
    # The optimum of the law is at least as good as uniform and natural by the law's own prediction.
    assert m["optimum_pred_loss"] <= m["uniform_pred_loss"] + 1e-9
    assert m["optimum_pred_loss"] <= m["natural_pred_loss"] + 1e-9
    # Validation: the optimum, uniform and natural mixtures were trained on paired seeds.
    for key in ("validation_loss", "uniform_loss", "natural_loss"):
        finite_below(m, key, 20.0)
        assert m[key] > 0
    assert m["validation_seeds"] == default_parameters(STEM)["val_seeds"] >= 2
    for base in ("uniform", "natural"):
        low, gain, high = (m[f"optimum_{k}_vs_{base}"] for k in ("ci_low", "gain", "ci_high"))
        assert low <= gain <= high
        assert gain == pytest.approx(m[f"{base}_loss"] - m["validation_loss"], abs=1e-9)
    assert m["n_runs"] >= 20
