"""Figures for the notebooks: pure functions that take tidy data and return a matplotlib Figure.

Nothing here fits or trains; every figure is drawn from numbers computed elsewhere, so the same
numbers land in metrics.json and in the picture.
"""

from __future__ import annotations

import html
import io
import re
from functools import lru_cache
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def use_theme() -> None:
    """The kit's figure style (seaborn whitegrid, notebook context) for this process.

    Process-wide matplotlib state, so it is set by an explicit call (`report.notebook_session`
    makes it for the notebooks), never on import.
    """
    sns.set_theme(style="whitegrid", context="notebook")


def predicted_vs_observed(
    observed: np.ndarray | pd.Series,
    predicted: np.ndarray | pd.Series,
    hue: Sequence[str] | None = None,
    title: str = "held-out prediction",
    noise_floor: float | None = None,
) -> plt.Figure:
    """Scatter of predicted against observed loss with the identity line (and the seed-noise band)."""
    obs = np.asarray(observed, dtype=float).ravel()
    pred = np.asarray(predicted, dtype=float).ravel()
    fig, ax = plt.subplots(figsize=(5, 5))
    frame = pd.DataFrame({"observed": obs, "predicted": pred})
    if hue is not None:
        frame["group"] = np.asarray(hue).ravel()
    sns.scatterplot(data=frame, x="observed", y="predicted", hue="group" if hue is not None else None, ax=ax, s=40)
    lo, hi = float(min(obs.min(), pred.min())), float(max(obs.max(), pred.max()))
    pad = 0.05 * (hi - lo or 1.0)
    line = np.array([lo - pad, hi + pad])
    ax.plot(line, line, color="black", lw=1, label="y = x")
    if noise_floor:
        ax.fill_between(line, line - noise_floor, line + noise_floor, color="grey", alpha=0.2,
                        label=f"seed noise ±{noise_floor:.3f}")
    ax.set_xlim(line)
    ax.set_ylim(line)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def loss_vs_proportion(
    points: pd.DataFrame,
    curve: pd.DataFrame,
    x: str = "proportion",
    y: str = "loss",
    hue: str = "domain",
    band: tuple[str, str] | None = None,
    title: str = "loss against proportion",
    xlabel: str | None = None,
    reference: tuple[float, str] | None = None,
    marker: tuple[float, str] | None = None,
) -> plt.Figure:
    """Observed losses as points and the fitted law as lines, one colour per domain.

    `curve` holds the law evaluated on a dense grid (same x/y/hue columns); `band` names its lower
    and upper interval columns when a bootstrap band is available. `reference` (loss, label) draws a
    horizontal line (e.g. the loss to stay within), `marker` (x, label) a vertical one (e.g. a
    critical proportion).
    """
    fig, ax = plt.subplots(figsize=(6, 4.5))
    groups = sorted(set(points[hue]) | set(curve[hue]))
    palette = dict(zip(groups, sns.color_palette(n_colors=len(groups))))
    for name in groups:
        c = curve[curve[hue] == name].sort_values(x)
        if len(c):
            ax.plot(c[x], c[y], color=palette[name], lw=1.5, label=f"{name} (law)")
        if band is not None and len(c):
            ax.fill_between(c[x], c[band[0]], c[band[1]], color=palette[name], alpha=0.15)
        p = points[points[hue] == name]
        if len(p):
            ax.scatter(p[x], p[y], color=palette[name], s=30, edgecolor="black", linewidth=0.5,
                       label=None if len(c) else name)
    if reference is not None:
        ax.axhline(reference[0], color="black", ls="--", lw=1, label=reference[1])
    if marker is not None:
        ax.axvline(marker[0], color="grey", ls=":", lw=1, label=marker[1])
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


def law_curves(
    shares: Sequence[float] | pd.Series,
    observed: pd.DataFrame,
    grid: Sequence[float] | pd.Series,
    predicted: np.ndarray | pd.DataFrame,
    title: str = "loss against proportion",
    xlabel: str | None = None,
) -> plt.Figure:
    """A law of one share: observed losses as points, the law's losses on a grid of shares as lines.

    `observed` is runs x targets (one loss column per validation domain) at `shares`; `predicted`
    is len(grid) x the same targets, the law evaluated at `grid`.
    """
    targets = list(observed.columns)

    def long(share, losses):
        frame = pd.DataFrame(np.asarray(losses, dtype=float), columns=targets).assign(share=np.asarray(share, dtype=float))
        return frame.melt(id_vars="share", var_name="domain", value_name="loss")

    return loss_vs_proportion(long(shares, observed), long(grid, predicted), x="share", title=title, xlabel=xlabel)


def loss_vs_share_by_step(
    X: pd.DataFrame,
    y: pd.DataFrame,
    curve_X: pd.DataFrame,
    curve_y: np.ndarray | pd.DataFrame,
    height: float = 3.0,
) -> plt.Figure:
    """A law of (step, share): one panel per validation domain, its loss against its own share.

    Points are the observed losses coloured by step, lines the law's slices at the same steps.
    `X` and `curve_X` hold a "step" column and one share column per domain; `y` holds one loss
    column per domain and `curve_y` the law's losses at the rows of `curve_X` (same columns).
    """
    domains = list(y.columns)
    points, surface = _share_panels(X, y, domains), _share_panels(curve_X, curve_y, domains)
    g = sns.relplot(data=points, x="proportion", y="loss", hue="step", col="domain", palette="viridis", height=height,
                    facet_kws={"sharey": False}, col_wrap=min(4, len(domains)))
    for ax, d in zip(g.axes.flat, domains):
        sns.lineplot(data=surface[surface["domain"] == d], x="proportion", y="loss", hue="step", palette="viridis",
                     ax=ax, legend=False)
    return g.figure


def _share_panels(X: pd.DataFrame, losses, domains: list[str]) -> pd.DataFrame:
    # Long rows (step, domain, proportion, loss): each domain's loss beside that domain's own share.
    L = np.asarray(losses, dtype=float)
    return pd.concat([pd.DataFrame({"step": X["step"].to_numpy(), "domain": d, "proportion": X[d].to_numpy(dtype=float),
                                    "loss": L[:, j]}) for j, d in enumerate(domains)], ignore_index=True)


def law_comparison(scores: pd.DataFrame, metric: str = "mae", by: str = "law", hue: str | None = None,
                   noise_floor: float | None = None, title: str | None = None) -> plt.Figure:
    """Bar chart of a held-out metric per law (and per target when `hue` is given)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.barplot(data=scores, x=by, y=metric, hue=hue, ax=ax)
    if noise_floor is not None:
        ax.axhline(noise_floor, color="black", ls="--", lw=1, label=f"seed-noise floor {noise_floor:.3f}")
        ax.legend(fontsize="small")
    ax.set_title(title or f"held-out {metric}")
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig


def mixture_weights(mixtures: Mapping[str, Mapping[str, float]], title: str = "mixture weights") -> plt.Figure:
    """Grouped bars of several named mixtures (e.g. optimum against natural and uniform)."""
    frame = pd.DataFrame(mixtures).fillna(0.0)
    frame.index.name = "domain"
    long = frame.reset_index().melt(id_vars="domain", var_name="mixture", value_name="weight")
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.barplot(data=long, x="domain", y="weight", hue="mixture", ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def design_weights(weights: pd.DataFrame, prior: Mapping[str, float] | None = None, prior_label: str = "prior",
                   title: str = "mixture design") -> plt.Figure:
    """The mixtures of a design (rows of `weights`, one column per domain) as jittered points per
    domain, with the prior's share of each domain as a black bar."""
    long = weights.melt(var_name="domain", value_name="weight")
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.stripplot(data=long, x="domain", y="weight", alpha=0.6, jitter=0.25, ax=ax)
    if prior is not None:
        ax.scatter(range(weights.shape[1]), [prior[d] for d in weights.columns], marker="_", s=600, color="black",
                   label=prior_label)
        ax.legend(fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def loss_curves(curves: pd.DataFrame, x: str = "tokens", y: str = "loss", hue: str = "domain",
                style: str | None = None, title: str = "validation loss during training",
                logx: bool = True) -> plt.Figure:
    """Per-domain validation loss curves (forgetting and learning curves use the same picture)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.lineplot(data=curves, x=x, y=y, hue=hue, style=style, ax=ax, marker="o", markersize=3)
    if logx:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


def curves_by_share(curves: pd.DataFrame, share: str = "r", x: str = "step", y: str = "loss",
                    title: str = "validation loss during training", reference: tuple[float, str] | None = None) -> plt.Figure:
    """Loss curves of runs that differ by one share (e.g. the replay share r), one colour per value
    in increasing order; runs of the same value (seeds) are drawn as their mean and spread.
    `reference` (loss, label) draws a horizontal line, e.g. the loss before training started."""
    ordered = curves.sort_values(share, kind="stable")
    labelled = ordered.assign(**{share: ordered[share].map(f"{share} = {{:g}}".format)})
    fig = loss_curves(labelled, x=x, y=y, hue=share, title=title, logx=False)
    if reference is not None:
        ax = fig.axes[0]
        ax.axhline(reference[0], color="black", ls="--", lw=1, label=reference[1])
        ax.legend(fontsize="small", ncol=2)
    return fig


def metric_vs_count(frame: pd.DataFrame, x: str, y: str, hue: str, title: str, logx: bool = True) -> plt.Figure:
    """A held-out metric against the number of runs (or steps), one line per method."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=frame, x=x, y=y, hue=hue, marker="o", ax=ax, errorbar="sd")
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def rank_transfer(losses: pd.DataFrame, x: str = "small", y: str = "large", xlabel: str | None = None,
                  ylabel: str | None = None, title: str = "rank transfer") -> plt.Figure:
    """One point per mixture (the index of `losses`): its loss at one proxy (column x) against
    another (column y), to see whether a ranking carries over from one scale to the other."""
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.scatterplot(data=losses.reset_index(names="mixture"), x=x, y=y, hue="mixture", s=60, ax=ax)
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    ax.legend(fontsize="x-small", ncol=2)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path) -> None:
    """Write a figure as PNG beside the report (the notebook still shows it inline)."""
    fig.savefig(path, dpi=110, bbox_inches="tight")


def interaction_matrix(matrix: pd.DataFrame, title: str = "log-linear interaction matrix") -> plt.Figure:
    """Heatmap of a law's effects: rows are targets (metrics), columns training domains, each cell
    the exponent t_ij of the log-linear law (negative: more of domain j lowers metric i)."""
    h = max(2.5, 0.35 * matrix.shape[0] + 1.5)
    w = max(5.0, 0.35 * matrix.shape[1] + 2.5)
    fig, ax = plt.subplots(figsize=(w, h))
    values = matrix.to_numpy(dtype=float)
    lim = float(np.nanmax(np.abs(values))) or 1.0
    image = ax.imshow(values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="t (effect on log reducible loss)")
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns], rotation=90, fontsize="small")
    ax.set_yticks(range(matrix.shape[0]), [str(i) for i in matrix.index], fontsize="small")
    ax.grid(False)
    ax.set_xlabel("training domain")
    ax.set_ylabel("metric")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def proposal_with_interval(table: pd.DataFrame, title: str = "proposed mixture") -> plt.Figure:
    """The proposed weight of each domain (bars) with its bootstrap interval (error bars), the range
    of weights among the fitted mixtures (grey span) and the prior (black tick). `table` is indexed by
    domain with columns weight and optionally lower/upper, min_seen/max_seen, prior."""
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(table) + 2.0), 4))
    if {"min_seen", "max_seen"} <= set(table.columns):
        ax.bar(x, table["max_seen"] - table["min_seen"], bottom=table["min_seen"], width=0.8, color="lightgrey",
               label="range in the fitted mixtures")
    yerr = None
    if {"lower", "upper"} <= set(table.columns):
        w = table["weight"].to_numpy()
        yerr = np.vstack([np.clip(w - table["lower"], 0, None), np.clip(table["upper"] - w, 0, None)])
    ax.bar(x, table["weight"], width=0.5, yerr=yerr, capsize=2, label="proposed (bootstrap interval)")
    if "prior" in table.columns:
        ax.scatter(x, table["prior"], marker="_", s=200, color="black", label="prior", zorder=3)
    ax.set_xticks(x, [str(d) for d in table.index], rotation=60, ha="right", fontsize="small")
    ax.set_ylabel("weight")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# TeX that matplotlib's mathtext lacks, rewritten to what it has (sizes of delimiters are dropped).
_TEX_FIXES = [
    (re.compile(r"\\(?:Bigg|bigg|Big|big)[lr]?(?![a-zA-Z])"), ""),
    (re.compile(r"\\le(?![a-zA-Z])"), r"\\leq"),
    (re.compile(r"\\ge(?![a-zA-Z])"), r"\\geq"),
    (re.compile(r"\\(?:text|operatorname|textrm)\{"), r"\\mathrm{"),
    (re.compile(r"\\[td]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\[lr]vert(?![a-zA-Z])"), "|"),
    (re.compile(r"\\(?:displaystyle|textstyle|nonumber)(?![a-zA-Z])"), ""),
]
_SVG_NOISE = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<metadata>.*?</metadata>|<!--.*?-->", re.S)


@lru_cache(maxsize=4096)
def math_svg(tex: str, display: bool = False, size: float = 11.0) -> str | None:
    """TeX math rendered by matplotlib's mathtext as one line of inline SVG (glyphs as paths, no
    fonts, no script, no network), or None when mathtext cannot parse it. Display math is centred
    on its own line; inline math sits on the text's baseline."""
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    text = " ".join(tex.split())
    for pattern, repl in _TEX_FIXES:
        text = pattern.sub(repl, text)
    buf = io.BytesIO()
    rc = {"svg.fonttype": "path", "savefig.transparent": True, "svg.hashsalt": "mixkit-math"}
    try:
        with plt.rc_context(rc):
            depth = mathtext.math_to_image(f"${text}$", buf, prop=FontProperties(size=size), format="svg", dpi=72)
    except (ValueError, RuntimeError):  # mathtext's ParseFatalException is a ValueError
        return None
    svg = " ".join(_SVG_NOISE.sub("", buf.getvalue().decode()).split())
    label = html.escape(tex, quote=True)
    style = "display:block;margin:.6em auto" if display else f"vertical-align:-{float(depth or 0):.1f}pt"
    cls = "mixkit-math mixkit-math-display" if display else "mixkit-math"
    return svg.replace("<svg ", f'<svg class="{cls}" role="img" aria-label="{label}" style="{style}" ', 1)
