"""The statistics of a validation: paired confidence intervals over seeds, verdicts, steps-equivalent.

Runs with the same seed share their initialisation and data order, so a candidate and a baseline
trained with seed s form a pair; the seed-to-seed spread common to both cancels in the difference.
The interval is Student's t over the per-seed differences (n - 1 degrees of freedom): with 3 seeds
it is wide (t = 4.30 at 95%), which is the honest price of 3 seeds.

Steps-equivalent (Ye et al. 2024): how many steps a baseline needs to reach a loss, read from its
own evaluated curve and, beyond it, from a step law L(S) = E + B / S^b fitted to that curve.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mixkit.laws import StepLaw

BETTER, WORSE, TIE, UNKNOWN = "better", "worse", "no detectable difference", "undetermined (one seed)"


@dataclass(frozen=True)
class PairedInterval:
    """Mean paired gain (baseline loss - candidate loss: positive means the candidate is better), its
    Student-t interval at `level` over `n` seeds, and the spread of the per-seed gains."""

    gain: float
    low: float
    high: float
    sd: float
    n: int
    level: float

    @property
    def verdict(self) -> str:
        return verdict(self)


def paired_interval(candidate, baseline, level: float = 0.95) -> PairedInterval:
    """The t interval of mean(baseline - candidate) over paired seeds (equal-length sequences, seed
    order). One seed gives no interval (NaN bounds); identical losses give [0, 0]."""
    c = np.asarray(candidate, dtype=float).ravel()
    b = np.asarray(baseline, dtype=float).ravel()
    if c.shape != b.shape or c.size == 0:
        raise ValueError(f"paired losses need one candidate and one baseline value per seed, got {c.size} and {b.size}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(b))):
        raise ValueError("paired losses must be finite")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    d = b - c
    n = d.size
    mean = float(d.mean())
    if n == 1:
        return PairedInterval(mean, math.nan, math.nan, math.nan, 1, level)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return PairedInterval(mean, mean - half, mean + half, sd, n, level)


def verdict(interval: PairedInterval) -> str:
    """"better" when the whole interval is a gain, "worse" when it is a loss, else no detectable difference."""
    if interval.n < 2:
        return UNKNOWN
    if interval.low > 0:
        return BETTER
    if interval.high < 0:
        return WORSE
    return TIE


def seeds_to_resolve(gain: float, sd: float, level: float = 0.95, power: float = 0.8,
                     max_seeds: int = 10_000) -> float:
    """The fewest paired seeds that resolve a true gain `gain` (interval excluding zero) with
    probability `power` when the per-seed gains spread by `sd`: the smallest n >= 2 with
    (t(level, n-1) + t(power, n-1)) * sd / sqrt(n) <= |gain| (the usual t-test sample size).

    A planning figure for a "no detectable difference": it takes the measured gain and spread at
    face value (both are noisy with few seeds). NaN when either is undefined, inf when the gain is 0
    or more than `max_seeds` would be needed.
    """
    if not (math.isfinite(gain) and math.isfinite(sd)):
        return math.nan
    if sd == 0:
        return 2.0 if gain != 0 else math.inf
    z = stats.norm.ppf(0.5 + level / 2) + stats.norm.ppf(power)
    if gain == 0 or (z * sd / abs(gain)) ** 2 > max_seeds:
        return math.inf
    n = np.arange(2, max_seeds + 1)
    ok = (stats.t.ppf(0.5 + level / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / np.sqrt(n) <= abs(gain)
    return float(n[np.argmax(ok)]) if ok.any() else math.inf


def resolve_phrase(need: float) -> str:
    """How many seeds a tie would take to resolve (either sign), for a sentence ("" when undefined)."""
    if math.isnan(need):
        return ""
    if math.isinf(need):
        return "; a difference this small would need more than 10,000 seeds to resolve"
    return f"; to resolve a difference this size at this seed spread, about {int(need)} seeds (80% power)"


@dataclass(frozen=True)
class StepsMatch:
    """Steps a curve needs to reach a loss. `extrapolated`: read from the fitted step law beyond (or
    before) the evaluated steps; `law` holds its (E, B, b) when one was fitted; `steps` is inf when
    the loss is below the law's floor E (never reached)."""

    steps: float
    extrapolated: bool
    law: tuple[float, float, float] | None = None


def steps_to_reach(steps, losses, loss: float) -> StepsMatch:
    """The first step at which a curve (steps ascending, step 0 left out) reaches `loss`.

    Between evaluated steps the curve is interpolated linearly in log(step); beyond the last step,
    or before the first, a step law fitted to the whole curve is solved: S = (B / (loss - E))^(1/b).
    """
    s = np.asarray(steps, dtype=float).ravel()
    y = np.asarray(losses, dtype=float).ravel()
    keep = s > 0
    s, y = s[keep], y[keep]
    if s.size < 3 or s.shape != y.shape or np.any(np.diff(s) <= 0):
        raise ValueError(f"a curve needs at least 3 evaluated steps > 0 in ascending order, got {s.tolist()}")
    hit = np.flatnonzero(y <= loss)
    if hit.size and hit[0] > 0:
        i = int(hit[0])
        frac = (y[i - 1] - loss) / (y[i - 1] - y[i])
        return StepsMatch(float(np.exp(np.log(s[i - 1]) + frac * (np.log(s[i]) - np.log(s[i - 1])))), False)
    E, B, b = _step_law(s, y)
    if loss <= E or b <= 0:
        return StepsMatch(math.inf, True, (E, B, b))
    return StepsMatch(float((B / (loss - E)) ** (1.0 / b)), True, (E, B, b))


def _step_law(s: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    with warnings.catch_warnings():
        # A flagged extrapolation is the output here; a fit warning would only repeat it.
        warnings.simplefilter("ignore")
        law = StepLaw(n_starts=8, random_state=0).fit(s, y)
    E, B, b = (float(v) for v in law.thetas_[0])
    return E, B, b


def step_law_curve(law: tuple[float, float, float], steps) -> np.ndarray:
    """The fitted step law's losses at `steps` (for figures)."""
    E, B, b = law
    return E + B * np.asarray(steps, dtype=float) ** (-b)


def steps_phrase(baseline: str, fraction: float, extrapolated: bool) -> str:
    """"uniform needs +48% steps to match" (fraction 0.48), flagged when read from the step law."""
    flag = " (extrapolated by a step law)" if extrapolated else ""
    if math.isinf(fraction):
        return f"{baseline} never matches it by its step law{flag}"
    if math.isnan(fraction):
        return f"{baseline}: steps-equivalent undetermined"
    if fraction < 0:
        return f"{baseline} matches it with {-fraction:.0%} fewer steps{flag}"
    return f"{baseline} needs {fraction:+.0%} steps to match{flag}"
