"""Figures for the notebooks: pure functions that take tidy data and return a matplotlib Figure.

Nothing here fits or trains; every figure is drawn from numbers computed elsewhere, so the same
numbers land in metrics.json and in the picture.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

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
) -> plt.Figure:
    """Observed losses as points and the fitted law as lines, one colour per domain.

    `curve` holds the law evaluated on a dense grid (same x/y/hue columns); `band` names its lower
    and upper interval columns when a bootstrap band is available.
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
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


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


def metric_vs_count(frame: pd.DataFrame, x: str, y: str, hue: str, title: str, logx: bool = True) -> plt.Figure:
    """A held-out metric against the number of runs (or steps), one line per method."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=frame, x=x, y=y, hue=hue, marker="o", ax=ax, errorbar="sd")
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path) -> None:
    """Write a figure as PNG beside the report (the notebook still shows it inline)."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
