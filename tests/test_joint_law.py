"""The joint size-data-mixture law of Shukor et al. 2025: recovers known parameters, predicts new
(N, D, h), and gives optimize_mixture the best mixture at a given (N, D)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixkit.laws import JointLaw
from mixkit.optimize import optimize_mixture

DOMS = ["code", "books", "web"]


def sample(n, seed):
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(7, 8.7, n)
    D = 10 ** rng.uniform(9, 10.5, n)
    h = rng.dirichlet(np.ones(3), n)
    return pd.DataFrame(np.column_stack([N, D, h]), columns=["N", "D", *DOMS])


TRUTH = {
    "additive": {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 900.0, "beta": 0.3,
                 "C_code": 4.0, "C_books": 2.0, "C_web": 6.0, "gamma_code": 0.4, "gamma_books": 0.7, "gamma_web": 0.3},
    "joint": {"E": 1.7, "alpha": 0.34, "beta": 0.3, "C_code": 4.0, "C_books": 2.0, "C_web": 6.0,
              "gamma_code": 0.4, "gamma_books": 0.7, "gamma_web": 0.3,
              "CA_code": 300.0, "CA_books": 600.0, "CA_web": 400.0, "gammaA": 1.0,
              "CB_code": 1200.0, "CB_books": 700.0, "CB_web": 900.0, "gammaB": 1.0},
}


def truth_loss(form, X):
    law = JointLaw(form=form)
    law.N_ref_ = law.D_ref_ = 1.0  # TRUTH is written for raw N and D
    return np.exp(law._log_predict(np.array(list(TRUTH[form].values())), X.to_numpy()))


@pytest.mark.parametrize("form", ["additive", "joint"])
def test_joint_law_recovers_known_parameters(form):
    X = sample(300, 0)
    y = truth_loss(form, X) * np.exp(np.random.default_rng(1).normal(0, 1e-3, len(X)))
    law = JointLaw(form=form, random_state=0).fit(X, y)
    Xn = sample(60, 2)
    np.testing.assert_allclose(law.predict(Xn), truth_loss(form, Xn), rtol=5e-3)
    p = law.params_.iloc[0]
    # The joint form trades its mixture exponents against the size and data coefficients; its
    # scale exponents and floor are still pinned down.
    names = ("E", "alpha", "beta") + (("gamma_code", "gamma_books", "gamma_web") if form == "additive" else ())
    for name in names:
        assert p[name] == pytest.approx(TRUTH[form][name], rel=0.25), name
    # Beyond the fitted sizes the prediction is flagged with the distance in decades.
    far = Xn.iloc[:1].assign(N=1e10)
    flags = law.check_domain(far)
    assert flags["outside_range"].iloc[0] and flags["range_column"].iloc[0] == "N"
    assert flags["range_distance"].iloc[0] == pytest.approx(np.log10(1e10 / X["N"].max()))


def test_optimal_mixture_at_a_given_size_and_data():
    X = sample(120, 0)
    law = JointLaw(form="additive", n_starts=4, random_state=0).fit(X, truth_loss("additive", X))
    at = law.at(1e9, 1e11)
    best = optimize_mixture(at)
    grid = np.random.default_rng(3).dirichlet(np.ones(3), 4000)
    brute = grid[np.argmin(at.predict(grid))]
    assert list(best.weights) == DOMS  # the slice names its inputs
    w = np.array([best.weights[d] for d in DOMS])
    assert at.predict(w[None])[0] <= at.predict(brute[None])[0] + 1e-6
    assert best.predicted_loss == pytest.approx(at.predict(w[None])[0], rel=1e-6)
    with pytest.raises(ValueError, match="positive"):
        law.at(-1, 1e9)


def test_joint_law_refuses_bad_inputs():
    X = sample(20, 0)
    with pytest.raises(ValueError, match="form"):
        JointLaw(form="nope").fit(X, np.ones(20) * 2)
    with pytest.raises(ValueError, match="N and tokens D"):
        JointLaw().fit(X.assign(N=-1.0), np.ones(20) * 2)
    with pytest.raises(ValueError, match="sum"):
        JointLaw().fit(X.assign(code=0.9), np.ones(20) * 2)
