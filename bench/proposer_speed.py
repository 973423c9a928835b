"""Time of the KL-regularised exact proposer and of the log-linear fit on a 64-domain swarm.

    python bench/proposer_speed.py [--domains 64] [--runs 512] [--repeats 3] [--fits]

The swarm is synthetic (no released run set has 64 domains): 512 Dirichlet mixtures around a random
prior, losses from a log-linear law with 1% multiplicative noise. Printed per repeat, all in one
process, alternating:
- `fit`: LogLinearLaw() with its defaults (seconds, converged?, iterations of the best start);
- `exact`: optimize_mixture(law, kl=0.1, prior) through the law's exact convex form (ExpSum);
- `generic`: the same problem through the generic path (a callable of the law: batched
  finite-difference gradients, 16 starts), the path every non-ExpSum predictor takes;
- the two proposals' largest weight difference (they solve the same problem).
The issue's figure before this work: 10-108 s for the exact method on 17-24 domains.

With `--fits`: 5-fold out-of-fold Spearman / R^2 of LogLinearLaw, the former defaults (4 starts,
500 iterations, linearised starts only) against today's (Gauss-Newton start), on RegMix's 512 runs
(target Pile-CC; needs ../shared/peer-data) and on the synthetic swarm: how many folds stopped on
their iteration cap, and the seconds for the 5 fits.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mixkit.laws import regression
from mixkit.laws.regression import LogLinearLaw
from mixkit.optimize import optimize_mixture


def swarm(d: int, n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    gen = np.random.default_rng(seed)
    prior = gen.dirichlet(np.ones(d))
    W = gen.dirichlet(prior * 20, size=n)
    t = gen.normal(0.0, 1.0, d)
    y = 2.0 + np.exp(0.3 + W @ t) * np.exp(0.01 * gen.standard_normal(n))
    return pd.DataFrame(W, columns=[f"d{j:02d}" for j in range(d)]), pd.Series(y, name="loss"), prior


class FormerLogLinearLaw(LogLinearLaw):
    """LogLinearLaw as it was before issue 15: 4 starts, 500 iterations, linearised starts only."""

    def __init__(self, random_state=None):
        super().__init__(n_starts=4, max_iter=500, random_state=random_state)

    def _gauss_newton_start(self, X, y):
        return None

    def _starts(self, X, y):
        return regression._linearised_starts(X, y)


def out_of_fold(make, X: pd.DataFrame, y: pd.Series) -> tuple[float, float, int, float]:
    from scipy.stats import spearmanr
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    pred, capped, t0 = np.zeros(len(y)), 0, time.perf_counter()
    for tr, te in KFold(5, shuffle=True, random_state=0).split(X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            law = make().fit(X.iloc[tr], y.iloc[tr])
        capped += bool(getattr(law.result_, "hit_iter_cap", not law.result_.success))
        pred[te] = law.predict(X.iloc[te])
    return spearmanr(pred, y).statistic, r2_score(y, pred), capped, time.perf_counter() - t0


def compare_fits(X: pd.DataFrame, y: pd.Series) -> None:
    data = {f"synthetic {X.shape[1]}x{len(X)}": (X, y)}
    peer = Path(__file__).resolve().parents[1].parent / "shared" / "peer-data" / "regmix"
    if peer.is_dir():
        from mixkit.published import regmix_xy

        data = {"regmix 17x512 pile_cc": regmix_xy(peer, "1m", "train"), **data}
    for name, (Xd, yd) in data.items():
        for label, make in (("former defaults", lambda: FormerLogLinearLaw(random_state=0)),
                            ("defaults now", lambda: LogLinearLaw(random_state=0))):
            s, r2, capped, secs = out_of_fold(make, Xd, yd)
            print(f"{name:24s} {label:16s} 5-fold spearman {s:.4f}  r2 {r2:.4f}  folds on the cap {capped}/5  "
                  f"{secs:5.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=64)
    ap.add_argument("--runs", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kl", type=float, default=0.1)
    ap.add_argument("--fits", action="store_true", help="also compare the log-linear fit's former and new defaults")
    args = ap.parse_args()
    X, y, prior = swarm(args.domains, args.runs)
    if args.fits:
        compare_fits(X, y)
    print(f"{args.domains} domains x {args.runs} runs, kl={args.kl}")
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            law = LogLinearLaw(random_state=rep).fit(X, y)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        exact = optimize_mixture(law, kl=args.kl, prior=prior)
        t_exact = time.perf_counter() - t0
        t0 = time.perf_counter()
        generic = optimize_mixture(lambda W: law.predict(pd.DataFrame(W, columns=X.columns)), domains=list(X.columns),
                                   kl=args.kl, prior=prior)
        t_generic = time.perf_counter() - t0
        diff = float(np.abs(exact.as_array() - generic.as_array()).max())
        print(f"repeat {rep}: fit {t_fit:6.2f} s (converged {law.result_.success}, {law.n_iter_} iterations, "
              f"{len(caught)} warnings) | exact {t_exact:6.3f} s | generic {t_generic:6.2f} s "
              f"({t_generic / t_exact:,.0f}x) | max |w_exact - w_generic| {diff:.1e}")


if __name__ == "__main__":
    main()
