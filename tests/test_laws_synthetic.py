"""Every law recovers known parameters from synthetic data; the nested pipeline and compare_laws
work end to end on a synthetic run table with known answers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from mixkit.laws import (
    BiMixLaw, ChinchillaLaw, ContinualMixingLaw, DCPTLaw, FitWarning, ImplicitMixingLaw, MixingLaw,
    SizeLaw, StepLaw, compare_laws, critical_proportion, nested_prediction, noise_floor, seed_noise_floor,
)
from mixkit.table import validate_table

NOISE = 0.002  # relative noise on every synthetic loss


def noisy(y, seed, sd=NOISE):
    return y * np.exp(np.random.default_rng(seed).normal(0, sd, np.shape(y)))


def assert_params(params, truth, rel):
    for k, v in truth.items():
        assert params[k] == pytest.approx(v, rel=rel, abs=0.02 if abs(v) < 0.5 else 0), (k, params[k], v)


def test_step_and_size_laws_recover():
    S = np.geomspace(200, 50_000, 25)
    truth = {"E": 2.1, "B": 40.0, "b": 0.55}
    law = StepLaw(random_state=0).fit(S, noisy(truth["E"] + truth["B"] / S ** truth["b"], 0))
    assert_params(law.params_.iloc[0], truth, 0.05)
    N = np.geomspace(1e6, 3e9, 20)
    truth = {"E": 1.8, "A": 400.0, "a": 0.34}
    law = SizeLaw(random_state=0).fit(N, noisy(truth["E"] + truth["A"] / N ** truth["a"], 1))
    assert_params(law.params_.iloc[0], truth, 0.05)


def test_chinchilla_law_recovers():
    rng = np.random.default_rng(0)
    N = 10 ** rng.uniform(7, 10, 120)
    D = 10 ** rng.uniform(9, 12, 120)
    truth = {"E": 1.8, "A": 480.0, "B": 2000.0, "a": 0.35, "b": 0.37}
    y = noisy(truth["E"] + truth["A"] / N ** truth["a"] + truth["B"] / D ** truth["b"], 2)
    law = ChinchillaLaw(n_starts=12, random_state=0).fit(np.column_stack([N, D]), y)
    assert_params(law.params_.iloc[0], truth, 0.1)


def mixing_truth(d=3, m=2):
    c = np.array([1.6, 2.4][:m])
    k = np.array([1.1, 0.7][:m])
    t = np.array([[-2.0, 0.3, -0.5], [0.4, -1.5, -0.8]])[:m, :d]
    return c, k, t


def test_explicit_mixing_law_recovers_all_domains_at_once():
    X = np.random.default_rng(0).dirichlet(np.ones(3), 40)
    c, k, t = mixing_truth()
    Y = noisy(c + k * np.exp(X @ t.T), 3)
    law = MixingLaw(random_state=0, aggregate={"y0": 0.3, "y1": 0.7}).fit(X, Y)
    P = law.params_
    # Proportions sum to one: the law reports the representative with mean(t) = 0.
    k_g, t_g = k * np.exp(t.mean(axis=1)), t - t.mean(axis=1, keepdims=True)
    for i in range(2):
        assert_params(P.iloc[i].to_dict(), {"c": c[i], "k": k_g[i], **{f"t_{j}": t_g[i, j] for j in range(3)}}, 0.1)
        assert np.mean([P.iloc[i][f"t_{j}"] for j in range(3)]) == pytest.approx(0.0, abs=1e-9)
    Xn = np.random.default_rng(9).dirichlet(np.ones(3), 10)
    truth_total = (c + k * np.exp(Xn @ t.T)) @ np.array([0.3, 0.7])
    np.testing.assert_allclose(law.predict_total(Xn), truth_total, rtol=0.005)
    np.testing.assert_allclose(law.predict_total(Xn, weights=[1, 0]), law.predict(Xn)[:, 0])
    with pytest.raises(ValueError, match="aggregation"):
        MixingLaw(n_starts=2).fit(X, Y).predict_total(X)


def test_implicit_mixing_law_fits_an_unobserved_mixture_of_domains():
    X = np.random.default_rng(1).dirichlet(np.ones(3), 60)
    c, k, t = mixing_truth()
    s = np.array([0.35, 0.65])
    y = noisy((c + k * np.exp(X @ t.T)) @ s, 4)
    law = ImplicitMixingLaw(n_latent=2, n_starts=12, random_state=0).fit(X, y)
    Xn = np.random.default_rng(8).dirichlet(np.ones(3), 20)
    np.testing.assert_allclose(law.predict(Xn), (c + k * np.exp(Xn @ t.T)) @ s, rtol=0.006)
    assert law.latent_weights_.shape == (2,) and law.latent_weights_.sum() == pytest.approx(1.0)
    assert law.latent_losses(Xn).shape == (20, 2)
    # One latent domain is the explicit law on the total: identifiable, so parameters come back.
    y1 = noisy(c[0] + k[0] * np.exp(X @ t[0]), 5)
    one = ImplicitMixingLaw(n_latent=1, random_state=0).fit(X, y1)
    k_g, t_g = k[0] * np.exp(t[0].mean()), t[0] - t[0].mean()
    assert list(one.params_.index) == ["y"]
    assert_params(one.params_.loc["y"], {"c_0": c[0], "k_0": k_g, "t_0_0": t_g[0], "t_0_1": t_g[1]}, 0.15)


def test_continual_law_and_critical_proportion():
    # The reducible part falls to ~0.01 here, so the noise is kept well below it.
    r = np.linspace(0.0, 0.8, 12)
    truth = {"c": 2.8, "k": -4.0, "b": -1.5}
    law = ContinualMixingLaw(random_state=0).fit(r, noisy(truth["c"] + np.exp(truth["k"] * r + truth["b"]), 6, sd=2e-4))
    assert_params(law.params_.iloc[0], truth, 0.08)
    target = 2.85
    r_star = (np.log(target - truth["c"]) - truth["b"]) / truth["k"]
    assert critical_proportion(law, target) == pytest.approx(r_star, abs=0.01)


def test_critical_proportion_of_a_callable_with_tolerance():
    law = lambda r: 2.8 + np.exp(-8.0 * r - 3.0)  # noqa: E731 - forgetting falls with replay share
    ref = 2.8 + np.exp(-3.0 - 8.0 * 0.3)
    assert critical_proportion(law, ref) == pytest.approx(0.3, abs=1e-8)
    tol = 0.001
    r_tol = critical_proportion(law, ref, tolerance=tol)
    assert r_tol < 0.3 and law(r_tol) == pytest.approx(ref + tol, abs=1e-9)
    assert critical_proportion(law, 10.0) == 0.0
    with pytest.raises(ValueError, match="no replay share"):
        critical_proportion(law, 2.0)


def test_critical_proportion_of_any_estimator():
    class Law:
        def predict(self, X):
            r = np.asarray(X, dtype=float)[:, 0]
            return 3.0 - r

    assert critical_proportion(Law(), 2.6) == pytest.approx(0.4, abs=1e-8)


def test_bimix_forms_recover():
    rng = np.random.default_rng(2)
    r = rng.uniform(0.05, 0.9, (30, 2))
    F, a = np.array([2.5, 3.1]), np.array([0.06, 0.1])
    law = BiMixLaw(form="power", random_state=0).fit(r, noisy(F * r ** -a, 7))
    np.testing.assert_allclose(law.params_["F"], F, rtol=0.02)
    np.testing.assert_allclose(law.params_["a"], a, atol=0.01)

    s = np.repeat(np.geomspace(500, 50_000, 8), 6)
    r = rng.uniform(0.05, 0.9, (48, 2))
    truth = {"a": 0.08, "B": 60.0, "b": 0.6, "C": 2.2}
    Y = r ** -truth["a"] * (truth["B"] * s[:, None] ** -truth["b"] + truth["C"])
    law = BiMixLaw(form="full", random_state=0).fit(np.column_stack([s, r]), noisy(Y, 8))
    for i in range(2):
        assert_params(law.params_.iloc[i].to_dict(), truth, 0.1)


def test_dcpt_law_predicts_and_recovers_exponents():
    rng = np.random.default_rng(3)
    n = 150
    N = 10 ** rng.uniform(7, 9, n)
    D = 10 ** rng.uniform(9, 11, n)
    r = rng.uniform(0.0, 1.0, n)
    truth = {"E": 1.5, "A": 300.0, "B": 800.0, "C": 0.05, "a": 0.33, "b": 0.3, "h": 0.5, "g": 0.4}
    law0 = DCPTLaw()
    X = np.column_stack([N, D, r])
    y_true = np.exp(law0._log_predict(np.array(list(truth.values())), X))
    law = DCPTLaw(n_starts=24, random_state=0).fit(X, noisy(y_true, 9))
    Xn = np.column_stack([10 ** rng.uniform(7, 9, 30), 10 ** rng.uniform(9, 11, 30), rng.uniform(0, 1, 30)])
    np.testing.assert_allclose(law.predict(Xn), np.exp(law0._log_predict(np.array(list(truth.values())), Xn)), rtol=0.01)
    for k in ("E", "a", "h", "g"):
        assert law.params_.iloc[0][k] == pytest.approx(truth[k], rel=0.25), k


# ------------------------------------------------------------------------------------------------
# A synthetic run table whose nested answer is known exactly:
# L_i(N, S, r) = c_i + k_i exp(t_i . r) + A / N^a + B / S^b
# ------------------------------------------------------------------------------------------------
A_, a_, B_, b_ = 300.0, 0.35, 20.0, 0.5


def true_loss(N, S, W):
    c, k, t = mixing_truth()
    return c + k * np.exp(W @ t.T) + A_ / np.asarray(N)[:, None] ** a_ + B_ / np.asarray(S)[:, None] ** b_


def synthetic_table(sizes=(1e6, 3e6, 1e7), n_mix=10, steps=(500, 1000, 2000, 3000, 4000), seeds=(0,), noise=5e-4):
    W = np.random.default_rng(0).dirichlet(np.ones(3), n_mix)
    rng = np.random.default_rng(1)
    rows = []
    for size in sizes:
        for i, w in enumerate(W):
            for seed in seeds:
                offset = rng.normal(0, noise)  # a run-level shift, like seed noise
                L = true_loss(np.full(len(steps), size), np.array(steps, float), np.tile(w, (len(steps), 1)))
                for si, step in enumerate(steps):
                    for j, dom in enumerate(["val_a", "val_b"]):
                        rows.append({"run_id": f"n{int(size)}-m{i}-s{seed}", "model_size": int(size), "step": step,
                                     "tokens": step * 1000.0, "domain": dom, "loss": L[si, j] + offset, "seed": seed,
                                     "config_hash": "x", "w:a": w[0], "w:b": w[1], "w:c": w[2]})
    return validate_table(pd.DataFrame(rows)), W


def test_nested_prediction_recovers_the_target_losses():
    table, W = synthetic_table(noise=0.0)
    res = nested_prediction(table, target_step=20_000, target_size=1e8, progress=False)
    Wn = np.random.default_rng(5).dirichlet(np.ones(3), 8)
    expected = true_loss(np.full(8, 1e8), np.full(8, 20_000.0), Wn)
    np.testing.assert_allclose(res.predict(Wn), expected, rtol=0.004)
    assert len(res.step_fits) == 3 * 10 * 2 and {"E", "B", "b", "pred", "warning"} <= set(res.step_fits.columns)
    assert len(res.size_fits) == 10 * 2 and {"E", "A", "a", "pred"} <= set(res.size_fits.columns)
    assert {"run_id", "domain", "step", "loss", "fitted"} <= set(res.step_points.columns)
    assert res.predictions.shape == (10, 2) and list(res.mixtures.columns) == ["a", "b", "c"]
    # The step-law predictions themselves are close to the truth at the target step.
    row = res.step_fits.iloc[0]
    assert row["pred"] == pytest.approx(float(res.step_points.query("run_id == @row.run_id and domain == @row.domain")["loss"].min()), rel=0.05)


def test_nested_prediction_skips_stages_and_checks_inputs():
    table, _ = synthetic_table(sizes=(1e6,), noise=0.0)
    res = nested_prediction(table, target_step=None, target_size=None, progress=False)
    assert res.step_fits.empty and res.size_fits.empty and res.predictions.shape == (10, 2)
    two, _ = synthetic_table(sizes=(1e6, 3e6), noise=0.0)
    with pytest.raises(ValueError, match="target_size"):
        nested_prediction(two, target_step=None, target_size=None, progress=False)
    with pytest.raises(ValueError, match="at least 3"):
        nested_prediction(two, target_step=None, target_size=1e8, progress=False)
    with pytest.raises(ValueError, match="at least 3"):
        nested_prediction(table, target_step=10_000, target_size=None, min_step=3000, progress=False)


class Memorizer(RegressorMixin, BaseEstimator):
    """Returns y exactly for inputs it was fitted on and the mean otherwise: any leak scores 0 error."""

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        self.table_ = {tuple(np.round(x, 9)): v for x, v in zip(X, np.asarray(y, dtype=float))}
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.array([self.table_.get(tuple(np.round(x, 9)), self.mean_) for x in np.asarray(X, dtype=float)])


def test_compare_laws_is_held_out_and_tidy():
    table, _ = synthetic_table(sizes=(1e6,), n_mix=12, steps=(1000, 4000), seeds=(0, 1), noise=0.003)
    laws = {"mixing": MixingLaw(n_starts=4, random_state=0), "memorizer": Memorizer()}
    out = compare_laws(table, laws, cv="loo", aggregate={"val_a": 0.5, "val_b": 0.5}, progress=False)
    assert set(out["target"]) == {"val_a", "val_b", "overall"}
    assert {"law", "mae", "rel_err", "r2", "spearman", "n_test", "n_folds", "fit_time_s", "noise_mad"} <= set(out.columns)
    assert (out["n_folds"] == 12).all() and (out["n_test"] == 24).all()
    mem = out[out["law"] == "memorizer"]
    assert (mem["mae"] > 0.01).all()  # it never sees the mixture it is scored on
    mix = out[(out["law"] == "mixing") & (out["target"] != "overall")]
    assert (mix["rel_err"] < 0.01).all() and (mix["r2"] > 0.9).all() and (mix["spearman"] > 0.9).all()
    # The noise floor comes from the two seeds of each mixture.
    assert mix["noise_mad"].notna().all() and (mix["noise_mad"] < 0.01).all()

    kfold, preds = compare_laws(table, {"mixing": laws["mixing"]}, cv=3, return_predictions=True, progress=False)
    assert (kfold["n_folds"] == 3).all() and set(preds["fold"]) == {0, 1, 2}

    X = np.random.default_rng(0).dirichlet(np.ones(3), 30)
    y = 2.0 + np.exp(-X[:, 0])
    xy = compare_laws((X, y), {"mixing": MixingLaw(n_starts=4, random_state=0)}, cv=5, progress=False)
    assert xy["target"].tolist() == ["y"] and xy["mae"].iloc[0] < 1e-3
    with pytest.raises(ValueError, match="overlap"):
        compare_laws((X, y), {"m": Memorizer()}, cv=[(np.arange(20), np.arange(15, 30))], progress=False)
    with pytest.raises(ValueError, match="unknown cv"):
        compare_laws((X, y), {"m": Memorizer()}, cv="nope", progress=False)


def test_compare_laws_cross_scale_fits_small_scores_largest():
    table, _ = synthetic_table(sizes=(1e6, 1e7), n_mix=8, steps=(4000,), noise=0.0)
    out, preds = compare_laws(table, {"mem": Memorizer()}, cv="cross_scale", return_predictions=True, progress=False)
    assert (out["n_test"] == 8).all() and (out["n_folds"] == 1).all()
    # The memorizer saw the same mixtures at the small size: its error is the size gap, never zero.
    gap = A_ / 1e6**a_ - A_ / 1e7**a_
    assert out["mae"].to_numpy() == pytest.approx(np.full(2, gap), rel=1e-6)
    with pytest.raises(ValueError, match="two model sizes"):
        compare_laws(synthetic_table(sizes=(1e6,), n_mix=4, steps=(4000,))[0], {"m": Memorizer()}, cv="cross_scale", progress=False)


def test_seed_noise_floor_measures_seed_spread():
    rows = []
    for mix, w in enumerate([0.2, 0.7]):
        for seed, off in enumerate([-0.01, 0.01, 0.0]):
            for dom, base in (("a", 2.0), ("b", 3.0)):
                rows.append({"run_id": f"m{mix}s{seed}", "model_size": 10, "step": 100, "tokens": 1.0, "domain": dom,
                             "loss": base + off * (2 if dom == "b" else 1), "seed": seed, "w:x": w, "w:y": 1 - w})
    floor = seed_noise_floor(pd.DataFrame(rows)).set_index("domain")
    assert floor.loc["a", "noise_mad"] == pytest.approx(0.02 / 3)
    assert floor.loc["b", "noise_mad"] == pytest.approx(0.04 / 3)
    assert floor.loc["a", "n_groups"] == 2 and floor.loc["a", "n_runs"] == 6
    single = pd.DataFrame(rows).query("seed == 0")
    assert seed_noise_floor(single).empty


def test_noise_floor_is_the_mean_absolute_deviation_of_seeds():
    assert noise_floor([2.0, 2.02, 1.98]) == pytest.approx(0.04 / 3)
    assert noise_floor(pd.Series([3.1, 2.9])) == pytest.approx(0.1)
    assert noise_floor(np.array([3.0, 3.0])) == 0.0
    for bad, match in (([2.0], "at least 2"), ([], "at least 2"), ([2.0, np.nan], "NaN"), ([[2.0, 2.1]], "1-D")):
        with pytest.raises(ValueError, match=match):
            noise_floor(bad)
    # seed_noise_floor averages exactly this over the repeated mixtures of each domain.
    table, _ = synthetic_table(sizes=(1e6,), n_mix=3, steps=(1000, 4000), seeds=(0, 1, 2), noise=0.01)
    last = table[table["step"] == 4000]
    per_mix = [noise_floor(g["loss"].to_numpy()) for _, g in last[last["domain"] == "val_a"].groupby("w:a")]
    floor = seed_noise_floor(table).set_index("domain")
    assert floor.loc["val_a", "noise_mad"] == pytest.approx(np.mean(per_mix), rel=1e-12)


def test_laws_import_nothing_downstream_of_them():
    """One-way flow: the laws never import the proxy, the run store or the optimiser."""
    import ast
    from pathlib import Path

    import mixkit.laws

    for path in Path(mixkit.laws.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("mixkit.optimize", "mixkit.proxy", "mixkit.runs", "mixkit.validate",
                                            "mixkit.cli", "mixkit.report")), (path.name, name)


def test_dataframe_columns_are_matched_by_name_not_position():
    import pandas as pd

    from mixkit.laws import MixingLaw

    rng = np.random.default_rng(0)
    W = pd.DataFrame(rng.dirichlet(np.ones(3), size=12), columns=["a", "b", "c"])
    y = pd.DataFrame({"a": 3 + np.exp(-2 * W["a"] + W["b"]), "b": 3 + np.exp(-2 * W["b"] + W["c"])})
    law = MixingLaw(random_state=0, n_starts=4).fit(W, y)
    np.testing.assert_allclose(law.predict(W[["c", "a", "b"]]), law.predict(W))
    with pytest.raises(ValueError, match="do not match the columns"):
        law.predict(W.rename(columns={"c": "z"}))
