"""Mixture designs: which mixtures to train proxies on.

`uniform`, `natural` (the corpus's own token shares), `grid` (every point of a simplex lattice) and
`dirichlet` (RegMix's random design). `sample_dirichlet` is the one Dirichlet sampler of the kit:
the design draws from it, and so does the top-k simulation of `mixkit.optimize`.
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np

from mixkit.mixture.weights import Mixture


def uniform(domains: Sequence[str]) -> list[Mixture]:
    doms = _domain_list(domains)
    return [Mixture({d: 1.0 / len(doms) for d in doms}, domains=doms, name="uniform")]


def natural(token_counts: Mapping[str, float]) -> list[Mixture]:
    """The corpus's own proportions (e.g. `TokenData.token_counts`)."""
    if not token_counts:
        raise ValueError("token_counts is empty")
    for d, c in token_counts.items():
        if not (math.isfinite(float(c)) and float(c) >= 0):
            raise ValueError(f"token count for domain {d!r} must be finite and >= 0, got {c!r}")
    total = float(sum(float(c) for c in token_counts.values()))
    if total <= 0:
        raise ValueError("token_counts sum to 0: no natural mixture")
    doms = list(token_counts)
    return [Mixture({d: float(token_counts[d]) / total for d in doms}, domains=doms, name="natural")]


def grid(domains: Sequence[str], k: int, max_points: int = 100_000) -> list[Mixture]:
    """Every point of the simplex whose weights are multiples of 1/k: C(k+d-1, d-1) mixtures."""
    doms = _domain_list(domains)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"grid step count k must be a positive integer, got {k!r}")
    d = len(doms)
    count = math.comb(k + d - 1, d - 1)
    if count > max_points:
        raise ValueError(f"grid(k={k}) over {d} domains has {count:,} points (> max_points={max_points:,})")
    out = []
    # Stars and bars: choose d-1 bar positions among k+d-1 slots; gaps are the counts.
    for i, bars in enumerate(itertools.combinations(range(k + d - 1), d - 1)):
        edges = (-1, *bars, k + d - 1)
        counts = [edges[j + 1] - edges[j] - 1 for j in range(d)]
        out.append(Mixture({dom: c / k for dom, c in zip(doms, counts)}, domains=doms, name=f"grid{k}-{i}"))
    return out


# ---------------------------------------------------------------------- RegMix's Dirichlet design


def tempered_prior(prior: np.ndarray, temperature: float) -> np.ndarray:
    """`prior**temperature`, normalised; a domain with zero prior stays at zero (also at T = 0)."""
    active = prior > 0
    tempered = np.where(active, prior, 1.0) ** temperature * active
    return tempered / tempered.sum()


def sample_dirichlet(gen: np.random.Generator, base: np.ndarray, n: int,
                     strength: tuple[float, float] = (0.1, 5.0)) -> np.ndarray:
    """`n` draws (rows) from Dirichlet(s * base), a fresh s log-uniform in `strength` per draw.

    A small s gives peaked mixtures (few domains), a large one mixtures close to `base`, so the draws
    span both (RegMix). Domains with base 0 get weight 0.
    """
    lo, hi = strength
    s = np.exp(gen.uniform(np.log(lo), np.log(hi), size=n))
    idx = np.flatnonzero(base > 0)
    draws = np.zeros((n, len(base)))
    draws[:, idx] = _dirichlet_rows(gen, s[:, None] * base[idx][None, :])
    return draws


def dirichlet(
    domains: Sequence[str],
    n: int,
    prior: Mapping[str, float] | Sequence[float] | None = None,
    rng: int | np.random.Generator = 0,
    temperature: float = 0.5,
    strength: tuple[float, float] = (0.1, 5.0),
    available_tokens: Mapping[str, float] | Sequence[float] | None = None,
    budget_tokens: float | None = None,
    max_epochs: float = 4.0,
    min_weight: float = 1e-3,
    dedup_decimals: int = 3,
    max_tries: int | None = None,
) -> list[Mixture]:
    """RegMix design: `n` distinct mixtures from Dirichlet(strength * prior**T / sum(prior**T)).

    `strength` is drawn log-uniformly in the given range per sample, so the design spans both
    peaked (few domains) and flat mixtures around the tempered prior (uniform when None).
    With `available_tokens` and `budget_tokens`, a sample is rejected when some domain would be
    repeated more than `max_epochs` times (weight_i * budget > max_epochs * available_i).
    Weights below `min_weight` are set to 0 and the rest renormalized; duplicates after rounding
    to `dedup_decimals` are dropped. Raises when `n` such mixtures are not found in `max_tries`
    draws (default max(10_000, 1_000 * n)).
    """
    doms = _domain_list(domains)
    strength = _check_design(n, temperature, strength, min_weight)
    p = _aligned(prior, doms, "prior") if prior is not None else np.ones(len(doms))
    if p.sum() <= 0:
        raise ValueError("prior sums to 0: at least one domain needs a positive prior")
    base = tempered_prior(p, temperature)
    caps = _repetition_caps(doms, p > 0, available_tokens, budget_tokens, max_epochs)
    draws = _DistinctDraws(base, strength, caps, min_weight, dedup_decimals)
    if max_tries is None:
        max_tries = max(10_000, 1_000 * int(n))
    found = draws.collect(np.random.default_rng(rng), int(n), max_tries)
    return [Mixture.from_array(w, doms, name=f"dirichlet-{i}") for i, w in enumerate(found)]


def _check_design(n, temperature, strength, min_weight) -> tuple[float, float]:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be finite and >= 0, got {temperature!r}")
    lo, hi = (float(s) for s in strength)
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"strength must be a range (low, high) with 0 < low <= high, got {strength!r}")
    if not 0 <= min_weight < 1:
        raise ValueError(f"min_weight must be in [0, 1), got {min_weight!r}")
    return lo, hi


def _repetition_caps(doms: list[str], active: np.ndarray, available_tokens, budget_tokens,
                     max_epochs: float) -> np.ndarray:
    """Largest share per domain that repeats its tokens at most `max_epochs` times (inf: no cap)."""
    if (available_tokens is None) != (budget_tokens is None):
        raise ValueError("repetition caps need both available_tokens and budget_tokens (or neither)")
    if available_tokens is None:
        return np.full(len(doms), np.inf)
    if not (budget_tokens > 0 and math.isfinite(budget_tokens)):
        raise ValueError(f"budget_tokens must be positive, got {budget_tokens!r}")
    if not max_epochs > 0:
        raise ValueError(f"max_epochs must be positive, got {max_epochs!r}")
    avail = _aligned(available_tokens, doms, "available_tokens")
    caps = max_epochs * avail / float(budget_tokens)
    if caps[active].sum() < 1:
        raise ValueError(
            f"repetition caps sum to {caps[active].sum():.3g} < 1: {budget_tokens:,.0f} tokens cannot be "
            f"drawn from {dict(zip(doms, avail.tolist()))} with at most {max_epochs} epochs per domain"
        )
    return caps


class _DistinctDraws:
    """Dirichlet draws cleaned (tiny weights zeroed), capped and de-duplicated until enough are found."""

    def __init__(self, base, strength, caps, min_weight, dedup_decimals):
        self.base, self.strength, self.caps = base, strength, caps
        self.min_weight, self.dedup_decimals = min_weight, dedup_decimals

    def collect(self, gen: np.random.Generator, n: int, max_tries: int) -> list[np.ndarray]:
        found: dict[tuple, np.ndarray] = {}
        tries = 0
        while len(found) < n and tries < max_tries:
            m = min(max(4 * n, 256), max_tries - tries)
            tries += m
            for w in sample_dirichlet(gen, self.base, m, self.strength):
                w = self._clean(w)
                key = None if w is None else tuple(np.round(w, self.dedup_decimals).tolist())
                if key is not None and key not in found:
                    found[key] = w
                    if len(found) == n:
                        break
        if len(found) < n:
            raise ValueError(
                f"found only {len(found)} distinct feasible mixtures of the {n} requested in {tries:,} draws; "
                "relax the repetition caps (max_epochs, budget_tokens), lower n or dedup_decimals, or raise max_tries"
            )
        return list(found.values())

    def _clean(self, w: np.ndarray) -> np.ndarray | None:
        """The draw renormalised with weights below `min_weight` zeroed; None if it is unusable or
        breaks a repetition cap."""
        total = w.sum()
        if not (np.isfinite(total) and total > 0):
            return None
        w = w / total
        w[w < self.min_weight] = 0.0
        total = w.sum()
        if total <= 0:
            return None
        w = w / total
        return None if np.any(w > self.caps + 1e-12) else w


def _dirichlet_rows(gen: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet draw per row of `alpha` (per-row concentrations)."""
    if alpha.shape[1] == 1:
        return np.ones_like(alpha)
    # Small alphas underflow gamma draws to exactly 0; sampling in log space (Gamma(a+1) * U^(1/a))
    # keeps the relative sizes, so sparse draws stay valid points instead of 0/0.
    g = np.log(gen.gamma(alpha + 1.0)) + np.log(gen.uniform(size=alpha.shape)) / alpha
    g = g - g.max(axis=1, keepdims=True)
    e = np.exp(g)
    return e / e.sum(axis=1, keepdims=True)


def _domain_list(domains: Sequence[str]) -> list[str]:
    if isinstance(domains, str):
        raise TypeError(f"domains must be a sequence of names, not the string {domains!r}")
    doms = list(domains)
    if not doms:
        raise ValueError("domains is empty: a design needs at least one domain")
    if len(set(doms)) != len(doms):
        dup = next(d for d in doms if doms.count(d) > 1)
        raise ValueError(f"domain {dup!r} is listed twice in domains")
    return doms


def _aligned(values, doms: list[str], what: str) -> np.ndarray:
    """A per-domain mapping or sequence as an array aligned with `doms`, validated non-negative."""
    if isinstance(values, Mapping):
        unknown = [d for d in values if d not in doms]
        if unknown:
            raise ValueError(f"{what} has unknown domain {unknown[0]!r}: not one of {doms}")
        missing = [d for d in doms if d not in values]
        if missing:
            raise ValueError(f"{what} has no value for domain {missing[0]!r}")
        arr = np.array([float(values[d]) for d in doms])
    else:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if arr.shape[0] != len(doms):
            raise ValueError(f"{what} has {arr.shape[0]} values for {len(doms)} domains {doms}")
    for d, v in zip(doms, arr):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{what} for domain {d!r} must be finite and >= 0, got {v}")
    return arr
