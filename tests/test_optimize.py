"""Mixture optimisation on the simplex: exact (SLSQP) and top-k simulation, bounds, caps, objectives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixkit.optimize import OptimumResult, optimize_mixture, project_to_simplex

DOMAINS = ["a", "b", "c", "d", "e"]
TARGET = np.array([0.1, 0.2, 0.3, 0.15, 0.25])


def convex(W):
    """Quadratic bowl with its minimum 1.0 at TARGET (inside the simplex)."""
    W = np.atleast_2d(W)
    return 1.0 + ((W - TARGET) ** 2 * np.array([1, 2, 3, 4, 5])).sum(axis=1)


def test_exact_finds_known_optimum():
    res = optimize_mixture(convex, domains=DOMAINS, rng=0)
    assert isinstance(res, OptimumResult) and res.method == "exact"
    np.testing.assert_allclose(res.as_array(), TARGET, atol=1e-3)
    assert res.predicted_loss == pytest.approx(1.0, abs=1e-6)
    assert isinstance(res.series, pd.Series) and list(res.series.index) == DOMAINS
    assert sum(res.weights.values()) == pytest.approx(1.0)


def test_bounds_and_caps_respected():
    res = optimize_mixture(convex, domains=DOMAINS, bounds={"a": (0.3, 0.6)}, caps={"c": 0.1})
    w = res.weights
    assert 0.3 - 1e-9 <= w["a"] <= 0.6 + 1e-9 and w["c"] <= 0.1 + 1e-9
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["a"] == pytest.approx(0.3, abs=1e-4)  # the bound binds: the free optimum is 0.1
    top = optimize_mixture(convex, domains=DOMAINS, bounds={"a": (0.3, 0.6)}, caps={"c": 0.1},
                           method="topk", n_samples=20_000)
    assert top.weights["a"] >= 0.3 - 1e-9 and top.weights["c"] <= 0.1 + 1e-9


def test_topk_close_and_deterministic():
    a = optimize_mixture(convex, domains=DOMAINS, method="topk", n_samples=100_000, top_k=128, rng=1)
    b = optimize_mixture(convex, domains=DOMAINS, method="topk", n_samples=100_000, top_k=128, rng=1)
    assert a.weights == b.weights
    assert np.abs(a.as_array() - TARGET).max() < 0.03
    assert a.predicted_loss < 1.002
    assert len(a.candidates) == 128


def test_infeasible_and_unknown():
    with pytest.raises(ValueError, match="sum to"):
        optimize_mixture(convex, domains=DOMAINS, caps={d: 0.1 for d in DOMAINS})
    with pytest.raises(ValueError, match="unknown domain"):
        optimize_mixture(convex, domains=DOMAINS, caps={"zz": 0.1})
    with pytest.raises(ValueError, match="method"):
        optimize_mixture(convex, domains=DOMAINS, method="magic")


def test_multi_output_objective_with_law():
    from mixkit.laws.regression import LinearRegressionLaw

    rng = np.random.default_rng(0)
    W = pd.DataFrame(rng.dirichlet(np.ones(3), 50), columns=["x", "y", "z"])
    L = pd.DataFrame({"lx": 3 - W.x, "ly": 3 - 2 * W.y, "lz": 3 - 0.5 * W.z})
    law = LinearRegressionLaw().fit(W, L)
    res = optimize_mixture(law, objective={"ly": 1.0}, caps={"y": 0.4})
    assert res.weights["y"] == pytest.approx(0.4, abs=1e-6)
    res = optimize_mixture(law, objective=[1.0, 0.0, 0.0])
    assert res.weights["x"] == pytest.approx(1.0, abs=1e-6)


def test_projection():
    P = project_to_simplex(np.array([[3.0, 0.0, 0.0], [0.2, 0.2, 0.2]]), np.zeros(3), np.array([0.5, 1, 1]))
    np.testing.assert_allclose(P, [[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]], atol=1e-12)
