"""The robust fitter and the estimator contract shared by every parametric law."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score

from mixkit.laws import (
    BiMixLaw, ChinchillaLaw, ContinualMixingLaw, DCPTLaw, FitResult, FitWarning, ImplicitMixingLaw, LightGBMLaw,
    LinearRegressionLaw, LogLinearLaw, MixingLaw, Param, SizeLaw, StepLaw, robust_fit,
)


def step_data(seed=0, n=30, E=2.0, B=30.0, b=0.5, noise=0.002):
    rng = np.random.default_rng(seed)
    S = np.geomspace(100, 20000, n)
    y = (E + B / S**b) * np.exp(rng.normal(0, noise, n))
    return S, y


def test_robust_fit_recovers_a_power_law_and_reports():
    S, y = step_data()
    specs = [Param("E", (1.0, 1.5), log=True), Param("B", (1.0, 100.0), log=True), Param("b", (0.2, 1.0), bounds=(0, 5))]

    def log_predict(theta, X):
        return np.log(theta[0] + theta[1] * X[:, 0] ** -theta[2])

    theta, res = robust_fit(log_predict, specs, S[:, None], y, n_starts=6, random_state=0)
    assert isinstance(res, FitResult)
    assert res.params["E"] == pytest.approx(2.0, rel=0.02)
    assert res.params["b"] == pytest.approx(0.5, rel=0.05)
    assert res.success and res.n_starts == 6 and res.n_obs == 30 and res.n_iter > 0
    assert np.allclose(theta, list(res.params.values()))
    text = res.summary()
    assert "E" in text and "objective" in text and "converged" in text
    with pytest.raises(ValueError, match="bootstrap"):
        res.conf_int()


def test_same_seed_same_numbers_and_finite_difference_path():
    S, y = step_data(seed=3)
    a = StepLaw(n_starts=5, random_state=7).fit(S, y)
    b = StepLaw(n_starts=5, random_state=7).fit(S, y)
    pd.testing.assert_frame_equal(a.params_, b.params_, check_exact=True)
    # Without a Jacobian the fitter falls back to finite differences and lands on the same optimum.
    specs = StepLaw()._param_specs(S[:, None], y)
    _, res = robust_fit(StepLaw()._log_predict, specs, S[:, None], y, n_starts=5, random_state=7)
    assert res.params["E"] == pytest.approx(a.params_.iloc[0]["E"], rel=1e-3)


@pytest.mark.parametrize(
    "law, X",
    [
        (StepLaw(), np.geomspace(10, 1e4, 12)[:, None]),
        (SizeLaw(), np.geomspace(1e6, 1e9, 12)[:, None]),
        (ChinchillaLaw(), np.column_stack([np.geomspace(1e7, 1e10, 12), np.geomspace(1e9, 1e12, 12)[::-1]])),
        (MixingLaw(), np.random.default_rng(0).dirichlet(np.ones(3), 12)),
        (ImplicitMixingLaw(n_latent=2), np.random.default_rng(1).dirichlet(np.ones(3), 12)),
        (ContinualMixingLaw(), np.linspace(0.05, 0.9, 12)[:, None]),
        (BiMixLaw(form="full"), np.column_stack([np.geomspace(100, 1e4, 12), np.random.default_rng(2).uniform(0.05, 0.9, 12)])),
        (BiMixLaw(form="power"), np.random.default_rng(3).uniform(0.05, 0.9, (12, 1))),
        (DCPTLaw(), np.column_stack([np.geomspace(1e7, 1e9, 12), np.geomspace(1e9, 1e11, 12), np.linspace(0, 1, 12)])),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, np.ndarray) else "",
)
def test_analytic_jacobians_match_finite_differences(law, X):
    y = np.full(len(X), 3.0)
    Xj = law._output_X(X, 0) if law._separable else X
    if isinstance(law, ImplicitMixingLaw):
        law.n_latent = 2
    specs = law._param_specs(Xj, y)
    rng = np.random.default_rng(0)
    theta = np.array([(p.grid[len(p.grid) // 2] if p.log else p.grid[-1]) * (1 + 0.1 * rng.random()) + (0 if p.log else 0.05) for p in specs])
    J = law._log_jac(theta, Xj)
    num = np.empty_like(J)
    for k in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[k]))
        up, dn = theta.copy(), theta.copy()
        up[k] += h
        dn[k] -= h
        num[:, k] = (law._log_predict(up, Xj) - law._log_predict(dn, Xj)) / (2 * h)
    np.testing.assert_allclose(J, num, rtol=1e-4, atol=1e-7)


def test_estimator_contract():
    S, y = step_data()
    law = StepLaw(n_starts=4, random_state=0, huber_delta=1e-2)
    params = law.get_params()
    assert params == {"n_starts": 4, "huber_delta": 1e-2, "bootstrap": 0, "random_state": 0, "bounds": None, "max_iter": None}
    c = clone(law)
    assert c.get_params() == params and c is not law
    with pytest.raises(NotFittedError):
        law.predict(S)
    assert law.fit(S, y) is law
    assert law.score(S, y) > 0.99
    assert not hasattr(clone(law), "result_")
    law.set_params(n_starts=3)
    assert law.n_starts == 3
    scores = cross_val_score(StepLaw(n_starts=3, random_state=0), S[:, None], y, cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    m = MixingLaw(aggregate=[0.5, 0.5], n_starts=2)
    assert clone(m).get_params()["aggregate"] == [0.5, 0.5]
    assert ImplicitMixingLaw(n_latent=3).get_params()["n_latent"] == 3
    assert BiMixLaw(form="full").get_params()["form"] == "full"


@pytest.mark.parametrize(
    "y, match",
    [
        (np.array([2.0, np.nan, 1.9, 1.8, 1.7]), "NaN"),
        (np.array([2.0, 0.0, 1.9, 1.8, 1.7]), "positive"),
        (np.array([2.0, -1.0, 1.9, 1.8, 1.7]), "positive"),
    ],
)
def test_bad_losses_raise_clear_errors(y, match):
    with pytest.raises(ValueError, match=match):
        StepLaw().fit(np.arange(1, 6) * 100.0, y)


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="fewer data points"):
        StepLaw().fit([100.0, 200.0], [2.0, 1.9])
    with pytest.raises(ValueError, match="rows"):
        StepLaw().fit([100.0, 200.0, 300.0], [2.0, 1.9])
    with pytest.raises(ValueError, match="positive"):
        StepLaw().fit([0.0, 200.0, 300.0, 400.0], [2.0, 1.9, 1.8, 1.7])
    with pytest.raises(ValueError, match="column"):
        ChinchillaLaw().fit(np.ones((6, 3)), np.ones(6))
    with pytest.raises(ValueError, match="unknown parameter"):
        StepLaw(bounds={"zz": (0, 1)}).fit(*step_data())
    with pytest.raises(ValueError, match=r"MixingLaw takes mixtures: row 0 of X is \[2., 2.\], summing to 4"):
        MixingLaw().fit(np.full((8, 2), 2.0), np.ones(8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # without the simplex check, still proportions
        MixingLaw(simplex=False).fit(np.full((8, 2), 2.0), np.ones(8))
    with pytest.raises(ValueError, match="form"):
        BiMixLaw(form="nope").fit(np.full((8, 2), 0.5), np.ones((8, 2)))
    with pytest.raises(ValueError, match="training domain i"):
        BiMixLaw().fit(np.full((8, 2), 0.5), np.ones((8, 3)))
    with pytest.raises(ValueError, match="1-D"):
        ImplicitMixingLaw().fit(np.full((8, 2), 0.5), np.ones((8, 2)))


def test_optimum_on_a_bound_warns():
    S, y = step_data(b=0.2)
    with pytest.warns(FitWarning, match="bound.*'b'"):
        law = StepLaw(n_starts=4, random_state=0, bounds={"b": (0.5, 5.0)}).fit(S, y)
    assert law.result_.at_bounds == ("b",)
    assert "WARNING" in law.result_.summary()


def test_non_convergence_warns():
    S, y = step_data()
    with pytest.warns(FitWarning, match="iteration cap .*max_iter=1.* without convergence"):
        law = StepLaw(n_starts=2, random_state=0, max_iter=1).fit(S, y)
    assert not law.result_.success and law.result_.hit_iter_cap and not law.result_.converged
    assert law.result_.n_capped >= 1 and "iteration cap" in law.result_.summary()


def test_iteration_budget_scales_with_parameters_and_converged_fits_are_not_flagged():
    from mixkit.laws.fitting import iteration_budget
    assert iteration_budget(3) == 2000 and iteration_budget(18) > iteration_budget(8) > 2000 - 1
    S, y = step_data()
    law = StepLaw(n_starts=4, random_state=0).fit(S, y)
    assert law.result_.max_iter == iteration_budget(3)
    assert law.result_.converged and not law.result_.hit_iter_cap and not law.result_.multiple_minima
    assert law.result_.best_objectives[0] == pytest.approx(law.result_.objective)


def test_bootstrap_intervals_and_prediction_intervals():
    S, y = step_data(noise=0.005)
    law = StepLaw(n_starts=4, bootstrap=30, random_state=0).fit(S, y)
    ci = law.result_.conf_int(0.1)
    assert list(ci.columns) == ["lower", "upper"] and list(ci.index) == ["E", "B", "b"]
    assert (ci["lower"] <= ci["upper"]).all()
    assert law.result_.bootstrap_params.shape == (30, 3)
    assert (law.result_.std_err() > 0).all()
    lo, hi = law.predict_interval(S, alpha=0.1)
    pred = law.predict(S)
    assert lo.shape == pred.shape and np.all(lo <= hi)
    assert np.mean((lo <= pred) & (pred <= hi)) > 0.9
    assert "std err" in law.result_.summary()
    with pytest.raises(ValueError, match="bootstrap"):
        StepLaw(n_starts=2).fit(S, y).predict_interval(S)


def test_multi_output_results_are_named_per_output():
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(2), 15)
    Y = pd.DataFrame({"code": 1.5 + np.exp(-2 * X[:, 0]), "prose": 2.5 + np.exp(-1.5 * X[:, 1])})
    law = MixingLaw(n_starts=4, random_state=0).fit(pd.DataFrame(X, columns=["code", "prose"]), Y)
    assert list(law.params_.index) == ["code", "prose"]
    assert list(law.params_.columns) == ["c", "k", "t_code", "t_prose"]
    assert "prose:t_prose" in law.result_.params
    assert set(law.results_) == {"code", "prose"}
    assert law.predict(X).shape == (15, 2)
    assert "MixingLaw[code] fit" in law.summary()


def test_params_is_one_dataframe_for_one_output_or_several():
    S, y = step_data()
    law = StepLaw(n_starts=3, random_state=0).fit(S, y)
    assert isinstance(law.params_, pd.DataFrame)
    assert list(law.params_.index) == ["y"] and list(law.params_.columns) == ["E", "B", "b"]
    assert law.params_.iloc[0].to_dict() == law.result_.params
    assert (law.y_ndim_, law.n_outputs_, law.output_names_) == (1, 1, ["y"])
    assert law.n_iter_ == law.result_.n_iter >= 1
    two = StepLaw(n_starts=3, random_state=0).fit(S, np.column_stack([y, 1.1 * y]))
    assert list(two.params_.index) == ["y0", "y1"] and list(two.params_.columns) == ["E", "B", "b"]
    assert two.y_ndim_ == 2 and two.predict(S).shape == (len(S), 2)
    # A one-column y is fitted exactly like the 1-D y; only the output's name and shape differ.
    column = StepLaw(n_starts=3, random_state=0).fit(S, y[:, None])
    assert list(column.params_.index) == ["y0"] and column.predict(S).shape == (len(S), 1)
    np.testing.assert_array_equal(column.params_.to_numpy(), law.params_.to_numpy())


def test_every_law_records_inputs_and_outputs_the_same_way():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.dirichlet(np.ones(3), 20), columns=["a", "b", "c"])
    Y = pd.DataFrame({"u": 2 + np.exp(-X["a"]), "v": 3 + np.exp(X["b"] - X["c"])})
    laws = (MixingLaw(n_starts=2, random_state=0), LogLinearLaw(n_starts=1, random_state=0), LinearRegressionLaw(),
            LightGBMLaw(n_estimators=20))
    for law in laws:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            law.fit(X, Y)
            assert list(law.feature_names_in_) == ["a", "b", "c"] and law.n_features_in_ == 3
            assert (law.n_outputs_, law.output_names_, law.y_ndim_) == (2, ["u", "v"], 2)
            assert law.predict(X).shape == (20, 2)
            law.fit(X.to_numpy(), Y["u"].to_numpy())  # a refit on arrays forgets the names
            assert not hasattr(law, "feature_names_in_")
            assert (law.n_outputs_, law.output_names_, law.y_ndim_) == (1, ["y"], 1)
            assert law.predict(X.to_numpy()).shape == (20,)
        with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3"):
            law.predict(X.to_numpy()[:, :2])
        with pytest.raises(ValueError, match="Reshape your data"):
            law.predict(X.to_numpy()[0])


def test_implicit_mixing_law_starts_follow_random_state():
    X = np.random.default_rng(0).dirichlet(np.ones(3), 20)
    y = 2.0 + np.exp(X @ np.array([-1.0, 0.5, 0.2]))

    def starts(seed):
        return np.array(ImplicitMixingLaw(n_latent=2, random_state=seed)._starts(X, y))

    np.testing.assert_array_equal(starts(1), starts(1))
    assert not np.array_equal(starts(1), starts(2))
    fits = [ImplicitMixingLaw(n_latent=2, n_starts=3, random_state=4).fit(X, y) for _ in range(2)]
    pd.testing.assert_frame_equal(fits[0].params_, fits[1].params_, check_exact=True)


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_truth_at_about_the_nominal_rate():
    truth = {"E": 2.0, "B": 30.0, "b": 0.5}
    hits = []
    for seed in range(40):
        S, y = step_data(seed=seed, n=25, noise=0.01)
        law = StepLaw(n_starts=4, bootstrap=100, random_state=seed).fit(S, y)
        ci = law.result_.conf_int(0.1)
        hits.append([ci.loc[k, "lower"] <= v <= ci.loc[k, "upper"] for k, v in truth.items()])
    coverage = np.mean(hits, axis=0)
    # Nominal 90%; measured 0.90 / 0.875 / 0.875 (40 replications: one binomial s.d. is about 0.05).
    assert np.all(coverage >= 0.8), coverage
    assert np.all(coverage <= 1.0)
