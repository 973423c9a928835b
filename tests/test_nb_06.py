"""Smoke run of notebooks/06_online_mixing.ipynb (DoReMi and ODM, then their mixtures validated as fixed
mixtures) at its default (smoke) parameters."""

import math

from nbutil import default_parameters, finite_below, run_default

STEM = "06_online_mixing"


def test_parameters_are_the_smoke_preset():
    params = default_parameters(STEM)
    assert params["proxy"] == "smoke"
    assert params["workers"] == 2
    assert params["out_dir"] == params["data_dir"] == params["runs_dir"] == ""
    assert params["seeds"] >= 2, "the spread over seeds needs at least two"
    assert params["eta"] > 0 and 0 <= params["doremi_smoothing"] < 1 and 0 <= params["odm_smoothing"] < 1


def test_online_mixing_notebook_smoke(tmp_path):
    params = default_parameters(STEM)
    m = run_default(STEM, tmp_path)
    for key in ("doremi_mixture", "odm_mixture"):
        weights = m[key]
        assert len(weights) == 7 and abs(sum(weights.values()) - 1) < 1e-6 and min(weights.values()) >= 0, key
    # DoReMi's smoothing keeps every domain at least c/K on every step, so on average too.
    assert min(m["doremi_mixture"].values()) >= params["doremi_smoothing"] / 7 - 1e-9
    for key in ("uniform_loss", "natural_loss", "doremi_loss", "odm_loss", "odm_online_loss"):
        finite_below(m, key, math.log(4096))  # trained: below the untrained model's ~log(vocab)
        assert m[key] > 0
    assert m["doremi_n_seeds"] == m["odm_n_seeds"] == params["seeds"]
    for key in ("doremi_gain_vs_uniform", "odm_gain_vs_uniform"):
        assert math.isfinite(m[key]) and abs(m[key]) < 0.5, f"{key}={m[key]}"
