"""Nested prediction of Ye et al. (2024): from small, short proxy runs to the loss of a large,
long run on any mixture, without training one.

1. step law per (run, validation domain): fit ``L(S) = E + B / S^b`` on the run's curve and
   predict the loss at `target_step`;
2. size law per (mixture, validation domain): fit ``L(N) = E + A / N^a`` on those predictions
   across proxy sizes and predict at `target_size`;
3. mixing law: fit on (mixture, predicted loss) pairs; it then predicts any mixture at the target
   step and size.

Each stage keeps every intermediate fit as a tidy DataFrame for plotting and inspection.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from mixkit.progress import progress_bar
from mixkit.table import last_step, mixture_weights, validate_table, weight_columns

from .fitting import FitWarning
from .mixing import MixingLaw
from .scaling import SizeLaw, StepLaw


def mixture_keys(table: pd.DataFrame, decimals: int = 6) -> pd.Series:
    """A readable key per row naming its mixture: the rounded weights joined by '-'."""
    W = table[weight_columns(table)].to_numpy(dtype=float).round(decimals)
    return pd.Series(["-".join(f"{w:g}" for w in row) for row in W], index=table.index, name="mixture")


@dataclass(frozen=True)
class NestedPrediction:
    """Everything nested_prediction fitted.

    law: the fitted mixing law (predicts losses per validation domain at target step and size).
    mixtures: mixture key -> training-domain weights (the mixing law's X).
    predictions: mixture x validation domain predicted losses (the mixing law's y).
    step_fits / size_fits: one row per fit with its parameters, prediction and diagnostics
    (empty when the stage was skipped); step_points / size_points: the points each fit saw with
    the fitted value, for plotting.
    """

    law: object
    target_step: int | None
    target_size: float | None
    domains: list[str]
    mixtures: pd.DataFrame
    predictions: pd.DataFrame
    step_fits: pd.DataFrame
    step_points: pd.DataFrame
    size_fits: pd.DataFrame
    size_points: pd.DataFrame

    def predict(self, weights) -> np.ndarray:
        """Predicted per-domain losses of the mixing law for mixtures `weights` (n, d)."""
        return self.law.predict(weights)


def _fit_quiet(est, X, y):
    """Fit, returning the FitWarnings as text instead of letting hundreds of them through."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        est.fit(X, y)
    msgs = [str(w.message) for w in caught if issubclass(w.category, FitWarning)]
    for w in caught:
        if not issubclass(w.category, FitWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return "; ".join(msgs)


def _fit_1d(template, x: np.ndarray, y: np.ndarray, target: float):
    """Fit a clone of a one-input law on (x, y); returns (summary fields, prediction at target,
    fitted values at x) for the tidy tables of intermediate fits."""
    est = clone(template)
    warn = _fit_quiet(est, x, y)
    pred = float(np.ravel(est.predict(np.array([float(target)])))[0])
    summary = {**_params(est), "pred": pred, "objective": est.result_.objective,
               "success": est.result_.success, "warning": warn}
    return summary, pred, est.predict(x)


def _params(est) -> dict:
    """The parameters of a single-output fit as {name: value}."""
    return est.params_.iloc[0].to_dict()


def nested_prediction(
    table: pd.DataFrame,
    target_step: int | None,
    target_size: float | None,
    mixing_law=None,
    step_law=None,
    size_law=None,
    domains: Sequence[str] | None = None,
    min_step: int = 0,
    progress: bool = True,
    random_state=0,
) -> NestedPrediction:
    """Fit the step, size and mixing laws in turn (Ye et al. 2024) and return them all.

    table: run table (mixkit.table) with each run's loss curve on every validation domain.
    target_step: step to extrapolate each run to; None skips the step stage and uses each run's
        last recorded loss.
    target_size: model size to extrapolate each mixture to (needs >= 3 proxy sizes per mixture);
        None skips the size stage (the table must then hold a single model size).
    mixing_law / step_law / size_law: estimators to clone (defaults MixingLaw(),
        StepLaw(n_starts=4), SizeLaw(n_starts=8), each seeded with `random_state`; laws passed in
        keep their own seeds).
    min_step: curve points below this step are left out of the step fits (the early plateau does
        not follow the power law).
    Seeds of the same mixture and size are averaged after the step stage.
    """
    table, doms = _select_domains(validate_table(table), domains)
    table["mixture"] = mixture_keys(table)
    run_mixture = table.groupby("run_id", sort=False)["mixture"].first()
    mixtures = mixture_weights(table).groupby(run_mixture).first()
    step_law = StepLaw(n_starts=4, random_state=random_state) if step_law is None else step_law
    size_law = SizeLaw(n_starts=8, random_state=random_state) if size_law is None else size_law
    mixing_law = MixingLaw(random_state=random_state) if mixing_law is None else mixing_law

    run_pred, step_fits, step_points = _step_stage(table, target_step, step_law, min_step, progress)
    # Seeds of one mixture at one size are one point for the size law.
    per_size = run_pred.groupby(["mixture", "model_size", "domain"], as_index=False)["pred"].mean()
    mix_pred, size_fits, size_points = _size_stage(per_size, target_size, size_law, progress)
    _warn_fit_warnings({"step": step_fits, "size": size_fits})

    # Stage 3: the mixing law on the predicted losses.
    predictions = mix_pred.pivot(index="mixture", columns="domain", values="pred")[doms]
    predictions.columns.name = None
    X = mixtures.loc[predictions.index]
    law = clone(mixing_law).fit(X, predictions)
    return NestedPrediction(
        law=law, target_step=target_step, target_size=target_size, domains=doms,
        mixtures=X, predictions=predictions, step_fits=step_fits, step_points=step_points,
        size_fits=size_fits, size_points=size_points,
    )


def _select_domains(table: pd.DataFrame, domains: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """The rows of the chosen validation domains (all by default) and those domains' names."""
    doms = sorted(table["domain"].unique()) if domains is None else list(domains)
    unknown = [d for d in doms if d not in set(table["domain"])]
    if unknown:
        raise ValueError(f"validation domain(s) {unknown} not in the table")
    return table[table["domain"].isin(doms)].copy(), doms


def _step_stage(table: pd.DataFrame, target_step: int | None, step_law, min_step: int, progress: bool):
    """Stage 1: each run's curve -> its loss at target_step (its last loss when target_step is None).

    Returns (run_id, model_size, mixture, domain, pred) rows, the step fits and their points.
    """
    if target_step is None:
        last = last_step(table)
        run_pred = last[["run_id", "model_size", "mixture", "domain", "loss"]].rename(columns={"loss": "pred"})
        return run_pred, pd.DataFrame(), pd.DataFrame()
    step_rows, step_pts = [], []
    groups = list(table.groupby(["run_id", "domain"], sort=True))
    for (run_id, dom), g in progress_bar(groups, desc="step laws", disable=not progress):
        g = g[g["step"] >= min_step].sort_values("step")
        if g["step"].nunique() < 3:
            raise ValueError(
                f"run {run_id!r} domain {dom!r} has {g['step'].nunique()} step(s) >= min_step={min_step}; "
                "a step law needs at least 3"
            )
        summary, _, fitted = _fit_1d(step_law, g["step"].to_numpy(float), g["loss"].to_numpy(float), target_step)
        step_rows.append({"run_id": run_id, "model_size": g["model_size"].iloc[0], "mixture": g["mixture"].iloc[0],
                          "domain": dom, **summary, "n_points": len(g)})
        step_pts.append(pd.DataFrame({"run_id": run_id, "domain": dom, "step": g["step"].to_numpy(),
                                      "loss": g["loss"].to_numpy(), "fitted": fitted}))
    step_fits = pd.DataFrame(step_rows)
    run_pred = step_fits[["run_id", "model_size", "mixture", "domain", "pred"]]
    return run_pred, step_fits, pd.concat(step_pts, ignore_index=True)


def _size_stage(per_size: pd.DataFrame, target_size: float | None, size_law, progress: bool):
    """Stage 2: each mixture across proxy sizes -> its loss at target_size (None: one size only).

    Returns (mixture, domain, pred) rows, the size fits and their points.
    """
    if target_size is None:
        sizes = per_size["model_size"].unique()
        if len(sizes) > 1:
            raise ValueError(
                f"the table holds {len(sizes)} model sizes {sorted(sizes)}; pass target_size to extrapolate "
                "across them, or filter the table to one size"
            )
        return per_size[["mixture", "domain", "pred"]], pd.DataFrame(), pd.DataFrame()
    size_rows, size_pts = [], []
    groups = list(per_size.groupby(["mixture", "domain"]))
    for (mix, dom), g in progress_bar(groups, desc="size laws", disable=not progress):
        g = g.sort_values("model_size")
        if g["model_size"].nunique() < 3 or (g["model_size"] <= 0).any():
            raise ValueError(
                f"mixture {mix!r} domain {dom!r} has {g['model_size'].nunique()} positive model size(s); "
                "a size law needs at least 3"
            )
        summary, _, fitted = _fit_1d(size_law, g["model_size"].to_numpy(float), g["pred"].to_numpy(float),
                                     target_size)
        size_rows.append({"mixture": mix, "domain": dom, **summary, "n_sizes": len(g)})
        size_pts.append(pd.DataFrame({"mixture": mix, "domain": dom, "model_size": g["model_size"].to_numpy(),
                                      "loss": g["pred"].to_numpy(), "fitted": fitted}))
    size_fits = pd.DataFrame(size_rows)
    return size_fits[["mixture", "domain", "pred"]], size_fits, pd.concat(size_pts, ignore_index=True)


def _warn_fit_warnings(fits: dict[str, pd.DataFrame]) -> None:
    """One FitWarning per stage whose fits raised any (their text is in the 'warning' column)."""
    for name, stage in fits.items():
        if len(stage) and (stage["warning"] != "").any():
            n = int((stage["warning"] != "").sum())
            warnings.warn(f"{n} of {len(stage)} {name}-law fits raised fit warnings (see the 'warning' column of {name}_fits)",
                          FitWarning, stacklevel=3)
