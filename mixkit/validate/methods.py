"""Each method's recommended mixture from proxy runs already in a run table (or from no runs at all).

Every fitted method sees the same design runs (one proxy config, one set of mixtures) and
minimises the same objective, the mean predicted loss over the validation domains, so a bake-off
compares the methods' analyses on one budget:

- mixing law (Ye et al. 2024): the explicit exponential law per domain, minimised exactly;
- RegMix (Liu et al. 2024): linear, LightGBM and log-linear regressors, the one with the best
  held-out Spearman kept, its top-k simulation averaged;
- BiMix (Ge et al. 2024): the bivariate (step, share) law fitted on every evaluated step,
  minimised at the final step;
- nested pipeline (Ye et al.): step -> size -> mixing law from smaller proxies, aimed at the
  validation proxy's size and length;
- entropy (BiMix's training-free mixture): conditional token entropy, zero runs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from mixkit.laws import (BiMixLaw, FitWarning, LightGBMLaw, LinearRegressionLaw, LogLinearLaw, MixingLaw,
                         compare_laws, nested_prediction)
from mixkit.mixture import Mixture, entropy_mixture
from mixkit.optimize import optimize_mixture
from mixkit.table import pivot_curves, pivot_losses, target_loss


@dataclass
class Recommendation:
    """A method's mixture, the proxy runs it used (their compute is counted from the store), and
    what it chose along the way (`note`), with the law's own prediction of its objective."""

    method: str
    mixture: object
    run_ids: list[str] = field(default_factory=list)
    note: str = ""
    predicted_loss: float = float("nan")


def _quiet_fit(est, X, y):
    with warnings.catch_warnings():
        # Fit warnings of proxy-scale laws are reported by the notebooks that study each law.
        warnings.simplefilter("ignore", FitWarning)
        return est.fit(X, y)


def _objective(doms: Sequence[str]) -> np.ndarray:
    return np.full(len(doms), 1.0 / len(doms))


def mixing_law(table: pd.DataFrame, doms: list[str], n_starts: int = 16, seed: int = 0) -> Recommendation:
    """Ye et al.'s explicit mixing law on the final losses of the runs in `table`."""
    W, L = pivot_losses(table, domains=doms)
    law = _quiet_fit(MixingLaw(n_starts=n_starts, random_state=seed), W[doms], L[doms])
    best = optimize_mixture(law, domains=doms, objective=_objective(doms), rng=seed)
    return Recommendation("mixing law", best.mixture("mixing law"), sorted(W.index), "explicit exponential law",
                          float(best.predicted_loss))


def regmix(table: pd.DataFrame, doms: list[str], prior: dict[str, float], cv_folds: int = 4, seed: int = 0,
           n_samples: int = 100_000, top_k: int = 128, caps: dict[str, float] | None = None) -> Recommendation:
    """RegMix: the regressor with the best held-out Spearman of the mean loss, then its top-k optimum."""
    W, L = pivot_losses(table, domains=doms)
    X, y = W[doms], target_loss(L[doms], "mean")
    laws = {"linear": LinearRegressionLaw(), "lightgbm": LightGBMLaw(), "log-linear": LogLinearLaw(random_state=seed)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        # k-fold leaves k-fold-sized holes: with few runs a fold would hold fewer runs than a linear law's parameters
        cv = cv_folds if len(X) * (cv_folds - 1) / cv_folds > 2 * (len(doms) + 1) else "loo"
        scores = compare_laws((X, y), laws, cv=cv, random_state=seed, progress=False)
    spearman = scores.set_index("law")["spearman"].fillna(-np.inf)
    name = str(spearman.idxmax())
    law = _quiet_fit(clone(laws[name]), X, y)
    best = optimize_mixture(law, domains=doms, method="topk", n_samples=n_samples, top_k=top_k,
                            prior=[prior[d] for d in doms], caps=caps, rng=seed)
    return Recommendation("RegMix", best.mixture("RegMix"), sorted(W.index),
                          f"best regressor {name} (held-out Spearman {spearman[name]:.2f})", float(best.predicted_loss))


def bimix(table: pd.DataFrame, doms: list[str], min_weight: float = 0.02, n_starts: int = 8, max_iter: int = 300,
          seed: int = 0, min_share: float = 0.01) -> Recommendation:
    """BiMix's full law L_i(s, r_i), one fit per domain on every evaluated step (step 0 left out),
    minimised at the last step. The law diverges at r_i = 0, so domain i's fit leaves out the runs
    giving it less than `min_share` (it needs 3 runs left)."""
    W, L = pivot_curves(table, domains=doms, min_step=1)
    X = W.reset_index().drop(columns="run_id")
    y = L.reset_index(drop=True)
    final = float(X["step"].max())
    laws = {}
    for d in doms:
        keep = (X[d] >= min_share).to_numpy()
        if W.loc[keep, d].index.get_level_values("run_id").nunique() < 3:
            raise ValueError(f"BiMix: fewer than 3 design runs give domain {d!r} a share >= {min_share}")
        laws[d] = _quiet_fit(BiMixLaw(form="full", n_starts=n_starts, max_iter=max_iter, random_state=seed),
                             X.loc[keep, ["step", d]], y.loc[keep, [d]])

    def at_final(shares):
        cols = [laws[d].predict(np.column_stack([np.full(len(shares), final), shares[:, j]])).ravel()
                for j, d in enumerate(doms)]
        return np.column_stack(cols)

    best = optimize_mixture(at_final, domains=doms, bounds={d: (min_weight, 1.0) for d in doms}, rng=seed)
    runs_used = sorted(set(W.index.get_level_values("run_id")))
    return Recommendation("BiMix", best.mixture("BiMix"), runs_used,
                          f"full bivariate law per domain at the final step (shares >= {min_share})",
                          float(best.predicted_loss))


def nested(table: pd.DataFrame, doms: list[str], target_step: int, target_size: int, min_step: int,
           n_starts: int = 16, seed: int = 0) -> Recommendation:
    """Ye et al.'s nested pipeline on runs at >= 3 sizes, aimed at (target_step, target_size)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hundreds of small step/size fits; the bake-off validates the result
        fitted = nested_prediction(table, target_step=target_step, target_size=target_size, domains=doms,
                                   mixing_law=MixingLaw(n_starts=n_starts, random_state=seed), min_step=min_step,
                                   progress=False)
    best = optimize_mixture(fitted.law, domains=doms, objective=_objective(doms), rng=seed)
    sizes = sorted(int(s) for s in table["model_size"].unique())
    return Recommendation("nested pipeline", best.mixture("nested pipeline"), sorted(table["run_id"].unique()),
                          f"sizes {sizes} -> {target_size}, steps -> {target_step}", float(best.predicted_loss))


def entropy(data, doms: list[str], seed: int = 0) -> Recommendation:
    """BiMix's training-free mixture: weights proportional to conditional token entropy (no runs)."""
    mix = entropy_mixture(data, kind="conditional", domains=doms, rng=seed)
    return Recommendation("entropy", Mixture(mix.weights, domains=doms, name="entropy"), [], "conditional entropy")


def doremi(config, data, store, workers: int | None = None, progress: bool = True) -> Recommendation:
    """DoReMi (Xie et al. 2023): a uniform reference proxy, then a Group-DRO proxy; its average weights
    are the recommendation, trained as a fixed mixture (as the paper does)."""
    from mixkit.online import doremi as run_doremi

    res = run_doremi(config, data, store, workers=workers, progress=progress)
    used = list(res.run_ids) + [r for r in res.reference_ids if r]
    return Recommendation("DoReMi", Mixture(res.mixture.weights, domains=data.domains, name="DoReMi"), used,
                          "Group-DRO proxy against a uniform reference; average weights")


def odm(smoothing: float = 0.9) -> Recommendation:
    """ODM (Albalak et al. 2023): an EXP3 bandit mixes online inside the run itself, so it has no proxy
    runs: the validation trains the policy at the validation proxy."""
    from mixkit.proxy import EXP3

    return Recommendation("ODM", EXP3(smoothing=smoothing), [], "EXP3 policy trained online (no proxy runs)")
