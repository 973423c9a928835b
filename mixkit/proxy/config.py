"""The proxy's configuration: every setting of a run except its mixture and data, and named presets.

`ProxyConfig.preset(name)` gives the standard proxy sizes; a config is frozen, validated on
construction, and round-trips through `to_dict`/`from_dict` (the run store writes it beside every run).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mixkit.proxy.model import GPTConfig

SCHEDULES = ("cosine", "constant", "wsd")
PRECISIONS = ("auto", "fp32", "bf16")

# Sizes span ~30x in non-embedding parameters on CPU (smoke 13k, tiny 100k, small 0.6M, base 3.2M),
# the range a size law is fitted across; tiny is the feasibility-tested RegMix-style proxy.
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(d_model=32, n_layers=1, n_heads=2, context_length=64, batch_size=16, steps=100,
                  lr=1e-2, eval_every=25, eval_tokens=4096),
    "tiny": dict(d_model=64, n_layers=2, n_heads=4, context_length=128, batch_size=32, steps=700,
                 lr=1e-2, eval_every=100, eval_tokens=32768),
    "small": dict(d_model=128, n_layers=3, n_heads=4, context_length=128, batch_size=32, steps=1000,
                  lr=5e-3, eval_every=100, eval_tokens=32768),
    "base": dict(d_model=256, n_layers=4, n_heads=8, context_length=128, batch_size=32, steps=1500,
                 lr=3e-3, eval_every=150, eval_tokens=32768),
    # GPU proxies (about 25M and 100M non-embedding); they want far more text than the built-in corpus.
    "gpu-small": dict(d_model=512, n_layers=8, n_heads=8, context_length=512, batch_size=32, steps=2000,
                      lr=1e-3, eval_every=200, eval_tokens=131072),
    "gpu-100m": dict(d_model=768, n_layers=14, n_heads=12, context_length=1024, batch_size=32, steps=4000,
                     lr=6e-4, eval_every=250, eval_tokens=262144),
}


@dataclass(frozen=True)
class ProxyConfig:
    """Everything that defines a proxy run except the mixture and the data.

    `warmup` and `decay` are fractions of `steps`; `decay` is only used by the "wsd"
    (warmup-stable-decay) schedule. `min_lr_ratio` is the final lr as a fraction of `lr`.
    `eval_tokens` is per validation domain, the first tokens of its fixed validation shard.
    `threads=None` leaves torch's thread count alone.
    """

    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    context_length: int = 128
    batch_size: int = 32
    steps: int = 700
    lr: float = 1e-2
    schedule: str = "cosine"
    warmup: float = 0.05
    decay: float = 0.2
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0
    eval_every: int = 100
    eval_tokens: int = 32768
    seed: int = 0
    tie_embeddings: bool = True
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    name: str = "custom"

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        for f in ("d_model", "n_layers", "n_heads", "context_length", "batch_size", "steps", "eval_every",
                  "eval_tokens"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"ProxyConfig.{f} must be a positive integer, got {v!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"ProxyConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"ProxyConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"ProxyConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"ProxyConfig.lr must be positive, got {self.lr!r}")
        for f in ("warmup", "decay", "min_lr_ratio"):
            v = getattr(self, f)
            if not 0 <= v <= 1:
                raise ValueError(f"ProxyConfig.{f} must be a fraction in [0, 1], got {v!r}")
        if self.schedule == "wsd" and self.warmup + self.decay > 1:
            raise ValueError(f"ProxyConfig: warmup {self.warmup} + decay {self.decay} exceed the whole run")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"ProxyConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"ProxyConfig.threads must be None or >= 1, got {self.threads!r}")

    @classmethod
    def preset(cls, name: str, tokens: float | None = None, **overrides) -> "ProxyConfig":
        """A named preset ("smoke", "tiny", "small", "base", "gpu-small", "gpu-100m") with overrides.

        `tokens=` sets a training-token budget instead of `steps` (rounded up to whole steps).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown proxy preset {name!r}; choose one of {list(PRESETS)}")
        unknown = [k for k in overrides if k not in {f.name for f in dataclasses.fields(cls)}]
        if unknown:
            raise ValueError(f"unknown ProxyConfig field(s) {unknown}")
        fields = {"name": name, **PRESETS[name], **overrides}
        if tokens is not None:
            if "steps" in overrides:
                raise ValueError("give either steps= or tokens=, not both")
            if not tokens > 0:
                raise ValueError(f"tokens must be positive, got {tokens!r}")
            fields["steps"] = math.ceil(tokens / (fields["batch_size"] * fields["context_length"]))
        return cls(**fields)

    def replace(self, **changes) -> "ProxyConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ProxyConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.context_length

    @property
    def total_tokens(self) -> int:
        return self.steps * self.tokens_per_step

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=int(vocab_size), context_length=self.context_length, d_model=self.d_model,
                         n_layers=self.n_layers, n_heads=self.n_heads, tie_embeddings=self.tie_embeddings)
