"""Mixtures (validated weights over named domains) and the designs that generate them.

A `Mixture` is immutable and always a point of the probability simplex: non-negative finite
weights that sum to one. With `domains` given, domains left out of `weights` get weight 0 and an
unknown name is an error, so `Mixture({"code": 1.0}, domains=data.domains)` is the all-code mix.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Mapping, Sequence

import numpy as np

_KEY_DECIMALS = 6


class Mixture:
    """Named weights over domains, validated on construction.

    Errors name the problem and the offending domain or value: an empty mixture, a weight that is
    negative, NaN, infinite or not a number, an unknown domain, or weights that do not sum to 1
    within `tol`. Weights within `tol` of the simplex are renormalized to sum to exactly 1.
    """

    __slots__ = ("_domains", "_values", "_name")

    def __init__(self, weights: Mapping[str, float], domains: Sequence[str] | None = None,
                 name: str | None = None, tol: float = 1e-6):
        if isinstance(weights, Mixture):
            name = weights.name if name is None else name
            weights = weights.weights
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a mapping of domain name -> weight, got {type(weights).__name__}")
        if not (tol >= 0 and math.isfinite(tol)):
            raise ValueError(f"tol must be a finite non-negative number, got {tol!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {name!r}")
        if len(weights) == 0:
            raise ValueError("mixture is empty: give at least one domain weight")
        for d in weights:
            if not isinstance(d, str) or not d:
                raise ValueError(f"domain names must be non-empty strings, got {d!r}")

        if domains is None:
            doms = tuple(sorted(weights))
        else:
            if isinstance(domains, str):
                raise TypeError(f"domains must be a sequence of names, not the string {domains!r}")
            doms = tuple(domains)
            if not doms:
                raise ValueError("domains is empty: a mixture needs at least one domain")
            seen = set()
            for d in doms:
                if d in seen:
                    raise ValueError(f"domain {d!r} is listed twice in domains")
                seen.add(d)
            for d in weights:
                if d not in seen:
                    raise ValueError(f"unknown domain {d!r}: not one of {list(doms)}")

        values = np.zeros(len(doms), dtype=np.float64)
        for i, d in enumerate(doms):
            raw = weights.get(d, 0.0)
            try:
                w = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"weight for domain {d!r} is not a number: {raw!r}") from None
            if not math.isfinite(w):
                raise ValueError(f"weight for domain {d!r} is not finite: {w}")
            if w < 0:
                # Optimizers return -1e-17 for "zero"; anything beyond tol is a real error.
                if w < -tol:
                    raise ValueError(f"weight for domain {d!r} is negative: {w}")
                w = 0.0
            values[i] = w
        total = float(values.sum())
        if abs(total - 1.0) > tol:
            raise ValueError(f"weights sum to {total:.10g}, not 1 (tolerance {tol:g}): {dict(zip(doms, values.tolist()))}")
        values = values / total
        values.setflags(write=False)
        object.__setattr__(self, "_domains", doms)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_name", name)

    # ------------------------------------------------------------------ read-only views

    def __setattr__(self, key, value):
        raise AttributeError(f"Mixture is immutable; build a new one instead of setting {key!r}")

    def __delattr__(self, key):
        raise AttributeError("Mixture is immutable")

    @property
    def domains(self) -> list[str]:
        return list(self._domains)

    @property
    def weights(self) -> dict[str, float]:
        """A fresh dict {domain: weight}, ordered like `domains` (zero weights included)."""
        return {d: float(w) for d, w in zip(self._domains, self._values)}

    @property
    def name(self) -> str | None:
        return self._name

    def __getitem__(self, domain: str) -> float:
        try:
            return float(self._values[self._domains.index(domain)])
        except ValueError:
            raise KeyError(f"domain {domain!r} is not in this mixture ({list(self._domains)})") from None

    def as_array(self, domains: Sequence[str] | None = None) -> np.ndarray:
        """Weights as a float array in the order of `domains` (default: the mixture's own order).

        Domains the mixture does not know get 0; leaving out a domain with positive weight raises,
        because the array would no longer sum to 1.
        """
        if domains is None:
            return self._values.copy()
        doms = list(domains)
        own = self.weights
        missing = [d for d in self._domains if own[d] > 0 and d not in doms]
        if missing:
            raise ValueError(f"domains {missing} have positive weight in {self!r} but are not in {doms}")
        return np.array([own.get(d, 0.0) for d in doms], dtype=np.float64)

    @classmethod
    def from_array(cls, arr, domains: Sequence[str], name: str | None = None, tol: float = 1e-6) -> "Mixture":
        values = np.asarray(arr, dtype=np.float64).reshape(-1)
        doms = list(domains)
        if values.shape[0] != len(doms):
            raise ValueError(f"array has {values.shape[0]} weights but {len(doms)} domains were given: {doms}")
        return cls(dict(zip(doms, values.tolist())), domains=doms, name=name, tol=tol)

    @classmethod
    def from_dict(cls, d: Mapping, domains: Sequence[str] | None = None, tol: float = 1e-6) -> "Mixture":
        """Inverse of `to_dict`; also accepts `{"weights": {...}, "name": ...}`."""
        if "weights" in d and isinstance(d["weights"], Mapping):
            return cls(d["weights"], domains=domains, name=d.get("name"), tol=tol)
        return cls(d, domains=domains, tol=tol)

    def to_dict(self) -> dict[str, float]:
        """Plain `{domain: weight}` (JSON-ready; `Mixture(m.to_dict())` gives the mixture back)."""
        return self.weights

    def key(self) -> str:
        """Short stable hash of the rounded nonzero weights (independent of domain order and name)."""
        parts = [f"{d}={w:.{_KEY_DECIMALS}f}" for d, w in sorted(self.weights.items())
                 if round(w, _KEY_DECIMALS) != 0]
        return hashlib.sha256(";".join(parts).encode("utf-8")).hexdigest()[:12]

    def __eq__(self, other) -> bool:
        if not isinstance(other, Mixture):
            return NotImplemented
        return self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        body = ", ".join(f"{d}={w:.3f}" for d, w in zip(self._domains, self._values))
        label = f"{self._name!r}: " if self._name else ""
        return f"Mixture({label}{body})"

    def __reduce__(self):
        return (_rebuild, (self.weights, self.domains, self._name))


def _rebuild(weights, domains, name):
    return Mixture(weights, domains=domains, name=name)


# ---------------------------------------------------------------------- designs


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
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be finite and >= 0, got {temperature!r}")
    lo, hi = (float(s) for s in strength)
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"strength must be a range (low, high) with 0 < low <= high, got {strength!r}")
    if not 0 <= min_weight < 1:
        raise ValueError(f"min_weight must be in [0, 1), got {min_weight!r}")
    if max_tries is None:
        max_tries = max(10_000, 1_000 * int(n))
    gen = np.random.default_rng(rng)

    p = _aligned(prior, doms, "prior") if prior is not None else np.ones(len(doms))
    if p.sum() <= 0:
        raise ValueError("prior sums to 0: at least one domain needs a positive prior")
    active = p > 0  # a domain with zero prior (e.g. no tokens) is never sampled
    tempered = np.where(active, p, 1.0) ** temperature * active
    base = tempered / tempered.sum()

    caps = np.full(len(doms), np.inf)
    if (available_tokens is None) != (budget_tokens is None):
        raise ValueError("repetition caps need both available_tokens and budget_tokens (or neither)")
    if available_tokens is not None:
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

    found: dict[tuple, np.ndarray] = {}
    tries = 0
    idx = np.flatnonzero(active)
    while len(found) < n and tries < max_tries:
        m = min(max(4 * n, 256), max_tries - tries)
        tries += m
        s = np.exp(gen.uniform(np.log(lo), np.log(hi), size=m))
        alpha = s[:, None] * base[idx][None, :]
        draws = np.zeros((m, len(doms)))
        draws[:, idx] = _dirichlet_rows(gen, alpha)
        for w in draws:
            total = w.sum()
            if not (np.isfinite(total) and total > 0):
                continue
            w = w / total
            w[w < min_weight] = 0.0
            total = w.sum()
            if total <= 0:
                continue
            w = w / total
            if np.any(w > caps + 1e-12):
                continue
            key = tuple(np.round(w, dedup_decimals).tolist())
            if key not in found:
                found[key] = w
                if len(found) == n:
                    break
    if len(found) < n:
        raise ValueError(
            f"found only {len(found)} distinct feasible mixtures of the {n} requested in {tries:,} draws; "
            "relax the repetition caps (max_epochs, budget_tokens), lower n or dedup_decimals, or raise max_tries"
        )
    return [Mixture.from_array(w, doms, name=f"dirichlet-{i}") for i, w in enumerate(found.values())]


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
