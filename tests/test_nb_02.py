"""Smoke run of notebooks/02_regression.ipynb (RegMix) at its default (smoke) parameters."""

import math

from nbutil import default_parameters, finite_below, run_default

STEM = "02_regression"


def test_parameters_are_the_smoke_preset():
    params = default_parameters(STEM)
    assert params["proxy_preset"] == "smoke"
    assert params["workers"] == 2
    assert params["out_dir"] == params["data_dir"] == params["runs_dir"] == ""


def test_regression_notebook_smoke(tmp_path):
    m = run_default(STEM, tmp_path)
    assert m["n_runs"] == default_parameters(STEM)["n_runs"]
    for key in ("spearman_linear", "spearman_lightgbm", "spearman_loglinear", "rank_transfer_spearman"):
        assert math.isfinite(m[key]) and -1.0 <= m[key] <= 1.0, f"{key}={m[key]!r}"
    # Even tiny smoke proxies separate peaked from balanced mixtures, so held-out ranking must beat chance.
    assert m["spearman_lightgbm"] > 0.0
    assert m["spearman_linear"] > 0.0
    finite_below(m, "r2_lightgbm", 1.0 + 1e-12)
    noise = finite_below(m, "noise_floor", 0.5)
    finite_below(m, "heldout_mae", max(0.5, 10 * noise))
    assert m["optimum_pred_loss"] <= m["uniform_pred_loss"] + 1e-9
    for key in ("validation_loss", "uniform_loss", "natural_loss"):
        finite_below(m, key, 20.0)
        assert m[key] > 0
    assert m["validation_seeds"] == default_parameters(STEM)["val_seeds"] >= 2
    for base in ("uniform", "natural"):
        low, gain, high = (m[f"optimum_{k}_vs_{base}"] for k in ("ci_low", "gain", "ci_high"))
        assert low <= gain <= high
        assert abs(gain - (m[f"{base}_loss"] - m["validation_loss"])) < 1e-9
