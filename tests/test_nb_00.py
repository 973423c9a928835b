"""Notebook 00 (the bake-off) at its smoke defaults: every method's recommendation trained beside
uniform and natural on paired seeds, with gains, intervals, steps-equivalent and compute in metrics.json."""

from __future__ import annotations

import math

from nbutil import default_parameters, run_default

STEM = "00_bakeoff"
METHODS = ("mixing_law", "nested_pipeline", "regmix", "bimix", "entropy")


def test_parameters_cell_has_the_path_parameters():
    params = default_parameters(STEM)
    assert {"out_dir", "data_dir", "runs_dir", "workers", "seeds"} <= set(params)
    assert params["out_dir"] == params["data_dir"] == params["runs_dir"] == ""


def test_notebook_smoke_run(tmp_path):
    m = run_default(STEM, tmp_path)
    for method in METHODS:
        for base in ("uniform", "natural"):
            gain, low, high = (m[f"{method}_{k}_vs_{base}"] for k in ("gain", "ci_low", "ci_high"))
            assert all(isinstance(x, float) and math.isfinite(x) for x in (gain, low, high)), (method, base)
            assert low <= gain <= high, f"{method} vs {base}: {low} <= {gain} <= {high}"
        se = m[f"{method}_steps_equivalent_vs_uniform"]
        assert se is None or isinstance(se, float), se  # NaN (JSON) when the step law never reaches it
        assert m[f"{method}_proxy_runs"] >= (0 if method == "entropy" else default_parameters(STEM)["n_runs"])
    assert m["entropy_proxy_runs"] == 0 and m["entropy_proxy_flops"] == 0
    assert m["nested_pipeline_proxy_flops"] > m["regmix_proxy_flops"] > 0  # the design plus smaller widths
    board = m["leaderboard"]
    assert [r["loss"] for r in board] == sorted(r["loss"] for r in board)
    assert {"method", "loss", "gain_vs_uniform", "ci_low_vs_uniform", "ci_high_vs_uniform", "n_seeds"} <= set(board[0])
    assert {r["method"] for r in board} >= {"uniform", "natural"}
    assert all(r["n_seeds"] == default_parameters(STEM)["seeds"] for r in board)
    assert m["winner"] in {r["method"] for r in board if r["role"] == "candidate"}
