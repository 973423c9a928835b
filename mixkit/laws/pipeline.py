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
from tqdm.auto import tqdm

from mixkit.table import validate_table, weight_columns

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
    return dict(est.params_) if isinstance(est.params_, dict) else {}


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
) -> NestedPrediction:
    """Fit the step, size and mixing laws in turn (Ye et al. 2024) and return them all.

    table: run table (mixkit.table) with each run's loss curve on every validation domain.
    target_step: step to extrapolate each run to; None skips the step stage and uses each run's
        last recorded loss.
    target_size: model size to extrapolate each mixture to (needs >= 3 proxy sizes per mixture);
        None skips the size stage (the table must then hold a single model size).
    mixing_law / step_law / size_law: estimators to clone (defaults MixingLaw(random_state=0),
        StepLaw(n_starts=4, random_state=0), SizeLaw(n_starts=8, random_state=0)).
    min_step: curve points below this step are left out of the step fits (the early plateau does
        not follow the power law).
    Seeds of the same mixture and size are averaged after the step stage.
    """
    table = validate_table(table)
    doms = sorted(table["domain"].unique()) if domains is None else list(domains)
    unknown = [d for d in doms if d not in set(table["domain"])]
    if unknown:
        raise ValueError(f"validation domain(s) {unknown} not in the table")
    table = table[table["domain"].isin(doms)].copy()
    table["mixture"] = mixture_keys(table)
    wcols = weight_columns(table)
    mixtures = table.groupby("mixture")[wcols].first()
    mixtures.columns = [c[2:] for c in wcols]
    step_law = StepLaw(n_starts=4, random_state=0) if step_law is None else step_law
    size_law = SizeLaw(n_starts=8, random_state=0) if size_law is None else size_law
    mixing_law = MixingLaw(random_state=0) if mixing_law is None else mixing_law

    # Stage 1: each run's curve -> its loss at target_step.
    step_rows, step_pts = [], []
    groups = list(table.groupby(["run_id", "domain"], sort=True))
    if target_step is None:
        last = table[table["step"] == table.groupby("run_id")["step"].transform("max")]
        run_pred = last[["run_id", "model_size", "mixture", "domain", "loss"]].rename(columns={"loss": "pred"})
    else:
        for (run_id, dom), g in tqdm(groups, desc="step laws", disable=not progress):
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
        run_pred = pd.DataFrame(step_rows)[["run_id", "model_size", "mixture", "domain", "pred"]]
    step_fits = pd.DataFrame(step_rows)
    step_points = pd.concat(step_pts, ignore_index=True) if step_pts else pd.DataFrame()

    # Seeds of one mixture at one size are one point for the size law.
    per_size = run_pred.groupby(["mixture", "model_size", "domain"], as_index=False)["pred"].mean()

    # Stage 2: each mixture across proxy sizes -> its loss at target_size.
    size_rows, size_pts = [], []
    if target_size is None:
        sizes = per_size["model_size"].unique()
        if len(sizes) > 1:
            raise ValueError(
                f"the table holds {len(sizes)} model sizes {sorted(sizes)}; pass target_size to extrapolate "
                "across them, or filter the table to one size"
            )
        mix_pred = per_size[["mixture", "domain", "pred"]]
    else:
        for (mix, dom), g in tqdm(list(per_size.groupby(["mixture", "domain"])), desc="size laws", disable=not progress):
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
        mix_pred = pd.DataFrame(size_rows)[["mixture", "domain", "pred"]]
    size_fits = pd.DataFrame(size_rows)
    size_points = pd.concat(size_pts, ignore_index=True) if size_pts else pd.DataFrame()

    for name, fits in (("step", step_fits), ("size", size_fits)):
        if len(fits) and (fits["warning"] != "").any():
            n = int((fits["warning"] != "").sum())
            warnings.warn(f"{n} of {len(fits)} {name}-law fits raised fit warnings (see the 'warning' column of {name}_fits)",
                          FitWarning, stacklevel=2)

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
