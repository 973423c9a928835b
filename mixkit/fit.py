"""`mixkit fit`: from anyone's run CSVs to a recommended mixture with intervals.

Input: a mixkit run table CSV, or an Olmix pair (``ratios.csv`` + ``metrics.csv``, see
:mod:`mixkit.olmix`); optional priors or token counts per domain; a target (one metric, the mean of
several, or a weighted sum) and whether lower or higher is better. :func:`run_fit` (the Python call
behind the command) scores every candidate law out of fold, fits the chosen law on all runs, proposes
a mixture (KL-regularised exact solve for smooth laws, top-k simulation for trees), puts bootstrap
intervals on it, and writes everything into a folder named by a hash of the inputs and options; a
second call with the same inputs and options reuses it.

Defaults, stated: the prior is the token share when token counts are given, else the mean of the
fitted mixtures (the centre of the data); lambda (``kl=None``) is chosen by 2-fold cross-fitting
(:func:`mixkit.optimize.select_kl`); folds are ``folds`` random folds over runs (seeded).
"""

from __future__ import annotations

import base64
import html
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mixkit import plots
from mixkit.laws import compare_laws
from mixkit.laws.mixing import ImplicitMixingLaw, MixingLaw
from mixkit.laws.regression import LightGBMLaw, LinearRegressionLaw, LogLinearLaw
from mixkit.olmix import read_olmix, resolve_target
from mixkit.optimize import (DEFAULT_KL_GRID, KL_RULE, OptimumResult, bootstrap_optimum, optimize_mixture,
                             repetition_caps, select_kl)
from mixkit.paths import json_digest, sha256_file, staged_dir, write_json
from mixkit.table import pivot_losses, validate_table

__all__ = ["FitOptions", "FitOutcome", "LAWS", "fit_runs", "load_inputs", "run_fit"]

# law name -> (constructor(seed), parameters for d domains, proposer method)
LAWS = {
    "log-linear": (lambda seed: LogLinearLaw(random_state=seed), lambda d: d + 1, "exact"),
    "mixing": (lambda seed: MixingLaw(n_starts=4, random_state=seed), lambda d: d + 2, "exact"),
    "implicit-mixing": (lambda seed: ImplicitMixingLaw(n_starts=4, random_state=seed), lambda d: 2 * d + 5, "exact"),
    "linear": (lambda seed: LinearRegressionLaw(), lambda d: d + 1, "exact"),
    "lightgbm": (lambda seed: LightGBMLaw(random_state=42 + seed), lambda d: 2, "topk"),
}
_LOG_SPACE = {"log-linear", "mixing", "implicit-mixing"}  # fitted on log losses: the target must be > 0


@dataclass(frozen=True)
class FitOptions:
    """Everything that changes the answer (and so the output folder's hash)."""

    target: tuple[str, ...]
    target_weights: tuple[float, ...] | None = None
    direction: str = "min"
    law: str = "log-linear"
    compare: tuple[str, ...] = ("log-linear", "mixing", "linear", "lightgbm")
    kl: float | None = None
    kl_grid: tuple[float, ...] = DEFAULT_KL_GRID
    folds: int = 5
    seed: int = 0
    n_boot: int = 30
    alpha: float = 0.1
    target_tokens: float | None = None
    repetition_factor: float = 4.0
    renormalize: bool = False
    run_column: str | None = None
    step: str = "last"
    model_size: int | None = None

    def __post_init__(self):
        # A lone string is one name (or a comma-separated list), never a tuple of characters.
        for name in ("target", "compare"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, tuple(v for v in value.split(",") if v))
            else:
                object.__setattr__(self, name, tuple(str(v) for v in value))
        for name in ("target_weights", "kl_grid"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))

    def check(self) -> None:
        unknown = [n for n in (self.law, *self.compare) if n not in LAWS]
        if unknown:
            raise ValueError(f"unknown law(s) {unknown}; choose from {list(LAWS)}")
        if self.direction not in ("min", "max"):
            raise ValueError(f"direction must be 'min' or 'max', got {self.direction!r}")
        if self.folds < 2 or self.n_boot < 2 or not 0 < self.alpha < 1:
            raise ValueError(f"need folds >= 2, n_boot >= 2 and 0 < alpha < 1; got {self.folds}, {self.n_boot}, "
                             f"{self.alpha}")
        if self.step != "last" and not str(self.step).isdigit():
            raise ValueError(f"step must be 'last' or a non-negative integer, got {self.step!r}")
        if self.kl is not None and not (np.isfinite(self.kl) and self.kl >= 0):
            raise ValueError(f"kl must be a number >= 0 (or auto), got {self.kl}")


@dataclass
class FitInputs:
    """The runs as regression data: mixtures X, all metrics, the target y, prior and caps."""

    X: pd.DataFrame
    metrics: pd.DataFrame
    y: pd.Series
    prior: dict[str, float]
    prior_source: str
    caps: dict[str, float] | None
    files: dict[str, str]  # role -> sha256 of the file
    notes: list[str] = field(default_factory=list)
    bounds: dict[str, tuple[float, float]] | None = None


@dataclass
class FitOutcome:
    law: object
    scores: pd.DataFrame
    predictions: pd.DataFrame
    interaction: pd.DataFrame | None
    proposal: OptimumResult
    kl_table: pd.DataFrame | None
    warnings: list[str]


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------


def _parse(path: Path, read):
    """`read()`, with a parser's error (bad JSON, an empty or ragged CSV) naming the file."""
    try:
        return read()
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be parsed: {exc}") from None


def _read_mapping(path: str | Path, what: str, domains: list[str]) -> dict[str, float]:
    """{domain: number} from a JSON object or a two-column CSV (domain, value)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    if path.suffix.lower() == ".json":
        raw = _parse(path, lambda: json.loads(path.read_text()))
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: {what} must be a JSON object {{domain: value}}")
    else:
        frame = _parse(path, lambda: pd.read_csv(path))
        if frame.shape[1] != 2:
            raise ValueError(f"{path}: {what} CSV needs two columns (domain, value), got {list(frame.columns)}")
        raw = dict(zip(frame.iloc[:, 0].astype(str), frame.iloc[:, 1]))
    unknown = [d for d in raw if d not in domains]
    missing = [d for d in domains if d not in raw]
    if unknown or missing:
        raise ValueError(f"{path}: {what} must name exactly the training domains; unknown {unknown}, missing {missing}")
    out = {}
    for d in domains:
        v = pd.to_numeric(pd.Series([raw[d]]), errors="coerce").iloc[0]
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{path}: {what} of domain {d!r} must be a number >= 0, got {raw[d]!r}")
        out[d] = float(v)
    return out


def _from_run_table(path: Path, options: FitOptions) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not path.is_file():
        raise FileNotFoundError(f"run table {path} does not exist")
    try:
        table = validate_table(pd.read_csv(path, dtype={"config_hash": str}))
        step = options.step if options.step == "last" else int(options.step)
        sizes = table["model_size"].unique()
        if options.model_size is None and len(sizes) > 1:
            raise ValueError(f"runs of {len(sizes)} model sizes {sorted(sizes.tolist())}: pass --model-size")
        return pivot_losses(table, step=step, model_size=options.model_size)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_inputs(options: FitOptions, run_table=None, ratios=None, metrics=None, prior=None,
                token_counts=None, bounds=None) -> FitInputs:
    """Read and check every input; nothing is written. Errors name the file, column or row."""
    options.check()
    files = {}
    if run_table is not None:
        if ratios is not None or metrics is not None:
            raise ValueError("give either a run table or --ratios/--metrics, not both")
        X, M = _from_run_table(Path(run_table), options)
        source, files["run_table"] = str(run_table), sha256_file(run_table)
    elif ratios is not None and metrics is not None:
        runs = read_olmix(ratios, metrics, run_column=options.run_column, renormalize=options.renormalize)
        X, M, source = runs.weights, runs.metrics, runs.source
        files.update(ratios=sha256_file(ratios), metrics=sha256_file(metrics))
    else:
        raise ValueError("no runs: give a run table CSV, or both --ratios and --metrics")
    notes = []
    if run_table is None and runs.renormalized_by > 0:
        notes.append(f"weights renormalised: row sums were off by up to {runs.renormalized_by:.4g}")
    y = resolve_target(M, list(options.target), options.target_weights, source)
    _check_target(y, X, options, source)
    p, p_source, caps = _prior_and_caps(X, options, prior, token_counts, files)
    box = None
    if bounds is not None:
        box = _read_bounds(bounds, list(X.columns), caps)
        files["bounds"] = sha256_file(bounds)
    return FitInputs(X, M, y, p, p_source, caps, files, notes, box)


def _read_bounds(path, domains: list[str], caps: dict | None) -> dict[str, tuple[float, float]]:
    """{domain: (lo, hi)} from a CSV with columns domain, lo, hi (domains not named are free),
    checked for feasibility together with the repetition caps."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bounds file {path} does not exist")
    frame = _parse(path, lambda: pd.read_csv(path))
    if list(frame.columns) != ["domain", "lo", "hi"]:
        raise ValueError(f"{path}: bounds need the columns domain, lo, hi; got {list(frame.columns)}")
    out = {}
    for i, row in frame.iterrows():
        lo, hi = pd.to_numeric(pd.Series([row["lo"], row["hi"]]), errors="coerce")
        if str(row["domain"]) not in domains or not (0 <= lo <= hi <= 1):
            raise ValueError(f"{path}: row {i + 2}: need a training domain of {domains} and 0 <= lo <= hi <= 1, got "
                             f"{row['domain']!r}, {row['lo']!r}, {row['hi']!r}")
        out[str(row["domain"])] = (float(lo), float(hi))
    los = {d: out.get(d, (0.0, 1.0))[0] for d in domains}
    his = {d: min(out.get(d, (0.0, 1.0))[1], (caps or {}).get(d, 1.0)) for d in domains}
    bad = [d for d in domains if los[d] > his[d] + 1e-12]
    if bad or sum(los.values()) > 1 + 1e-9 or sum(his.values()) < 1 - 1e-9:
        raise ValueError(f"{path}: no mixture satisfies these bounds{' and the repetition caps' if caps else ''}: "
                         f"lower bounds sum to {sum(los.values()):.4f}, upper bounds/caps to {sum(his.values()):.4f}"
                         + (f", lower above upper for {bad}" if bad else ""))
    return out


def _check_target(y: pd.Series, X: pd.DataFrame, options: FitOptions, source: str) -> None:
    d = X.shape[1]
    for name in {options.law, *options.compare}:
        need = LAWS[name][1](d)
        if name == options.law and len(X) < need:
            raise ValueError(f"{source}: {len(X)} runs, fewer than the {need} parameters of law {name!r} over {d} "
                             "domains; add runs or choose a law with fewer parameters")
    if options.law in _LOG_SPACE and (y <= 0).any():
        run = y.index[int(np.argmax((y <= 0).to_numpy()))]
        raise ValueError(f"{source}: target {y.name!r} is {y[run]} at run {run!r}; law {options.law!r} is fitted "
                         "on log values and needs a positive target (choose --law linear or lightgbm)")


def _prior_and_caps(X, options, prior, token_counts, files) -> tuple[dict, str, dict | None]:
    domains = list(X.columns)
    tokens = None
    if token_counts is not None:
        tokens = _read_mapping(token_counts, "token counts", domains)
        files["token_counts"] = sha256_file(token_counts)
    if prior is not None:
        p = _read_mapping(prior, "prior", domains)
        files["prior"], source = sha256_file(prior), f"given ({prior})"
    elif tokens is not None:
        p, source = tokens, "token share"
    else:
        p, source = X.mean().to_dict(), "mean of the fitted mixtures"
    total = sum(p.values())
    if total <= 0:
        raise ValueError(f"the prior ({source}) is zero for every domain")
    p = {d: v / total for d, v in p.items()}
    caps = None
    if options.target_tokens is not None:
        if tokens is None:
            raise ValueError("--target-tokens needs --token-counts (the available tokens per domain)")
        caps = repetition_caps(tokens, options.target_tokens, options.repetition_factor)
    return p, source, caps


# ----------------------------------------------------------------------------------------------
# the analysis (no files)
# ----------------------------------------------------------------------------------------------


def _fit_quietly(law, X, y) -> tuple[object, list[str]]:
    """Fit `law`; (the law, what it warned and whether its fit converged, as text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        law.fit(X, y)
    said = [f"{type(law).__name__}: {w.message}" for w in caught if issubclass(w.category, UserWarning)]
    res = getattr(law, "result_", None)
    if res is not None and not getattr(res, "converged", res.success) and not said:
        said.append(f"{type(law).__name__}: the fit did not converge ({res.message})")
    return law, sorted(set(said))


def _scores(inputs: FitInputs, options: FitOptions) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    d, n_train = inputs.X.shape[1], len(inputs.X) * (options.folds - 1) // options.folds
    positive = bool((inputs.y > 0).all())
    wanted = list(dict.fromkeys((options.law, *options.compare)))
    names = [n for n in wanted if LAWS[n][1](d) <= n_train and (positive or n not in _LOG_SPACE)]
    skipped = [n for n in wanted if n not in names]
    laws = {n: LAWS[n][0](options.seed) for n in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # counted per law in the n_fit_warnings column
        scores, pred = compare_laws((inputs.X, inputs.y), laws, cv=options.folds, random_state=options.seed,
                                    return_predictions=True, progress=False)
    scores["folds"] = f"{options.folds} random folds over runs (seed {options.seed})"
    notes = [f"law {n!r} not scored: too few runs per fold or a non-positive target" for n in skipped]
    return scores, pred, notes


def _interaction(inputs: FitInputs, seed: int) -> tuple[pd.DataFrame | None, list[str]]:
    """The log-linear law on every positive metric: t_ij, metrics x domains (Olmix's matrix)."""
    M = inputs.metrics.loc[:, (inputs.metrics > 0).all() & np.isfinite(inputs.metrics).all()]
    if M.shape[1] == 0 or len(M) < inputs.X.shape[1] + 1:
        return None, ["no interaction matrix: no positive metric, or fewer runs than parameters"]
    law, said = _fit_quietly(LogLinearLaw(random_state=seed), inputs.X, M)
    T = law.params_[[f"t_{d}" for d in inputs.X.columns]]
    T.columns = list(inputs.X.columns)
    return T, said


def _propose(law, inputs: FitInputs, options: FitOptions) -> tuple[OptimumResult, pd.DataFrame | None, list[str]]:
    method = LAWS[options.law][2]
    common = dict(prior=inputs.prior, caps=inputs.caps, bounds=inputs.bounds, method=method,
                  maximize=options.direction == "max")
    kl_table, notes, kl = None, [], 0.0
    if method == "exact":
        kl = options.kl
        if kl is None and len(inputs.X) // 2 < LAWS[options.law][1](inputs.X.shape[1]):
            kl = 0.1
            notes.append("too few runs to choose lambda by cross-fitting (each half needs one run per parameter): "
                         "used lambda = 0.1")
        elif kl is None:
            kl, kl_table = select_kl(LAWS[options.law][0](options.seed), inputs.X, inputs.y, grid=options.kl_grid,
                                     rng=options.seed, **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the result carries its own warnings
        res = optimize_mixture(law, kl=kl, fitted_mixtures=inputs.X, rng=options.seed, **common)
    res = bootstrap_optimum(res, law, inputs.X, inputs.y, n_boot=options.n_boot, alpha=options.alpha,
                            rng=options.seed, kl=kl, **common)
    return res, kl_table, notes + list(res.warnings)


def fit_runs(inputs: FitInputs, options: FitOptions) -> FitOutcome:
    """Score the laws out of fold, fit the chosen law, propose a mixture with intervals."""
    scores, pred, notes = _scores(inputs, options)
    law, said = _fit_quietly(LAWS[options.law][0](options.seed), inputs.X, inputs.y)
    interaction, said_t = _interaction(inputs, options.seed)
    proposal, kl_table, said_p = _propose(law, inputs, options)
    return FitOutcome(law, scores, pred, interaction, proposal, kl_table,
                      inputs.notes + notes + said + [f"interaction matrix: {s}" for s in said_t] + said_p)


# ----------------------------------------------------------------------------------------------
# the output folder
# ----------------------------------------------------------------------------------------------


def fit_hash(inputs: FitInputs, options: FitOptions) -> str:
    return json_digest({"files": inputs.files, "options": asdict(options)})[:12]


def run_fit(options: FitOptions, out: str | Path, run_table=None, ratios=None, metrics=None, prior=None,
            token_counts=None, bounds=None) -> tuple[Path, bool, dict]:
    """The whole of `mixkit fit`: (output folder, whether it was reused, its summary). Inputs are
    checked before anything is written; a failure leaves no folder behind."""
    inputs = load_inputs(options, run_table=run_table, ratios=ratios, metrics=metrics, prior=prior,
                         token_counts=token_counts, bounds=bounds)
    folder = Path(out) / f"fit-{fit_hash(inputs, options)}"
    done = folder / "summary.json"
    if done.is_file():
        return folder, True, json.loads(done.read_text())
    outcome = fit_runs(inputs, options)
    with staged_dir(folder, "fitting") as tmp:
        summary = write_outputs(outcome, inputs, options, tmp)
    return folder, False, summary


def _config(inputs: FitInputs, options: FitOptions) -> dict:
    return {"options": asdict(options), "files": inputs.files, "domains": list(inputs.X.columns),
            "n_runs": len(inputs.X), "target": inputs.y.name, "prior": inputs.prior,
            "prior_source": inputs.prior_source, "caps": inputs.caps, "bounds": inputs.bounds,
            "lambda_rule": "given by the user" if options.kl is not None else KL_RULE}


def _summary(outcome: FitOutcome, inputs: FitInputs, options: FitOptions) -> dict:
    p = outcome.proposal
    sup = p.support
    main = outcome.scores[outcome.scores["law"] == options.law]
    return {
        "target": inputs.y.name, "direction": options.direction, "law": options.law, "method": p.method,
        "kl": p.kl, "predicted_target": p.predicted_loss,
        "predicted_interval": list(p.loss_interval) if p.loss_interval else None, "alpha": options.alpha,
        "extrapolates": bool(sup.extrapolates), "hull_distance": sup.hull_distance,
        "oof_spearman": float(main["spearman"].iloc[0]) if len(main) else None,
        "oof_r2": float(main["r2"].iloc[0]) if len(main) else None,
        "converged": _converged(outcome.law),
        "warnings": outcome.warnings,
    }


def _converged(law) -> bool | None:
    """Whether the law's fit converged (None for laws without an iterative fit)."""
    res = getattr(law, "result_", None)
    return None if res is None else bool(getattr(res, "converged", res.success))


def write_outputs(outcome: FitOutcome, inputs: FitInputs, options: FitOptions, folder: Path) -> dict:
    """Every output file into `folder`; returns the summary (also summary.json, written last)."""
    folder = Path(folder)
    write_json(folder / "config.json", _config(inputs, options), indent=2, nan=None)
    outcome.scores.to_csv(folder / "oof_metrics.csv", index=False)
    outcome.predictions.to_csv(folder / "oof_predictions.csv", index=False)
    table = outcome.proposal.table()
    table.to_csv(folder / "proposal.csv")
    prop = {"weights": outcome.proposal.weights, "predicted_target": outcome.proposal.predicted_loss,
            "predicted_interval": outcome.proposal.loss_interval, "alpha": options.alpha,
            "weight_interval": table[["lower", "upper"]].to_dict(orient="index"), "kl": outcome.proposal.kl,
            "support": asdict(outcome.proposal.support), "warnings": list(outcome.proposal.warnings)}
    write_json(folder / "proposal.json", prop, indent=2, nan=None)
    if outcome.kl_table is not None:
        outcome.kl_table.to_csv(folder / "kl_selection.csv", index=False)
    figures = _figures(outcome, options)
    for name, fig in figures.items():
        plots.save(fig, folder / f"{name}.png")
    if outcome.interaction is not None:
        outcome.interaction.to_csv(folder / "interaction_matrix.csv")
    summary = _summary(outcome, inputs, options)
    (folder / "report.html").write_text(_html(outcome, inputs, options, summary, folder), encoding="utf-8")
    write_json(folder / "summary.json", summary, indent=2, nan=None)
    return summary


def _figures(outcome: FitOutcome, options: FitOptions) -> dict:
    import matplotlib.pyplot as plt

    pred = outcome.predictions
    figs = {"predicted_vs_observed": plots.predicted_vs_observed(pred["obs"], pred["pred"], hue=pred["law"],
                                                                 title="out-of-fold prediction")}
    figs["proposal"] = plots.proposal_with_interval(outcome.proposal.table(),
                                                    title=f"proposed mixture ({options.law}, lambda={outcome.proposal.kl:g})")
    if outcome.interaction is not None:
        figs["interaction_matrix"] = plots.interaction_matrix(outcome.interaction)
    for fig in figs.values():
        plt.close(fig)
    return figs


# ----------------------------------------------------------------------------------------------
# the one-page summary
# ----------------------------------------------------------------------------------------------


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, fmt: str = ".4f", index: bool = True) -> str:
    return frame.to_html(float_format=lambda v: format(v, fmt), border=0, classes="t", na_rep="", index=index)


def _html(outcome: FitOutcome, inputs: FitInputs, options: FitOptions, summary: dict, folder: Path) -> str:
    p = outcome.proposal
    lo, hi = p.loss_interval or (float("nan"), float("nan"))
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in outcome.warnings)
    cols = [c for c in ("law", "spearman", "mae", "r2", "n_test", "n_folds", "fit_time_s", "n_fit_warnings")
            if c in outcome.scores.columns]
    figs = "".join(f"<figure>{_img(folder / f'{n}.png')}</figure>" for n in
                   ("proposal", "predicted_vs_observed", "interaction_matrix") if (folder / f"{n}.png").is_file())
    kl_rule = "given" if options.kl is not None else "chosen by 2-fold cross-fitting (see config.json)"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mixkit fit: {html.escape(str(inputs.y.name))}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}} table.t{{border-collapse:collapse}}
.t td,.t th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}} .warn{{background:#fff3cd;padding:.5em 1em}}
img{{max-width:100%}} figure{{margin:1em 0}}</style></head><body>
<h1>mixkit fit &mdash; target <code>{html.escape(str(inputs.y.name))}</code> ({"lower" if options.direction == "min" else "higher"} is better)</h1>
<p>{len(inputs.X)} runs over {inputs.X.shape[1]} domains. Law <b>{html.escape(options.law)}</b>, proposer
<b>{p.method}</b>, lambda = {p.kl:g} ({kl_rule}), prior: {html.escape(inputs.prior_source)}.</p>
<p>Fit converged: <b>{summary["converged"]}</b>. Predicted target at the proposal: <b>{p.predicted_loss:.4f}</b>, {100 * (1 - options.alpha):g}% bootstrap interval
[{lo:.4f}, {hi:.4f}] ({options.n_boot} refits). Distance to the hull of the fitted mixtures: {p.support.hull_distance:.3g}.</p>
{f'<div class="warn"><b>Warnings</b><ul>{warn}</ul></div>' if warn else '<p>No warnings: the fit converged and the proposal stays within the fitted mixtures.</p>'}
<h2>Proposed mixture</h2>{_table(p.table())}
<h2>Out-of-fold accuracy ({options.folds} random folds over runs, seed {options.seed})</h2>{_table(outcome.scores[cols], ".3g", index=False)}
{figs}
</body></html>
"""
