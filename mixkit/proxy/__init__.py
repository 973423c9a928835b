"""Proxy language models: a small GPT (`model`) and its training loop with presets (`train`)."""

from mixkit.proxy.model import GPT, GPTConfig, flops_per_token, param_counts
from mixkit.proxy.train import PRESETS, ProxyConfig, RunResult, train_proxy

__all__ = ["GPT", "GPTConfig", "PRESETS", "ProxyConfig", "RunResult", "flops_per_token", "param_counts", "train_proxy"]
