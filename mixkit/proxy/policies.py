"""Adaptive mixture policies: ODM's EXP3 bandit and DoReMi's Group-DRO domain weights.

Both are `mixkit.proxy.mixing.Policy` objects: a run trains on a deep copy, and the run id hashes
their parameters.

- `EXP3` (Online Data Mixing, Albalak et al. 2023): every domain is an arm. Its reward estimate
  follows R_i <- a R_i + (1 - a) L_i / pi_i, the importance-weighted training loss of the domain
  smoothed with a = `smoothing` (only for domains that had rows in the step); the next mixture is
  pi = (1 - K eps_t) softmax(eps_{t-1} R) + eps_t with the exploration rate
  eps_t = min(1/K, sqrt(ln K / (K t))) decaying with the step t.
- `DoReMi` (Xie et al. 2023): batches follow the uniform mixture; per step each domain's excess
  loss is the mean over its tokens of max(proxy token loss - reference token loss, 0), the domain
  weights go alpha <- alpha exp(eta excess), are normalised and smoothed towards uniform with
  `smoothing`, and the proxy minimises the alpha-weighted sum of per-domain mean losses.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from mixkit.proxy.checkpoint import check_compatible, checkpoint_id, load_checkpoint
from mixkit.proxy.device import autocast, head_dtype
from mixkit.proxy.mixing import Policy, StepStats
from mixkit.proxy.model import GPT, GPTConfig


def exploration_rate(k: int, t: int) -> float:
    """ODM's eps_t = min(1/K, sqrt(ln K / (K t))); 1/K before the first step."""
    if t < 1 or k < 2:
        return 1.0 / k
    return min(1.0 / k, math.sqrt(math.log(k) / (k * t)))


def exp3_weights(rewards: np.ndarray, t: int) -> np.ndarray:
    """The EXP3 mixture of step t+1 from the reward estimates after t steps."""
    k = rewards.shape[0]
    eps, temp = exploration_rate(k, t + 1), exploration_rate(k, t)
    z = temp * rewards
    soft = np.exp(z - z.max())
    soft /= soft.sum()
    return (1.0 - k * eps) * soft + eps


def exp3_rewards(rewards: np.ndarray, losses: np.ndarray, weights: np.ndarray, smoothing: float) -> np.ndarray:
    """R_i <- a R_i + (1 - a) L_i / pi_i for every domain with a loss this step (NaN: no rows, kept)."""
    seen = np.isfinite(losses)
    out = rewards.copy()
    out[seen] = smoothing * rewards[seen] + (1.0 - smoothing) * losses[seen] / np.maximum(weights[seen], 1e-12)
    return out


class EXP3(Policy):
    """Online Data Mixing: an EXP3 bandit over the domains rewarded by their training loss."""

    name = "odm"

    def __init__(self, smoothing: float = 0.9):
        if not (isinstance(smoothing, (int, float)) and 0 <= smoothing < 1):
            raise ValueError(f"EXP3 smoothing must be in [0, 1), got {smoothing!r}")
        self.smoothing = float(smoothing)
        self.rewards = None

    def params(self) -> dict:
        return {"smoothing": self.smoothing}

    def reset(self, domains: Sequence[str], steps: int, seed: int) -> np.ndarray:
        self.rewards = np.zeros(len(domains))
        return exp3_weights(self.rewards, 0)

    def update(self, stats: StepStats) -> np.ndarray:
        self.rewards = exp3_rewards(self.rewards, stats.domain_loss, stats.weights, self.smoothing)
        return exp3_weights(self.rewards, stats.step)


def check_doremi(eta: float, smoothing: float) -> None:
    if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta > 0):
        raise ValueError(f"DoReMi eta must be a positive number, got {eta!r}")
    if not (isinstance(smoothing, (int, float)) and 0 <= smoothing < 1):
        raise ValueError(f"DoReMi smoothing must be in [0, 1), got {smoothing!r}")


def doremi_step(alpha: np.ndarray, excess: np.ndarray, eta: float, smoothing: float) -> np.ndarray:
    """alpha <- (1 - c) normalise(alpha * exp(eta * excess)) + c / K (in log space: no overflow)."""
    logits = np.log(np.maximum(alpha, 1e-300)) + eta * excess
    w = np.exp(logits - logits.max())
    w /= w.sum()
    return (1.0 - smoothing) * w + smoothing / alpha.shape[0]


class DoReMi(Policy):
    """DoReMi's DRO proxy weights against a reference model saved at `reference` (a checkpoint).

    The reference must share the run's architecture and token data (checked in `attach`, before
    training). The run id hashes eta, the smoothing and the reference's checkpoint id.
    """

    name = "doremi"
    objective = "loss"

    def __init__(self, reference, eta: float = 1.0, smoothing: float = 1e-3):
        check_doremi(eta, smoothing)
        self.reference = str(reference)
        self.reference_id = checkpoint_id(self.reference)
        self.eta, self.smoothing = float(eta), float(smoothing)
        self.alpha = None
        self._model = None

    def params(self) -> dict:
        return {"eta": self.eta, "smoothing": self.smoothing, "reference": self.reference_id}

    def attach(self, context: dict) -> None:
        ckpt = load_checkpoint(self.reference)
        check_reference(ckpt, self.reference, context["model_config"], context["data"])
        model = GPT(context["model_config"])
        model.load_state_dict(ckpt["state_dict"])
        self._model = model.to(context["device"]).eval()
        self._device, self._precision = context["device"], context["precision"]

    def reset(self, domains: Sequence[str], steps: int, seed: int) -> np.ndarray:
        self.alpha = np.full(len(domains), 1.0 / len(domains))
        return self.alpha

    @torch.inference_mode()
    def _reference_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = torch.empty(y.numel(), dtype=torch.float32, device=y.device)
        with autocast(self._device, self._precision):
            self._model.loss(x, y, head_dtype=head_dtype(self._precision), token_losses_out=out)
        return out

    def update(self, stats: StepStats) -> np.ndarray:
        excess_tok = (stats.token_losses - self._reference_losses(stats.x, stats.y)).clamp_(min=0.0)
        row_excess = excess_tok.view(stats.y.shape[0], -1).mean(dim=1).double().cpu().numpy()
        k = self.alpha.shape[0]
        sums = np.bincount(stats.row_domains, weights=row_excess, minlength=k)
        excess = np.where(stats.rows > 0, sums / np.maximum(stats.rows, 1), 0.0)
        self.alpha = doremi_step(self.alpha, excess, self.eta, self.smoothing)
        return self.alpha

    def __getstate__(self):
        # The reference model is loaded per run (attach), never pickled into a sweep's jobs.
        return {**self.__dict__, "_model": None}


def check_reference(ckpt: dict, path, model_config: GPTConfig, data) -> None:
    """A reference checkpoint must be of the same architecture, token data and domains as the run."""
    check_compatible(ckpt, path, model_config, data.fingerprint, what="DoReMi reference", other="proxy",
                     require_data=True)
    unknown = [d for d in ckpt.get("mixture_domains") or [] if d not in data.domains]
    if unknown:
        raise ValueError(f"DoReMi reference {path} was trained on domains {unknown} that this data "
                         f"({sorted(data.domains)}) does not have")
