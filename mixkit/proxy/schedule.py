"""The learning-rate schedule of a proxy run: linear warmup, then cosine, constant or WSD."""

from __future__ import annotations

import math

from mixkit.proxy.config import ProxyConfig


def lr_at(config: ProxyConfig, step: int) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then the schedule."""
    n = config.steps
    warm = int(round(config.warmup * n))
    lo = config.lr * config.min_lr_ratio
    if step < warm:
        return config.lr * (step + 1) / warm
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "cosine":
        progress = (step - warm) / max(1, n - warm)
        return lo + 0.5 * (config.lr - lo) * (1 + math.cos(math.pi * progress))
    decay_steps = int(round(config.decay * n))
    start = n - decay_steps
    if step < start or decay_steps == 0:
        return config.lr
    return config.lr + (lo - config.lr) * (step - start + 1) / decay_steps
