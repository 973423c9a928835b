"""A mixture: validated weights over named domains.

A `Mixture` is immutable and always a point of the probability simplex: non-negative finite
weights that sum to one. With `domains` given, domains left out of `weights` get weight 0 and an
unknown name is an error, so `Mixture({"code": 1.0}, domains=data.domains)` is the all-code mix.
"""

from __future__ import annotations

import hashlib
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
