"""The nested pipeline: array-fitted step and size laws at the robust fitter's optimum, answers that
do not depend on the seed, intervals that cover the truth, and extrapolation that is flagged."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mixkit.laws import ExtrapolationWarning, MixingLaw, StepLaw, nested_prediction
from mixkit.laws.batch import fit_power_curves
from mixkit.laws.domain import hull_distance
from mixkit.table import NON_EMBEDDING_COLUMN, validate_table

C, K = np.array([1.6, 2.4]), np.array([1.1, 0.7])
T = np.array([[-2.0, 0.3, -0.5], [0.4, -1.5, -0.8]])
A_, a_, B_, b_ = 300.0, 0.35, 20.0, 0.5


def true_loss(N, S, W):
    """L_i(N, S, r) = c_i + k_i exp(t_i . r) + A / N^a + B / S^b: every stage's law holds exactly."""
    W = np.atleast_2d(W)
    return C + K * np.exp(W @ T.T) + A_ / np.asarray(N, float).reshape(-1, 1) ** a_ + B_ / np.asarray(S, float).reshape(-1, 1) ** b_


def table(W, sizes=(1e6, 3e6, 1e7, 3e7), steps=(500, 1000, 1500, 2000, 3000, 4000), noise=0.0, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        for i, w in enumerate(W):
            L = true_loss(np.full(len(steps), size), steps, np.tile(w, (len(steps), 1)))
            L = L * np.exp(rng.normal(0, noise, L.shape))
            rows += [{"run_id": f"n{int(size)}-m{i}", "model_size": int(size), "step": s, "tokens": s * 1000,
                      "domain": d, "loss": L[si, j], "w:a": w[0], "w:b": w[1], "w:c": w[2]}
                     for si, s in enumerate(steps) for j, d in enumerate(["val_a", "val_b"])]
    return validate_table(pd.DataFrame(rows))


def design(n=12, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(3), n)


def inside(W, n=10, seed=7):
    """Mixtures inside the convex hull of W (convex combinations of its rows)."""
    lam = np.random.default_rng(seed).dirichlet(np.ones(len(W)), n)
    return lam @ W


def quiet_nested(tab, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nested_prediction(tab, target_step=20_000, target_size=1e8, progress=False, **kw)


def test_batch_power_fits_reach_the_robust_fitters_optimum():
    rng = np.random.default_rng(0)
    S = np.array([1000, 2000, 3000, 5000, 8000, 12000, 20000], float)
    E, B, b = rng.uniform(1.5, 3.0, 30), rng.uniform(10, 500, 30), rng.uniform(0.2, 0.9, 30)
    Y = (E[:, None] + B[:, None] * S ** -b[:, None]) * np.exp(rng.normal(0, 0.003, (30, len(S))))
    X = np.tile(S, (30, 1))
    X[3, :2] = Y[3, :2] = np.nan  # curves may have fewer points
    fits = fit_power_curves(X, Y)
    assert fits.converged.mean() > 0.9
    for i in range(0, 30, 4):
        ok = np.isfinite(Y[i])
        law = StepLaw(n_starts=16, random_state=0).fit(S[ok], Y[i, ok])
        assert fits.objective[i] <= law.result_.objective * (1 + 1e-6) + 1e-12
    clean = fit_power_curves(X[:1], (E[0] + B[0] * S ** -b[0])[None])
    np.testing.assert_allclose(clean.params()[0], [E[0], B[0], b[0]], rtol=1e-3)
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_curves(X[:1, :2], Y[:1, :2])


def test_nested_prediction_is_the_same_for_five_seeds():
    W = design()
    tab = table(W, noise=0.002)
    queries = np.vstack([W, inside(W)])
    preds = [quiet_nested(tab, random_state=seed).predict(queries, warn=False) for seed in range(5)]
    spread = np.max(np.abs(np.array(preds) - preds[0]))
    assert spread < 1e-3, spread
    res = quiet_nested(tab, random_state=0)
    assert not res.step_fits["hit_iter_cap"].any() and res.step_fits["success"].all()
    assert res.stability["converged"].all()


def test_nested_intervals_cover_the_truth():
    W = design(14)
    tab = table(W, noise=0.003, seed=3)
    res = quiet_nested(tab, random_state=0, bootstrap=60)
    queries = inside(W, 15)
    pred, lo, hi = res.predict(queries, return_interval=True, alpha=0.1, warn=False)
    truth = true_loss(np.full(len(queries), 1e8), np.full(len(queries), 20_000.0), queries)
    assert np.all(lo <= pred + 1e-12) and np.all(pred <= hi + 1e-12) and np.all(hi - lo > 0)
    coverage = np.mean((lo <= truth) & (truth <= hi))
    assert coverage >= 0.7, coverage
    assert np.median(hi - lo) < 0.2  # informative, not everything
    frame = res.predict_frame(queries[:2], alpha=0.1, aggregate={"val_a": 0.5, "val_b": 0.5})
    assert list(frame["domain"]) == ["val_a", "val_b", "overall"] * 2
    assert {"lower", "upper", "outside_hull", "hull_distance"} <= set(frame.columns)


def test_intervals_stay_finite_on_a_design_barely_larger_than_the_law():
    """7 mixtures for a 5-parameter law per domain: a case resample would keep about 4.6 distinct
    mixtures and let replicates predict anything; the residual bootstrap keeps every mixture."""
    W = design(7, seed=0)
    res = quiet_nested(table(W, noise=0.02, seed=5), random_state=0, bootstrap=40)
    pred, lo, hi = res.predict(W, return_interval=True, alpha=0.1, warn=False)  # at the design mixtures themselves
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
    # Case resampling gave a widest interval of 2.6e5 nats here (median 1.0); the residual bootstrap 1.7.
    assert np.max(hi - lo) < 10 * np.median(hi - lo), (np.max(hi - lo), np.median(hi - lo))


def test_queries_outside_the_fitted_mixtures_are_flagged_with_their_distance():
    W = design()
    res = quiet_nested(table(W), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        res.predict(inside(W))  # inside the hull: silent
    far = np.array([[0.0, 0.0, 1.0]])
    with pytest.warns(ExtrapolationWarning, match=r"convex hull .* distance 0\.\d+"):
        res.predict(far)
    flags = res.check_domain(np.vstack([inside(W, 1), far]))
    assert list(flags["outside_hull"]) == [False, True]
    assert flags["hull_distance"].iloc[1] == pytest.approx(hull_distance(far, W)[0])
    # A share beyond every fitted mixture's is outside the per-domain range too, by that much.
    top = W[:, 2].max()
    assert flags["range_distance"].iloc[1] == pytest.approx(1.0 - top) and flags["range_column"].iloc[1] == "c"


def test_hull_distance_of_a_square():
    V = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float)
    np.testing.assert_allclose(hull_distance([[0.5, 0.5], [2.0, 0.5], [-1, -1]], V), [0, 1.0, np.sqrt(2)], atol=1e-6)


def test_the_pipeline_says_which_sizes_and_steps_it_used():
    W = design(8)
    tab = table(W)
    tab[NON_EMBEDDING_COLUMN] = tab["model_size"] // 2  # e.g. what a size_map gave
    with pytest.warns(ExtrapolationWarning, match="decades beyond the largest fitted N"):
        res = nested_prediction(tab, target_step=20_000, target_size="X", size_map={"X": 5e7}, progress=False)
    assert res.size_column == NON_EMBEDDING_COLUMN and res.target_size == 5e7
    assert sorted(res.sizes["N"]) == [5e5, 1.5e6, 5e6, 1.5e7]
    assert set(res.sizes["model_size"]) == {1e6, 3e6, 1e7, 3e7} and (res.sizes["step_max"] == 4000).all()
    assert res.extrapolation["size_decades"] == pytest.approx(np.log10(5e7 / 1.5e7))
    assert res.extrapolation["step_decades"] == pytest.approx(np.log10(20_000 / 4000))
    assert "non_embedding_params" in res.summary() and "N=15,000,000" in res.summary()


def test_near_equal_optima_that_disagree_are_reported():
    # No fitted mixture uses domain c: its exponent is free, so optima as good as the best disagree
    # about the pure-c mixture, and the result says so.
    rng = np.random.default_rng(0)
    W = np.column_stack([rng.dirichlet(np.ones(2), 20), np.zeros(20)])
    y = true_loss(np.full(20, 1e9), np.full(20, 1e6), W)[:, 0]
    law = MixingLaw(random_state=0).fit(W, y)
    assert law.result_.multiple_minima and law.result_.minima_prediction_spread > 1e-3
    assert "predict differently" in law.result_.summary()
    assert not MixingLaw(random_state=0).fit(design(20), true_loss(np.full(20, 1e9), np.full(20, 1e6), design(20))[:, 0]
                                             ).result_.multiple_minima


@pytest.mark.slow
def test_released_5mix_nested_prediction_is_the_same_for_five_seeds(peer_data):
    from mixkit import published

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mix5 = published.load_mixinglaws(peer_data / "mixinglaws" / "5Mix")
    w = published.load_valid_weights(peer_data / "mixinglaws" / "valid_weight.json")
    g5 = published.five_mix_group_losses(mix5, w)
    small = g5[g5["size_label"].isin(["70M", "160M", "305M", "410M"]) & ~g5["holdout"]]
    doms = list(published.SLD_DOMAINS)
    W = g5[g5["size_label"] == "1B"].groupby("run_id")[[f"w:{d}" for d in doms]].first().to_numpy()
    preds = []
    for seed in range(5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = nested_prediction(small, target_step=100_000, target_size="1B", domains=doms, random_state=seed,
                                    progress=False)
            preds.append(res.predict(W, warn=False))
    assert np.max(np.abs(np.array(preds) - preds[0])) < 1e-3


def test_every_parametric_law_gives_intervals_and_flags_scale_extrapolation():
    from mixkit.laws import SizeLaw

    N = np.geomspace(1e7, 3e8, 6)
    y = (2.0 + 300.0 / N**0.3) * np.exp(np.random.default_rng(0).normal(0, 0.002, len(N)))
    law = SizeLaw(n_starts=4, bootstrap=40, random_state=0).fit(N, y)
    pred, lo, hi = law.predict([1e8, 3e9], return_interval=True, alpha=0.1)
    assert np.all(lo <= pred) and np.all(pred <= hi) and (hi - lo)[1] > (hi - lo)[0]  # wider further out
    with pytest.warns(ExtrapolationWarning, match=r"beyond \[1e\+07, 3e\+08\] by 1 decades"):
        frame = law.predict_frame([1e8, 3e9], alpha=0.1)
    assert list(frame["outside_range"]) == [False, True] and frame["range_distance"].iloc[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bootstrap"):
        SizeLaw(n_starts=2, random_state=0).fit(N, y).predict(N, return_interval=True)
