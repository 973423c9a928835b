"""Mixture optimisation, critical replay share, entropy mixtures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixkit.optimize import (OptimumResult, conditional_entropy, critical_proportion, entropy_mixture,
                             optimize_mixture, project_to_simplex, unigram_entropy)

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


def test_critical_proportion():
    law = lambda r: 2.8 + np.exp(-8.0 * r - 3.0)  # noqa: E731 - forgetting falls with replay share
    ref = 2.8 + np.exp(-3.0 - 8.0 * 0.3)
    assert critical_proportion(law, ref) == pytest.approx(0.3, abs=1e-8)
    tol = 0.001
    r_tol = critical_proportion(law, ref, tolerance=tol)
    assert r_tol < 0.3 and law(r_tol) == pytest.approx(ref + tol, abs=1e-9)
    assert critical_proportion(law, 10.0) == 0.0
    with pytest.raises(ValueError, match="no replay share"):
        critical_proportion(law, 2.0)


def test_critical_proportion_with_estimator():
    class Law:
        def predict(self, X):
            r = np.asarray(X, dtype=float)[:, 0]
            return 3.0 - r

    assert critical_proportion(Law(), 2.6) == pytest.approx(0.4, abs=1e-8)


def test_entropies():
    assert unigram_entropy(np.array([1, 1, 2, 2])) == pytest.approx(np.log(2))
    # A deterministic cycle: the next token is known from the previous one.
    assert conditional_entropy(np.tile(np.arange(7), 100)) == pytest.approx(0.0, abs=1e-12)


def test_entropy_mixture():
    rng = np.random.default_rng(0)
    data = {
        "varied": rng.integers(0, 1000, 200_000).astype(np.uint16),
        "repetitive": np.tile(np.arange(40, dtype=np.uint16), 5000),
        "middle": rng.integers(0, 50, 200_000).astype(np.uint16),
    }
    mix, H = entropy_mixture(data, return_entropies=True)
    w = mix.weights if hasattr(mix, "weights") else mix
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["repetitive"] < w["middle"] < w["varied"]
    assert H["repetitive"] == pytest.approx(0.0, abs=1e-9)
    uni = entropy_mixture(data, kind="unigram", max_tokens=50_000)
    wu = uni.weights if hasattr(uni, "weights") else uni
    assert sum(wu.values()) == pytest.approx(1.0) and wu["varied"] > wu["middle"]
    soft = entropy_mixture({"x": 1.0, "y": 2.0}, normalize="softmax")
    ws = soft.weights if hasattr(soft, "weights") else soft
    assert ws["y"] == pytest.approx(np.e / (1 + np.e))
    with pytest.raises(ValueError, match="kind"):
        entropy_mixture(data, kind="joint")
