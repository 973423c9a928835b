"""The mixture of a run over its steps: fixed, phased, or chosen by an adaptive policy.

A run's `mixture` is one of
- a `Mixture` (or a {domain: weight} dict): every step draws the same mixture;
- a `Phased` schedule (or a list of (end fraction, Mixture) pairs): the mixture changes at fixed
  fractions of the run;
- a `Policy`: an object that sees each step's per-domain training losses and returns the next
  step's weights (ODM's EXP3 and DoReMi in `mixkit.proxy.policies`).

`resolve_mixing` checks a spec against the data's domains and the run's step count before anything
is trained; `Schedule` is what the training loop asks for each step's weights and tells each step's
losses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from mixkit.mixture import Mixture, Phased

WEIGHT_TOL = 1e-6


@dataclass
class StepStats:
    """What a policy sees after a training step (`step` steps done, 1-based).

    `domain_loss` is each domain's mean training token loss this step (NaN for a domain without
    rows), `rows` the rows each domain had, `weights` the weights the step trained on. The batch
    itself (`x`, `y`, `row_domains`: each row's domain index) and the per-token losses
    (`token_losses`, flattened B*T, nats) are there for policies that need them (DoReMi).
    """

    step: int
    domain_loss: np.ndarray
    rows: np.ndarray
    weights: np.ndarray
    x: torch.Tensor
    y: torch.Tensor
    row_domains: np.ndarray
    token_losses: torch.Tensor


class Policy:
    """An adaptive mixture: subclasses give `name`, `params()`, `reset()` and `update()`.

    `reset(domains, steps, seed)` returns the first step's weights and `update(stats)` the next
    step's (a length-K array on the simplex, in the order of `domains`). A policy object is a
    configuration: every run trains on a deep copy, so a policy's state never leaks between runs,
    and `identity()` (its class name and `params()`) is what the run id hashes, so it must name
    everything that changes what the policy does.

    `objective = "sample"`: the weights are the batches' mixture. `objective = "loss"` (DoReMi):
    batches follow `sampling` (uniform when None) and the weights weight each domain's mean loss in
    the training objective. `attach(context)` is called once before training with the run's model
    config, token data, device and precision (DoReMi loads its reference model there).
    """

    name = "policy"
    objective = "sample"
    sampling: Mixture | None = None

    def params(self) -> dict:
        return {}

    def identity(self) -> dict:
        out = {"policy": self.name, "class": type(self).__name__, "params": self.params()}
        if self.sampling is not None:  # other batches, another run (left out when None: ids stay)
            out["sampling"] = {d: round(float(w), 12) for d, w in self.sampling.weights.items()}
        return out

    def attach(self, context: dict) -> None:
        """Hook before training (the run's `model_config`, `data`, `device`, `precision`)."""

    def reset(self, domains: Sequence[str], steps: int, seed: int) -> np.ndarray:
        raise NotImplementedError

    def update(self, stats: StepStats) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params()})"


def check_weights(weights, domains: Sequence[str], who: str, step: int) -> np.ndarray:
    """The weights as a float array, or a ValueError naming the policy, the step and the problem."""
    try:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{who} returned weights that are not numbers at step {step}: {weights!r}") from None
    if w.shape[0] != len(domains):
        raise ValueError(f"{who} returned {w.shape[0]} weights at step {step}, not one per domain {list(domains)}")
    problem = None
    if not np.all(np.isfinite(w)):
        problem = "a NaN or infinite weight"
    elif (w < -WEIGHT_TOL).any():
        problem = "a negative weight"
    elif abs(float(w.sum()) - 1.0) > WEIGHT_TOL:
        problem = f"weights summing to {float(w.sum()):.8g}, not 1"
    if problem:
        raise ValueError(f"{who} returned {problem} at step {step}: {dict(zip(domains, w.tolist()))}")
    w = np.clip(w, 0.0, None)
    return w / w.sum()


def resolve_mixing(spec, domains: Sequence[str], steps: int):
    """A run's mixture spec checked against the data's domains and the run's steps: a Mixture, a
    Phased schedule or a Policy (whose first weights are checked too). Raises before training."""
    if isinstance(spec, Policy):
        probe = copy.deepcopy(spec)
        check_weights(probe.reset(list(domains), int(steps), 0), domains, f"policy {spec.name!r}", 0)
        if spec.sampling is not None:
            spec.sampling.as_array(domains)
        return spec
    if isinstance(spec, (Phased, list, tuple)):
        phased = spec if isinstance(spec, Phased) else Phased(spec, domains=domains)
        for _, mix in phased.phases:
            mix.as_array(domains)  # unknown domains fail here
        phased.end_steps(steps)
        return phased
    if isinstance(spec, Mixture):
        spec.as_array(domains)
        return spec
    if isinstance(spec, dict):
        mix = Mixture(spec, domains=domains)
        return mix
    raise TypeError(f"a run's mixture must be a Mixture, a dict of weights, a Phased schedule or a Policy, "
                    f"got {type(spec).__name__}")


def identity_of(spec) -> dict | None:
    """What a run id hashes for a phased or policy run (None for a fixed Mixture: its ids stay)."""
    return None if isinstance(spec, Mixture) else spec.identity()


def describe(spec) -> dict | None:
    """JSON record of a phased or policy run's mixture spec (None for a fixed Mixture)."""
    if isinstance(spec, Mixture):
        return None
    return spec.to_dict() if isinstance(spec, Phased) else {"kind": "policy", **spec.identity()}


def support_of(spec, domains: Sequence[str]) -> list[str]:
    """Every domain the run may draw rows from."""
    if isinstance(spec, Phased):
        return [d for d in domains if any(m.weights.get(d, 0) > 0 for _, m in spec.phases)]
    if isinstance(spec, Policy):
        return list(domains)
    return [d for d, w in zip(domains, spec.as_array(domains)) if w > 0]


class Schedule:
    """The training loop's side of a run's mixture: each step's weights, what the policy is told,
    and the weights history the run records (step, domain, weight, rows)."""

    def __init__(self, spec, domains: Sequence[str], steps: int, seed: int, context: dict):
        self.domains, self.steps = list(domains), int(steps)
        self.policy = copy.deepcopy(spec) if isinstance(spec, Policy) else None
        self.kind = "fixed" if isinstance(spec, Mixture) else "phased" if isinstance(spec, Phased) else spec.name
        self._table = spec.weights(steps, self.domains) if isinstance(spec, Phased) else None
        self._fixed = spec.as_array(self.domains) if isinstance(spec, Mixture) else None
        self.weights_log = np.zeros((self.steps, len(self.domains)))
        self.rows_log = np.zeros((self.steps, len(self.domains)), dtype=np.int64)
        self.current = None
        if self.policy is not None:
            self.policy.attach(context)
            self.current = check_weights(self.policy.reset(self.domains, self.steps, seed), self.domains,
                                         f"policy {self.policy.name!r}", 0)
            sampling = self.policy.sampling or Mixture(dict.fromkeys(self.domains, 1.0 / len(self.domains)))
            self._sampling = sampling.as_array(self.domains)

    @property
    def dynamic(self) -> bool:
        return self._fixed is None

    @property
    def loss_weighted(self) -> bool:
        return self.policy is not None and self.policy.objective == "loss"

    def sample_weights(self, step: int) -> np.ndarray:
        """The sampler's mixture at 0-based `step`."""
        if self._fixed is not None:
            return self._fixed
        if self._table is not None:
            return self._table[step]
        return self._sampling if self.loss_weighted else self.current

    def trained_weights(self, step: int) -> np.ndarray:
        """The mixture the run records for `step`: the sampler's, or a loss-weighting policy's weights."""
        return self.current if self.loss_weighted else self.sample_weights(step)

    def token_weights(self, row_domains: np.ndarray, context_length: int) -> torch.Tensor:
        """Per-token weights (flattened B*T, summing to 1) making the loss sum_d w_d * mean loss of d,
        the weights renormalised over the domains present in the batch."""
        rows = np.bincount(row_domains, minlength=len(self.domains))
        present = rows > 0
        alpha = np.where(present, self.current, 0.0)
        if alpha.sum() <= 0:  # with smoothing 0 every present domain's weight can underflow to 0
            alpha = present.astype(float)
        per_row = (alpha / np.maximum(rows, 1) / alpha.sum())[row_domains] / context_length
        return torch.from_numpy(np.repeat(per_row, context_length).astype(np.float32))

    def record(self, step: int, rows: np.ndarray) -> None:
        self.weights_log[step] = self.trained_weights(step)
        self.rows_log[step] = rows

    def observe(self, stats: StepStats) -> None:
        """Tell the policy how the step went; its answer is the next step's weights."""
        name = f"policy {self.policy.name!r}"
        self.current = check_weights(self.policy.update(stats), self.domains, name, stats.step)

    def domain_losses(self, token_losses: torch.Tensor, row_domains: np.ndarray, batch: int) -> tuple:
        """(per-domain mean token loss with NaN where absent, rows per domain) of one step."""
        row_loss = token_losses.view(batch, -1).mean(dim=1).double().cpu().numpy()
        rows = np.bincount(row_domains, minlength=len(self.domains))
        sums = np.bincount(row_domains, weights=row_loss, minlength=len(self.domains))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(rows > 0, sums / rows, np.nan), rows

    def history(self):
        """The weights history as a tidy DataFrame: step (1-based), domain, weight, rows."""
        k = len(self.domains)
        return pd.DataFrame({"step": np.repeat(np.arange(1, self.steps + 1), k),
                             "domain": np.tile(self.domains, self.steps),
                             "weight": self.weights_log.reshape(-1), "rows": self.rows_log.reshape(-1)})

    def average(self) -> Mixture:
        """The mean of the recorded weights over the run, as a Mixture named after the schedule."""
        return Mixture.from_array(self.weights_log.mean(axis=0), self.domains, name=self.kind)
