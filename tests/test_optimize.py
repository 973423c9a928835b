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


# ----------------------------------------------------------------------------------------------
# the KL-regularised exact proposer (issue 15)
# ----------------------------------------------------------------------------------------------

from mixkit.laws.regression import LogLinearLaw  # noqa: E402
from mixkit.optimize import bootstrap_optimum, repetition_caps, select_kl, support_report  # noqa: E402

T3 = np.array([-1.2, 0.4, -0.6])


def _loglinear(n=60, seed=0, noise=0.003, t=T3):
    rng = np.random.default_rng(seed)
    d = len(t)
    W = pd.DataFrame(rng.dirichlet(np.full(d, 3.0), n), columns=[f"d{j}" for j in range(d)])
    y = 1.5 + np.exp(0.2 + W.to_numpy() @ t) * np.exp(noise * rng.standard_normal(n))
    return W, pd.Series(y, name="loss")


def _kl(w, p):
    w = np.clip(w, 1e-300, None)
    return np.sum(w * np.log(w / p), axis=-1)


def _brute(law, prior, kl, step=1 / 600):
    """Every mixture of a fine grid on the 3-domain simplex, then the best's neighbourhood refined."""
    k = int(round(1 / step))
    i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    keep = i + j <= k
    W = np.column_stack([i[keep], j[keep], k - i[keep] - j[keep]]) / k
    val = law.predict(pd.DataFrame(W, columns=law.feature_names_in_)) + kl * _kl(W, prior)
    w0 = W[np.argmin(val)]
    fine = w0[:2] + np.stack(np.meshgrid(*[np.linspace(-step, step, 81)] * 2), -1).reshape(-1, 2)
    fine = fine[(fine >= 0).all(axis=1) & (fine.sum(axis=1) <= 1)]
    F = np.column_stack([fine, 1 - fine.sum(axis=1)])
    v = law.predict(pd.DataFrame(F, columns=law.feature_names_in_)) + kl * _kl(F, prior)
    return F[np.argmin(v)], float(v.min())


@pytest.mark.parametrize("kl", [0.0, 0.02, 0.3])
def test_kl_exact_equals_brute_force(kl):
    W, y = _loglinear()
    law = LogLinearLaw(random_state=0).fit(W, y)
    prior = np.array([0.2, 0.5, 0.3])
    res = optimize_mixture(law, kl=kl, prior=prior)
    w_bf, v_bf = _brute(law, prior, kl)
    v = res.predicted_loss + kl * float(_kl(res.as_array(), prior))
    assert v <= v_bf + 1e-9  # never worse than the best of ~180,000 checked mixtures
    np.testing.assert_allclose(res.as_array(), w_bf, atol=3e-3)
    assert res.success and res.kl == kl


def test_kl_limits_recover_unregularised_optimum_and_prior():
    W, y = _loglinear(t=np.array([-1.2, 0.4, -0.6, 0.1, -0.9]), n=80)
    law = LogLinearLaw(random_state=0).fit(W, y)
    prior = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
    free = optimize_mixture(law, kl=0.0, prior=prior)
    assert free.weights["d0"] == pytest.approx(1.0, abs=1e-6)  # a vertex: the most negative effect
    np.testing.assert_allclose(optimize_mixture(law, kl=1e-7, prior=prior).as_array(), free.as_array(), atol=2e-3)
    np.testing.assert_allclose(optimize_mixture(law, kl=1e6, prior=prior).as_array(), prior, atol=1e-5)
    mid = optimize_mixture(law, kl=0.1, prior=prior)
    assert 0.1 < mid.weights["d0"] < 1.0  # in between: pulled toward the prior, still favouring d0


def test_kl_generic_predictor_matches_law_path():
    W, y = _loglinear()
    law = LogLinearLaw(random_state=0).fit(W, y)
    exact = optimize_mixture(law, kl=0.05, prior=[0.2, 0.5, 0.3])
    generic = optimize_mixture(lambda M: law.predict(pd.DataFrame(M, columns=list(W.columns))),
                               domains=list(W.columns), kl=0.05, prior=[0.2, 0.5, 0.3])
    np.testing.assert_allclose(generic.as_array(), exact.as_array(), atol=2e-4)


def test_repetition_caps_bind_and_infeasible_caps_are_named():
    caps = repetition_caps({"d0": 1e9, "d1": 1e10, "d2": 1e10}, target_tokens=1e10, repetition_factor=2.0)
    assert caps == {"d0": 0.2, "d1": 1.0, "d2": 1.0}
    W, y = _loglinear()
    law = LogLinearLaw(random_state=0).fit(W, y)
    res = optimize_mixture(law, kl=0.01, caps=caps)
    assert res.weights["d0"] == pytest.approx(0.2, abs=1e-6)
    with pytest.raises(ValueError, match=r"repetition caps .* sum to 0.3000 < 1"):
        repetition_caps({"d0": 1e9, "d1": 1e9, "d2": 1e9}, target_tokens=1e10, repetition_factor=1.0)
    with pytest.raises(ValueError, match="lower bound above the cap for domain"):
        optimize_mixture(law, kl=0.01, caps=caps, bounds={"d0": (0.5, 1.0)})
    with pytest.raises(ValueError, match="kl must be"):
        optimize_mixture(law, kl=-1.0)


def test_support_report_and_extrapolation_warning():
    W, y = _loglinear()
    law = LogLinearLaw(random_state=0).fit(W, y)
    inside = support_report(dict(W.iloc[3]), W)
    assert inside.hull_distance == pytest.approx(0.0, abs=1e-6) and not inside.extrapolates and not inside.above
    with pytest.warns(UserWarning, match="extrapolates beyond the fitted mixtures"):
        vertex = optimize_mixture(law, kl=0.0, fitted_mixtures=W)
    assert vertex.support.extrapolates and "d0" in vertex.support.above
    assert vertex.support.max_seen["d0"] == pytest.approx(W["d0"].max())
    assert vertex.warnings and "extrapolates" in vertex.warnings[0]
    near = optimize_mixture(law, kl=1.0, prior=W.mean().to_numpy(), fitted_mixtures=W)
    assert not near.support.extrapolates and not near.warnings


def test_bootstrap_intervals_on_the_optimum():
    W, y = _loglinear(noise=0.01)
    law = LogLinearLaw(random_state=0, bootstrap=30).fit(W, y)
    prior = W.mean().to_numpy()
    res = optimize_mixture(law, kl=0.2, prior=prior)
    out = bootstrap_optimum(res, law, kl=0.2, prior=prior)
    iv = out.weight_interval
    assert list(iv.columns) == ["lower", "upper"] and (iv["lower"] <= iv["upper"]).all()
    assert (iv["upper"] - iv["lower"]).max() > 1e-4  # the refits disagree: a real interval
    lo, hi = out.loss_interval
    assert lo <= res.predicted_loss <= hi
    # A law without bootstrap parameters is refitted on resamples of the data instead.
    plain = LogLinearLaw(random_state=0).fit(W, y)
    again = bootstrap_optimum(optimize_mixture(plain, kl=0.2, prior=prior), plain, W, y, n_boot=8, kl=0.2,
                              prior=prior)
    assert again.weight_interval.shape == (3, 2)
    with pytest.raises(ValueError, match="bootstrap intervals need the fitted data"):
        bootstrap_optimum(res, plain, kl=0.2)


def test_select_kl_by_cross_fitting():
    W, y = _loglinear(n=120, noise=0.01)
    law = LogLinearLaw(random_state=0)
    lam, table = select_kl(law, W, y, grid=(0.0, 0.01, 0.1, 1.0), prior=W.mean().to_numpy())
    assert lam in (0.0, 0.01, 0.1, 1.0) and list(table["kl"]) == [0.0, 0.01, 0.1, 1.0]
    assert np.isfinite(table["heldout_predicted"]).all()
    assert select_kl(law, W, y, grid=(0.0, 0.01, 0.1, 1.0), prior=W.mean().to_numpy())[0] == lam


def test_mixing_law_multi_output_exact_form_matches_generic_path():
    from mixkit.laws.mixing import MixingLaw

    W, y = _loglinear(n=50)
    Y = pd.DataFrame({"u": y, "v": 1.2 + np.exp(W.to_numpy() @ np.array([0.5, -0.8, 0.1]))})
    law = MixingLaw(n_starts=2, random_state=0).fit(W, Y)
    exact = optimize_mixture(law, objective={"u": 0.3, "v": 0.7}, kl=0.05, prior=[0.3, 0.3, 0.4])
    assert exact.n_evaluations < 1000  # one convex solve, not 16 starts
    generic = optimize_mixture(lambda M: law.predict(pd.DataFrame(M, columns=list(W.columns))) @ np.array([0.3, 0.7]),
                               domains=list(W.columns), kl=0.05, prior=[0.3, 0.3, 0.4])
    np.testing.assert_allclose(exact.as_array(), generic.as_array(), atol=2e-4)
    assert exact.predicted_loss == pytest.approx(generic.predicted_loss, abs=1e-7)


def test_maximize_flips_the_direction():
    W, y = _loglinear()
    law = LogLinearLaw(random_state=0).fit(W, y)
    low = optimize_mixture(law, kl=0.0)
    high = optimize_mixture(law, kl=0.0, maximize=True)
    assert low.weights["d0"] == pytest.approx(1.0, abs=1e-6) and high.weights["d1"] == pytest.approx(1.0, abs=1e-6)
    assert high.predicted_loss > low.predicted_loss


def test_linear_law_takes_the_exact_convex_path():
    from mixkit.laws.regression import LinearRegressionLaw

    W, y = _loglinear(n=50)
    law = LinearRegressionLaw().fit(W, y)
    exact = optimize_mixture(law, kl=0.05, prior=[0.2, 0.5, 0.3])
    assert exact.n_evaluations < 200
    generic = optimize_mixture(lambda M: law.predict(pd.DataFrame(M, columns=list(W.columns))),
                               domains=list(W.columns), kl=0.05, prior=[0.2, 0.5, 0.3])
    np.testing.assert_allclose(exact.as_array(), generic.as_array(), atol=2e-4)
