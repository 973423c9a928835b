"""Figures of a validation: losses and paired gains with their intervals; curves with the steps-equivalent."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter
from scipy import stats

from mixkit.validate.stats import step_law_curve


def plot_gains(v, title: str = "validation") -> plt.Figure:
    """Left: each mixture's target loss (seeds as dots, mean with its t interval). Right: the paired
    gain over each baseline with its interval (right of zero: better than the baseline)."""
    order = v.summary.sort_values("loss")["name"].tolist()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 0.45 * len(order) + 2), sharey=True)
    y = np.arange(len(order))
    for i, name in enumerate(order):
        seeds = v.final.loc[v.final["name"] == name, "loss"].to_numpy()
        ax1.scatter(seeds, np.full(seeds.size, i), s=12, color="0.6", zorder=2)
        ax1.errorbar(seeds.mean(), i, xerr=_half_width(seeds, v.level), fmt="o", color="C0", capsize=3, zorder=3)
    ax1.set(yticks=y, yticklabels=order, xlabel="loss (nats)", title=f"{title}: loss, {len(v.seeds)} seeds")
    for j, base in enumerate(v.baselines):
        rows = v.comparisons[v.comparisons["baseline"] == base].set_index("name")
        shift = (j - (len(v.baselines) - 1) / 2) * 0.2
        for i, name in enumerate(order):
            if name not in rows.index:
                continue
            r = rows.loc[name]
            err = [[r.gain - r.ci_low], [r.ci_high - r.gain]] if math.isfinite(r.ci_low) else None
            ax2.errorbar(r.gain, i + shift, xerr=err, fmt="o", color=f"C{j + 1}", capsize=3,
                         label=f"vs {base}" if i == 0 or name == order[0] else None)
    ax2.axvline(0.0, color="0.3", lw=0.8)
    ax2.set(xlabel="paired gain (nats, > 0: better)", title=f"gain with {v.level:.0%} t interval")
    _dedupe_legend(ax2)
    ax1.invert_yaxis()
    fig.tight_layout()
    return fig


def _half_width(x: np.ndarray, level: float) -> float:
    if x.size < 2:
        return 0.0
    return float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def _dedupe_legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    if seen:
        ax.legend(seen.values(), seen.keys(), fontsize=8)


def plot_steps_equivalent(v, name: str, baseline: str) -> plt.Figure:
    """The baseline's and the mixture's mean curves, the mixture's final loss as a line, and the step
    at which the baseline reaches it (dashed: the fitted step law beyond the evaluated steps)."""
    mean = v.curves.groupby(["name", "step"])["loss"].mean()
    match = v.matches[(name, baseline)]
    r = v.row(name, baseline)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    last = float(mean.loc[baseline].index.max())
    for label, color in ((baseline, "C1"), (name, "C0")):
        c = mean.loc[label]
        c = c[c.index >= last / 4]  # the early drop would flatten the end, where the match is read
        ax.plot(c.index, c.to_numpy(), "o-", color=color, ms=3, label=f"{label} (mean of {len(v.seeds)} seeds)")
    final = float(v.summary.set_index("name").loc[name, "loss"])
    ax.axhline(final, color="C0", lw=0.8, ls=":")
    if match.law is not None:
        reach = match.steps if math.isfinite(match.steps) else 4 * last
        s = np.geomspace(max(1.0, last / 4), max(reach, last) * 1.1, 100)
        ax.plot(s, step_law_curve(match.law, s), "--", color="C1", lw=1, label=f"{baseline} step law (extrapolated)")
    if math.isfinite(match.steps):
        ax.axvline(match.steps, color="C3", lw=1)
    ax.text(0.98, 0.95, r["sentence"].split("; ")[-1], transform=ax.transAxes, ha="right", va="top", fontsize=8,
            color="C3")
    ax.set(xlabel="training step", ylabel="loss (nats)", title=f"steps-equivalent: {name} against {baseline}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_compute_vs_gain(rows, baseline: str = "uniform") -> plt.Figure:
    """Each method's proxy compute (FLOPs, log scale; methods without proxy runs at the left edge)
    against its paired gain over `baseline`, with the interval (rows: a bake-off's leaderboard)."""
    rows = [r for r in rows if r.get("role") != "baseline"]
    flops = np.array([float(r.get("proxy_flops", 0.0)) for r in rows])
    floor = flops[flops > 0].min() / 10 if np.any(flops > 0) else 1.0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(rows):
        # methods sharing one design spend the same compute: spread them apart a little to tell them apart
        x = (flops[i] if flops[i] > 0 else floor) * 1.15 ** int(np.sum(flops[:i] == flops[i]))
        g, lo, hi = r[f"gain_vs_{baseline}"], r[f"ci_low_vs_{baseline}"], r[f"ci_high_vs_{baseline}"]
        err = [[g - lo], [hi - g]] if math.isfinite(lo) else None
        ax.errorbar(x, g, yerr=err, fmt="o", color=f"C{i % 10}", capsize=3)
        ax.annotate(f"{r['method']} ({int(r.get('proxy_runs', 0))} runs)", (x, g), xytext=(5, 5),
                    textcoords="offset points", fontsize=8)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set(xscale="log", xlabel="proxy compute of the method (FLOPs; left edge: none)",
           ylabel=f"paired gain over {baseline} (nats, > 0: better)", title=f"compute against gain over {baseline}")
    ax.xaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    return fig
