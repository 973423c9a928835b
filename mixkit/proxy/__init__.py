"""Proxy language models and how they train, one concept per file.

config (ProxyConfig and presets) -> model (the small GPT) with head (its chunked cross-entropy) ->
sampler (batches that follow a mixture) -> mixing (a run's mixture over its steps: fixed, phased or a
policy) with policies (ODM's EXP3, DoReMi) -> train (the loop) -> result (RunResult); device (where
and in which precision), schedule (learning rate), checkpoint (saved weights) and identity (run ids).
The proxy knows nothing of run stores, run tables or laws.
"""

from mixkit.proxy.checkpoint import checkpoint_id
from mixkit.proxy.config import PRESETS, ProxyConfig
from mixkit.proxy.device import resolve_device, resolve_precision
from mixkit.proxy.identity import config_hash, run_id
from mixkit.proxy.mixing import Policy, StepStats, resolve_mixing
from mixkit.proxy.model import GPT, GPTConfig, flops_per_token, param_counts
from mixkit.proxy.policies import EXP3, DoReMi
from mixkit.proxy.result import RunResult
from mixkit.proxy.train import train_proxy

__all__ = ["EXP3", "GPT", "DoReMi", "GPTConfig", "PRESETS", "Policy", "ProxyConfig", "RunResult", "StepStats",
           "checkpoint_id", "config_hash", "flops_per_token", "param_counts", "resolve_device", "resolve_mixing",
           "resolve_precision", "run_id", "train_proxy"]
