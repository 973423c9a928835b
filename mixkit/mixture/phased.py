"""A phased schedule: a run's mixture changing at fixed fractions of the run.

`Phased([(0.8, pretrain), (1.0, anneal)])` trains the first 80% of the steps on `pretrain` and the
rest on `anneal` (two-phase recipes). Each entry is (end fraction of the run, Mixture); the
fractions increase strictly and the last is 1.0, so the phases cover the run exactly once.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from mixkit.mixture.weights import Mixture


class Phased:
    """An immutable list of (end fraction, Mixture) phases, validated on construction."""

    __slots__ = ("_phases",)

    def __init__(self, phases: Sequence, domains: Sequence[str] | None = None):
        if isinstance(phases, Phased):
            phases = phases.phases
        try:
            # A Mixture is iterable (its domain names), so it must not be unpacked as a pair: a design
            # such as `uniform(domains)` (a list of one Mixture) passed as a run's mixture lands here.
            items = [tuple(p) if not isinstance(p, (Mixture, str)) else (p,) for p in phases]
        except TypeError:
            raise TypeError(f"a phased schedule is a list of (end fraction, Mixture) pairs, got {phases!r}") from None
        if not items:
            raise ValueError("phased schedule is empty: give at least one (end fraction, Mixture) phase")
        out, last = [], 0.0
        for k, item in enumerate(items):
            if len(item) != 2:
                raise ValueError(f"phase {k} of the schedule is {item!r}, not an (end fraction, Mixture) pair "
                                 "(a design such as uniform(domains) is a list: pass one of its mixtures)")
            frac, mix = _fraction(item[0], k), item[1]
            if frac <= last:
                raise ValueError(f"phase {k} ends at fraction {frac:g}, not after the previous phase's end {last:g}: "
                                 "end fractions must increase")
            if not isinstance(mix, Mixture):
                mix = Mixture(mix, domains=domains)
            out.append((frac, mix))
            last = frac
        if last != 1.0:
            raise ValueError(f"the last phase ends at fraction {last:g}: phases must cover the run, the last ending at 1.0")
        object.__setattr__(self, "_phases", tuple(out))

    def __setattr__(self, key, value):
        raise AttributeError("Phased is immutable")

    @property
    def phases(self) -> list[tuple[float, Mixture]]:
        return list(self._phases)

    @property
    def domains(self) -> list[str]:
        """Every domain any phase names, in first-seen order."""
        seen: dict[str, None] = {}
        for _, mix in self._phases:
            seen.update(dict.fromkeys(mix.domains))
        return list(seen)

    def end_steps(self, steps: int) -> list[int]:
        """The step count at which each phase ends (the last is `steps`); every phase must get a step."""
        ends = [int(round(frac * steps)) for frac, _ in self._phases]
        ends[-1] = int(steps)
        begin = 0
        for k, end in enumerate(ends):
            if end <= begin:
                raise ValueError(f"phase {k} (ending at fraction {self._phases[k][0]:g}) gets no step of a "
                                 f"{steps}-step run: make it longer or the run longer")
            begin = end
        return ends

    def weights(self, steps: int, domains: Sequence[str]) -> np.ndarray:
        """(steps, len(domains)) array: the mixture of every step."""
        out = np.empty((int(steps), len(domains)))
        begin = 0
        for end, (_, mix) in zip(self.end_steps(steps), self._phases):
            out[begin:end] = mix.as_array(domains)
            begin = end
        return out

    def average(self, steps: int, domains: Sequence[str]) -> Mixture:
        """The mixture of the whole run (each phase weighted by its steps)."""
        return Mixture.from_array(self.weights(steps, domains).mean(axis=0), domains, name="phased")

    def identity(self) -> dict:
        """What a run id hashes: the end fractions and the rounded nonzero weights of each phase."""
        return {"phased": [[round(frac, 10), {d: round(w, 10) for d, w in sorted(m.weights.items())
                                              if round(w, 10) != 0}] for frac, m in self._phases]}

    def to_dict(self) -> dict:
        return {"kind": "phased", "phases": [[frac, m.to_dict()] for frac, m in self._phases]}

    @classmethod
    def from_dict(cls, d: dict) -> "Phased":
        return cls([(frac, Mixture(w)) for frac, w in d["phases"]])

    def __eq__(self, other) -> bool:
        return isinstance(other, Phased) and self.identity() == other.identity()

    def __hash__(self) -> int:
        return hash(repr(self.identity()))

    def __repr__(self) -> str:
        return "Phased(" + ", ".join(f"{frac:g}: {m!r}" for frac, m in self._phases) + ")"

    def __reduce__(self):
        return (Phased, (list(self._phases),))


def _fraction(value, k: int) -> float:
    try:
        frac = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"phase {k}'s end fraction {value!r} is not a number") from None
    if not (math.isfinite(frac) and 0 < frac <= 1):
        raise ValueError(f"phase {k}'s end fraction {frac!r} is not in (0, 1]")
    return frac
