"""Nested prediction of Ye et al. (2024): from small, short proxy runs to the loss of a large,
long run on any mixture, without training one.

1. step law per (run, validation domain): fit ``L(S) = E + B / S^b`` on the run's curve and
   predict the loss at `target_step`;
2. size law per (mixture, validation domain): fit ``L(N) = E + A / N^a`` on those predictions
   across proxy sizes and predict at `target_size`;
3. mixing law: fit on (mixture, predicted loss) pairs; it then predicts any mixture at the target
   step and size.

The step and size laws of stages 1-2 are fitted all at once as arrays (mixkit.laws.batch): no
random starts, so only the mixing law's seed can move the answer, and its multi-start fit reports
near-equal optima that disagree. With ``bootstrap`` > 0 each replicate redraws every step curve's
points from its fit, refits the step laws, redraws the size curves the same way around those new
predictions, refits the size laws, and refits the mixing law on those targets times its own log
residuals redrawn among the mixtures: step-, size- and mixing-law uncertainty propagates into the
interval of the final prediction. The mixtures are a fixed design, so every stage resamples
residuals, not cases: a case resample of 7 mixtures keeps about 4.6 distinct ones, fewer than the
5 parameters a 3-domain mixing law has per domain, and such replicates predicted losses of 10^5.

N is the table's ``non_embedding_params`` column when every run has one (the releases' nominal
"70M" is total parameters), else ``model_size``; the result says which N and which steps it used
(:attr:`NestedPrediction.sizes`, :meth:`NestedPrediction.summary`), and warns with the distance
when the target size or step lies beyond the fitted ones, or a queried mixture outside the fitted
mixtures' hull or per-domain range.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from mixkit import reference
from mixkit.table import NON_EMBEDDING_COLUMN, last_step, mixture_weights, validate_table, weight_columns

from .domain import ExtrapolationWarning, warn_outside
from .fitting import FitWarning
from .mixing import MixingLaw
from .scaling import SizeLaw, StepLaw
from .stages import Curves, batch_fit, fit_curves, fitted_params, is_batchable, resample_curves


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
    the fitted value, for plotting. Their ``model_size`` column is the N the size law used.
    size_column: the run-table column N came from; sizes: one row per proxy size (N, nominal
    size, label, runs, steps used); extrapolation: the fitted and target size and step and how
    far (decades) beyond the fitted ones the targets lie; stability: per validation domain, the
    mixing law's convergence and whether near-equal optima predict differently;
    boot_laws: the bootstrap replicates' mixing laws (empty without bootstrap).
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
    size_column: str = "model_size"
    sizes: pd.DataFrame = field(default_factory=pd.DataFrame)
    extrapolation: dict = field(default_factory=dict)
    stability: pd.DataFrame = field(default_factory=pd.DataFrame)
    boot_laws: tuple = ()

    def predict(self, weights, return_interval: bool = False, alpha: float = 0.1, warn: bool = True):
        """Per-domain losses of the mixing law for mixtures `weights` (n, d); with `return_interval`,
        ``(prediction, lower, upper)`` from the chained bootstrap (fit with bootstrap > 0). Warns
        (ExtrapolationWarning, with the distance) for mixtures outside the fitted hull or range."""
        pred = self.law.predict(weights)
        if warn:
            flags = self.law.check_domain(weights)
            warn_outside(self.law.fit_domain_, flags, "nested_prediction", "mixture")
        if not return_interval:
            return pred
        lo, hi = self.predict_interval(weights, alpha)
        return pred, lo, hi

    def predict_interval(self, weights, alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Percentile (1 - alpha) interval over the bootstrap replicates of the whole pipeline."""
        preds = self._replicates(weights)
        lo, hi = np.nanquantile(preds, [alpha / 2, 1 - alpha / 2], axis=0)
        return lo, hi

    def _replicates(self, weights) -> np.ndarray:
        if not self.boot_laws:
            raise ValueError("intervals need the pipeline's bootstrap: call nested_prediction(..., bootstrap=100)")
        return np.stack([np.asarray(b.predict(weights)) for b in self.boot_laws])

    def check_domain(self, weights) -> pd.DataFrame:
        """Per queried mixture: outside_range / range_distance / range_column and outside_hull /
        hull_distance with respect to the mixtures the mixing law was fitted on."""
        return self.law.check_domain(weights)

    def predict_frame(self, weights, alpha: float | None = 0.1, aggregate=None) -> pd.DataFrame:
        """One row per (queried mixture, validation domain): pred, lower, upper (alpha None: no
        interval) and the mixture's extrapolation flags. `aggregate` ({domain: weight} or weights in
        the order of ``domains``) adds an ``overall`` row per mixture, its interval from the same
        replicates. Warns for mixtures outside the fitted region."""
        pred = np.atleast_2d(np.asarray(self.predict(weights)))
        reps = self._replicates(weights) if alpha is not None else None
        names = list(self.domains)
        if aggregate is not None:
            s = _aggregate_weights(aggregate, names)
            pred = np.column_stack([pred, pred @ s])
            reps = None if reps is None else np.concatenate([reps, (reps @ s)[..., None]], axis=2)
            names.append("overall")
        index = weights.index if isinstance(weights, pd.DataFrame) else pd.RangeIndex(len(pred))
        out = pd.DataFrame({"query": np.repeat(np.asarray(index), len(names)), "domain": np.tile(names, len(pred)),
                            "pred": pred.ravel()})
        if reps is not None:
            lo, hi = np.nanquantile(reps, [alpha / 2, 1 - alpha / 2], axis=0)
            out["lower"], out["upper"] = lo.ravel(), hi.ravel()
        flags = self.check_domain(weights).set_axis(np.asarray(index))
        return out.join(flags, on="query")

    def summary(self) -> str:
        """Which N and steps the pipeline used, its targets and how far it extrapolated."""
        lines = [f"nested prediction: N from column {self.size_column!r}"]
        for row in self.sizes.itertuples():
            lines.append(f"  N={row.N:,.0f} ({row.label or row.model_size}): {row.runs} runs, steps "
                         f"{row.step_min:,}-{row.step_max:,}")
        ex = self.extrapolation
        if ex.get("size_target") is not None:
            lines.append(f"target N={ex['size_target']:,.0f}: {ex['size_decades']:.3g} decades beyond the "
                         f"largest fitted N {ex['size_fitted'][1]:,.0f}")
        if ex.get("step_target") is not None:
            lines.append(f"target step {ex['step_target']:,}: up to {ex['step_decades']:.3g} decades beyond a "
                         f"run's last fitted step (largest fitted step {ex['step_fitted_max']:,})")
        bad = self.stability[self.stability["multiple_minima"]] if len(self.stability) else []
        if len(bad):
            lines.append(f"mixing law: near-equal optima predict differently on {list(bad['domain'])}")
        lines.append(f"bootstrap replicates: {len(self.boot_laws)}")
        return "\n".join(lines)


def _aggregate_weights(aggregate, names: list[str]) -> np.ndarray:
    if isinstance(aggregate, Mapping):
        missing = [d for d in names if d not in aggregate]
        if missing:
            raise ValueError(f"aggregate weights lack validation domain(s) {missing}")
        return np.array([float(aggregate[d]) for d in names])
    s = np.asarray(aggregate, dtype=float).ravel()
    if len(s) != len(names):
        raise ValueError(f"got {len(s)} aggregate weights for {len(names)} validation domains")
    return s


def nested_prediction(
    table: pd.DataFrame,
    target_step: int | None,
    target_size: float | str | None,
    mixing_law=None,
    step_law=None,
    size_law=None,
    domains: Sequence[str] | None = None,
    min_step: int = 0,
    progress: bool = True,
    random_state=0,
    bootstrap: int = 0,
    size_column: str = "auto",
    size_map: Mapping[str, float] | None = None,
) -> NestedPrediction:
    """Fit the step, size and mixing laws in turn (Ye et al. 2024) and return them all.

    table: run table (mixkit.table) with each run's loss curve on every validation domain.
    target_step: step to extrapolate each run to; None skips the step stage and uses each run's
        last recorded loss.
    target_size: model size to extrapolate each mixture to (needs >= 3 proxy sizes per mixture),
        in the units of the size column, or a size label ("1B") looked up in `size_map` (default
        :data:`mixkit.reference.PYTHIA` for non-embedding N); None skips the size stage (the table
        must then hold a single model size).
    mixing_law / step_law / size_law: estimators to clone (defaults MixingLaw() (256 batched starts),
        StepLaw(), SizeLaw(), seeded with `random_state`; laws passed in keep their own seeds).
        StepLaw and SizeLaw are fitted as arrays (seed-free); other one-input laws one by one.
    min_step: curve points below this step are left out of the step fits (early plateau).
    bootstrap: replicates of the whole chain for prediction intervals (0: none).
    size_column: "auto" (``non_embedding_params`` when every run has it, else ``model_size``) or a
        column name. Seeds of the same mixture and size are averaged after the step stage.
    """
    table, doms = _select_domains(validate_table(table), domains)
    col = _size_column(table, size_column)
    table["mixture"] = mixture_keys(table)
    table["nominal_size"] = table["model_size"]
    table["model_size"] = table[col].astype(float)
    target_n = _resolve_size(target_size, col, size_map)
    mixtures = mixture_weights(table).groupby(table.groupby("run_id", sort=False)["mixture"].first()).first()
    step_law = StepLaw(random_state=random_state) if step_law is None else step_law
    size_law = SizeLaw(random_state=random_state) if size_law is None else size_law
    mixing_law = MixingLaw(random_state=random_state) if mixing_law is None else mixing_law

    step = _step_stage(table, target_step, step_law, min_step, progress)
    per_size = step["run_pred"].groupby(["mixture", "model_size", "domain"], as_index=False)["pred"].mean()
    size = _size_stage(per_size, target_n, size_law, progress)
    _warn_fit_warnings({"step": step["fits"], "size": size["fits"]})

    predictions = _pivot(size["mix_pred"], doms)
    X = mixtures.loc[predictions.index]
    law = clone(mixing_law).fit(X, predictions)
    boot = _bootstrap(law, X, predictions, step, size, per_size, doms, target_step, target_n, (step_law, size_law),
                      int(bootstrap), random_state)
    info = _extrapolation(table, step, target_step, target_n, min_step)
    return NestedPrediction(
        law=law, target_step=target_step, target_size=target_n, domains=doms, mixtures=X, predictions=predictions,
        step_fits=step["fits"], step_points=step["points"], size_fits=size["fits"], size_points=size["points"],
        size_column=col, sizes=_sizes_used(table, step, min_step), extrapolation=info,
        stability=_stability(law), boot_laws=tuple(boot),
    )


def _pivot(mix_pred: pd.DataFrame, doms: list[str]) -> pd.DataFrame:
    out = mix_pred.pivot(index="mixture", columns="domain", values="pred")[doms]
    out.columns.name = None
    return out


def _select_domains(table: pd.DataFrame, domains: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """The rows of the chosen validation domains (all by default) and those domains' names."""
    doms = sorted(table["domain"].unique()) if domains is None else list(domains)
    unknown = [d for d in doms if d not in set(table["domain"])]
    if unknown:
        raise ValueError(f"validation domain(s) {unknown} not in the table")
    return table[table["domain"].isin(doms)].copy(), doms


def _size_column(table: pd.DataFrame, size_column: str) -> str:
    """The column N comes from: non-embedding parameters when every run has them (auto)."""
    if size_column != "auto":
        if size_column not in table.columns:
            raise ValueError(f"size_column {size_column!r} is not a column of the table")
        if not (pd.to_numeric(table[size_column], errors="coerce") > 0).all():
            raise ValueError(f"size_column {size_column!r} must hold a positive size on every row")
        return size_column
    if NON_EMBEDDING_COLUMN in table.columns and table[NON_EMBEDDING_COLUMN].notna().all():
        return NON_EMBEDDING_COLUMN
    if NON_EMBEDDING_COLUMN in table.columns and table[NON_EMBEDDING_COLUMN].notna().any():
        lacking = sorted(table.loc[table[NON_EMBEDDING_COLUMN].isna(), "model_size"].unique().tolist())
        warnings.warn(f"non-embedding sizes are missing for model_size {lacking}: the size law uses the "
                      "nominal model_size of every run instead (pass size_map to the loader)", stacklevel=3)
    return "model_size"


_LABEL_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMBT])$", re.IGNORECASE)


def _resolve_size(target, column: str, size_map: Mapping[str, float] | None) -> float | None:
    """A numeric target size, from a number or a size label ("1B")."""
    if target is None or not isinstance(target, str):
        return None if target is None else float(target)
    if column == NON_EMBEDDING_COLUMN or size_map is not None:
        table = {str(k).upper(): float(v) for k, v in (size_map or reference.PYTHIA.non_embedding).items()}
        if target.upper() not in table:
            raise ValueError(f"target_size {target!r} is not in the size map {sorted(table)}; pass a number or size_map")
        return table[target.upper()]
    m = _LABEL_RE.match(target.strip())
    if not m:
        raise ValueError(f"target_size {target!r} is neither a number nor a size label such as '1B'")
    return float(m.group(1)) * {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[m.group(2).upper()]


def _step_stage(table: pd.DataFrame, target_step: int | None, step_law, min_step: int, progress: bool) -> dict:
    """Stage 1: each run's curve -> its loss at target_step (its last loss when target_step is None).

    Returns run_pred (run_id, model_size, mixture, domain, pred), fits, points, and the curves
    with their fitted values for the bootstrap.
    """
    meta = table.groupby("run_id")[["model_size", "mixture"]].first()
    if target_step is None:
        last = last_step(table)
        run_pred = last[["run_id", "model_size", "mixture", "domain", "loss"]].rename(columns={"loss": "pred"})
        return {"run_pred": run_pred, "fits": pd.DataFrame(), "points": pd.DataFrame(), "curves": None, "meta": meta}
    kept = table[table["step"] >= min_step]
    curves = Curves.from_long(kept, ["run_id", "domain"], "step", "loss")
    _require_three_points(curves, "run", f"step(s) >= min_step={min_step}", "step")
    fits, fitted = fit_curves(curves, step_law, float(target_step), "step", progress)
    fits = fits.join(meta, on="run_id")
    fits = fits[["run_id", "model_size", "mixture", "domain"] + [c for c in fits.columns if c not in
                                                                   ("run_id", "model_size", "mixture", "domain")]]
    return {"run_pred": fits[["run_id", "model_size", "mixture", "domain", "pred"]], "fits": fits,
            "points": _points(curves, fitted, "step", "loss"), "curves": curves, "fitted": fitted, "meta": meta}


def _require_three_points(curves: Curves, key: str, points: str, law: str) -> None:
    """A power law has three parameters: refuse the first curve with fewer than 3 points, naming it."""
    counts = curves.n_points()
    few = np.flatnonzero(counts < 3)
    if few.size:
        name, dom = curves.keys.iloc[few[0]]
        raise ValueError(f"{key} {name!r} domain {dom!r} has {counts[few[0]]} {points}; a {law} law needs at least 3")


def _points(curves: Curves, fitted: np.ndarray, x: str, y: str) -> pd.DataFrame:
    """The points each curve's fit saw with the fitted value, one row each."""
    rows, cols = np.nonzero(np.isfinite(curves.y))
    out = curves.keys.iloc[rows].reset_index(drop=True)
    out[x], out[y], out["fitted"] = curves.x[rows, cols], curves.y[rows, cols], fitted[rows, cols]
    return out


def _size_stage(per_size: pd.DataFrame, target_size: float | None, size_law, progress: bool) -> dict:
    """Stage 2: each mixture across proxy sizes -> its loss at target_size (None: one size only)."""
    if target_size is None:
        sizes = per_size["model_size"].unique()
        if len(sizes) > 1:
            raise ValueError(
                f"the table holds {len(sizes)} model sizes {sorted(sizes)}; pass target_size to extrapolate "
                "across them, or filter the table to one size"
            )
        return {"mix_pred": per_size[["mixture", "domain", "pred"]], "fits": pd.DataFrame(),
                "points": pd.DataFrame(), "curves": None}
    curves = Curves.from_long(per_size, ["mixture", "domain"], "model_size", "pred")
    _require_three_points(curves, "mixture", "positive model size(s)", "size")
    fits, fitted = fit_curves(curves, size_law, float(target_size), "size", progress)
    fits = fits.rename(columns={"n_points": "n_sizes"})
    return {"mix_pred": fits[["mixture", "domain", "pred"]], "fits": fits, "curves": curves, "fitted": fitted,
            "points": _points(curves, fitted, "model_size", "loss")}


def _warn_fit_warnings(fits: dict[str, pd.DataFrame]) -> None:
    """One FitWarning per stage whose fits raised any (their text is in the 'warning' column)."""
    for name, stage in fits.items():
        if len(stage) and (stage["warning"] != "").any():
            n = int((stage["warning"] != "").sum())
            warnings.warn(f"{n} of {len(stage)} {name}-law fits raised fit warnings (see the 'warning' column of {name}_fits)",
                          FitWarning, stacklevel=3)


# Iterations of a replicate's step and size refits: they start at the original optimum, nearby.
_BOOT_ITER = 300


def _bootstrap(law, X: pd.DataFrame, Y: pd.DataFrame, step: dict, size: dict, per_size: pd.DataFrame, doms: list[str],
               target_step, target_n, laws: tuple, n_boot: int, random_state) -> list:
    """Mixing laws refitted on `n_boot` replicates of the whole chain (see the module docstring)."""
    if n_boot <= 0:
        return []
    for stage, fitted_law in zip((step, size), laws):
        if stage["curves"] is not None and not is_batchable(fitted_law):
            raise ValueError(f"the pipeline's bootstrap refits the step and size laws as arrays: use StepLaw/SizeLaw, "
                             f"not {type(fitted_law).__name__}, or bootstrap=0")
    rng = np.random.default_rng(random_state)
    resid = _mixing_residuals(law, X, Y)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        for _ in range(n_boot):
            targets = _replicate_targets(step, size, per_size, doms, target_step, target_n, laws, rng).loc[X.index]
            drawn = np.take_along_axis(resid, rng.integers(0, len(X), resid.shape), axis=0)
            out.append(law.warm_refit(X, targets * np.exp(drawn)))
    return out


def _mixing_residuals(law, X: pd.DataFrame, Y: pd.DataFrame) -> np.ndarray:
    """The mixing law's log residuals (mixtures x domains), centred per domain and scaled by
    sqrt(n / (n - p)): a fit with p parameters per domain on n mixtures leaves residuals smaller
    than its errors (none at all when n <= p, and then only the step and size stages vary)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.log(Y.to_numpy(dtype=float) / np.asarray(law.predict(X), dtype=float))
    r = np.where(np.isfinite(r), r, 0.0)
    r -= r.mean(axis=0)
    n, p = len(X), max(len(np.ravel(t)) for t in law.thetas_)
    return r * (np.sqrt(n / (n - p)) if n > p else 0.0)


def _replicate_targets(step: dict, size: dict, per_size: pd.DataFrame, doms: list[str], target_step, target_n,
                       laws: tuple, rng: np.random.Generator) -> pd.DataFrame:
    """One bootstrap replicate of the mixing law's targets (mixtures x domains): redrawn step
    curves refitted, seeds averaged, redrawn size curves refitted."""
    step_law, size_law = laws
    if step["curves"] is not None:
        curves = resample_curves(step["curves"], step["fitted"], rng)
        pred = batch_fit(curves, step_law, fitted_params(step["fits"], step_law), _BOOT_ITER).predict(float(target_step))
        runs = curves.keys.assign(pred=pred).join(step["meta"], on="run_id")
        per_size = runs.groupby(["mixture", "model_size", "domain"], as_index=False)["pred"].mean()
    if size["curves"] is None:
        return _pivot(per_size[["mixture", "domain", "pred"]], doms)
    moved = Curves.from_long(per_size, ["mixture", "domain"], "model_size", "pred")
    curves = resample_curves(size["curves"], size["fitted"], rng, base=moved.y)
    fits = batch_fit(curves, size_law, fitted_params(size["fits"], size_law), _BOOT_ITER)
    mix_pred = curves.keys.assign(pred=fits.predict(float(target_n)))
    return _pivot(mix_pred, doms)


def _extrapolation(table: pd.DataFrame, step: dict, target_step, target_n, min_step: int) -> dict:
    """Fitted and target size and step, the decades between them; warns when the targets lie beyond."""
    sizes = table["model_size"].unique()
    info = {"size_fitted": (float(sizes.min()), float(sizes.max())), "size_target": target_n, "size_decades": 0.0,
            "step_target": target_step, "step_fitted_max": int(table["step"].max()), "step_decades": 0.0}
    parts = []
    if target_n is not None:
        info["size_decades"] = float(max(0.0, np.log10(target_n / sizes.max())))
        if info["size_decades"] > 0:
            parts.append(f"model size N={target_n:,.0f} is {info['size_decades']:.3g} decades beyond the largest "
                         f"fitted N={sizes.max():,.0f}")
    if target_step is not None:
        run_last = table[table["step"] >= min_step].groupby("run_id")["step"].max()
        info["step_decades"] = float(max(0.0, np.log10(target_step / run_last.min())))
        if info["step_decades"] > 0:
            parts.append(f"step {target_step:,} is up to {info['step_decades']:.3g} decades beyond a run's last "
                         f"fitted step (shortest run ends at {run_last.min():,}, longest at {run_last.max():,})")
    if parts:
        warnings.warn("nested_prediction extrapolates: " + "; ".join(parts), ExtrapolationWarning, stacklevel=3)
    return info


def _sizes_used(table: pd.DataFrame, step: dict, min_step: int) -> pd.DataFrame:
    """One row per proxy size: the N used, the nominal size and label, runs, the steps fitted."""
    rows = table[table["step"] >= min_step] if step["curves"] is not None else last_step(table)
    label = rows["size_label"] if "size_label" in rows.columns else pd.Series("", index=rows.index)
    out = rows.assign(label=label.astype(str)).groupby("model_size").agg(
        model_size_nominal=("nominal_size", "first"), label=("label", "first"), runs=("run_id", "nunique"),
        step_min=("step", "min"), step_max=("step", "max"), n_steps=("step", "nunique"))
    out = out.rename_axis("N").reset_index()
    return out.rename(columns={"model_size_nominal": "model_size"})


def _stability(law) -> pd.DataFrame:
    """Per validation domain: the mixing law's objective, convergence and optima agreement."""
    results = getattr(law, "results_", None)
    if not results:
        return pd.DataFrame(columns=["domain", "multiple_minima"])
    return pd.DataFrame([{"domain": name, "objective": r.objective, "converged": r.converged,
                          "hit_iter_cap": r.hit_iter_cap, "multiple_minima": r.multiple_minima,
                          "minima_prediction_spread": r.minima_prediction_spread,
                          "best_objectives": r.best_objectives} for name, r in results.items()])
