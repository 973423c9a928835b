"""What a finished proxy run returns: its identity, per-domain validation curve and cost."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mixkit.mixture import Mixture
from mixkit.proxy.config import ProxyConfig
from mixkit.proxy.identity import config_hash as _config_hash


@dataclass
class RunResult:
    """One finished proxy run. `curve` is tidy: step, tokens, domain, loss (validation loss).

    `mixture` is the mixture the run trained on; for a phased or policy run (`schedule` set) the
    average of its `weights_history` over the steps.
    """

    run_id: str
    config: ProxyConfig
    mixture: Mixture
    data_fingerprint: str
    domains: list[str]
    curve: pd.DataFrame
    tokens_seen: dict[str, int]
    wall_time_s: float
    train_time_s: float
    tokens_per_s: float
    flops: float
    n_params: int
    n_non_embedding: int
    device: str
    precision: str
    init_losses: dict[str, float] | None = None
    init_checkpoint_id: str | None = None
    train_loss: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["step", "loss"]))
    # A phased or policy run's spec (Phased.to_dict() or the policy's identity); None when fixed.
    schedule: dict | None = None
    # The weights every step trained on: step (1-based), domain, weight, rows (rows drawn that step).
    weights_history: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["step", "domain", "weight", "rows"]))

    @property
    def config_hash(self) -> str:
        return _config_hash(self.config)

    @property
    def final_losses(self) -> dict[str, float]:
        last = self.curve[self.curve["step"] == self.curve["step"].max()]
        return dict(zip(last["domain"], last["loss"].astype(float)))

    def metrics(self) -> dict:
        """JSON-ready summary (written to the run store's config.json)."""
        return {
            "final_losses": self.final_losses,
            "init_losses": self.init_losses,
            "tokens_seen": self.tokens_seen,
            "wall_time_s": self.wall_time_s,
            "train_time_s": self.train_time_s,
            "tokens_per_s": self.tokens_per_s,
            "flops": self.flops,
            "n_params": self.n_params,
            "n_non_embedding": self.n_non_embedding,
            "device": self.device,
            "precision": self.precision,
        }
