"""Proxy language models and how they train, one concept per file.

config (ProxyConfig and presets) -> model (the small GPT) with head (its chunked cross-entropy) ->
sampler (batches that follow a mixture) -> train (the loop) -> result (RunResult); device (where and
in which precision), schedule (learning rate), checkpoint (saved weights) and identity (run ids).
The proxy knows nothing of run stores, run tables or laws.
"""

from mixkit.proxy.checkpoint import checkpoint_id
from mixkit.proxy.config import PRESETS, ProxyConfig
from mixkit.proxy.device import resolve_device, resolve_precision
from mixkit.proxy.identity import config_hash, run_id
from mixkit.proxy.model import GPT, GPTConfig, flops_per_token, param_counts
from mixkit.proxy.result import RunResult
from mixkit.proxy.train import train_proxy

__all__ = ["GPT", "GPTConfig", "PRESETS", "ProxyConfig", "RunResult", "checkpoint_id", "config_hash",
           "flops_per_token", "param_counts", "resolve_device", "resolve_precision", "run_id", "train_proxy"]
