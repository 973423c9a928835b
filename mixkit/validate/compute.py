"""The proxy compute a method spent: its runs and their FLOPs, read from the run store.

FLOPs of one run = `mixkit.proxy.flops_per_token` (6 x matmul parameters, output head included,
plus Kaplan et al.'s attention term) x training tokens, plus a third of that (the forward pass) x
the validation tokens of its evaluations, and for a DoReMi run the reference model's forward pass on
every training batch (a third of the training FLOPs again).
"""

from __future__ import annotations

from typing import Iterable

from mixkit.proxy import ProxyConfig, flops_per_token
from mixkit.runs.store import as_store


def run_flops(record: dict, vocab_size: int) -> float:
    """Approximate FLOPs of one finished run from its config.json record (see the module docstring)."""
    raw = record.get("config") or {}
    if "d_model" not in raw or "steps" not in raw:
        raise ValueError(f"run {record.get('run_id')!r} has no proxy config in its config.json (an imported run?): "
                         "its compute is unknown")
    cfg = ProxyConfig.from_dict(raw)
    per_token = float(flops_per_token(cfg.model_config(vocab_size)))
    # Step 0, every eval_every steps, and the last step when it is not a multiple (see proxy.train).
    n_evals = -(-cfg.steps // cfg.eval_every) + 1
    eval_tokens = float(cfg.eval_tokens) * len(record.get("domains") or [1]) * n_evals
    reference = (record.get("schedule") or {}).get("policy") == "doremi"
    forward_tokens = eval_tokens + (cfg.total_tokens if reference else 0.0)
    return per_token * cfg.total_tokens + per_token / 3.0 * forward_tokens


def proxy_compute(store, run_ids: Iterable[str], vocab_size: int) -> dict[str, float]:
    """{"runs": distinct runs, "flops": their summed FLOPs, "train_tokens": tokens trained on}."""
    store = as_store(store)
    ids = list(dict.fromkeys(run_ids))
    flops = tokens = 0.0
    for rid in ids:
        rec = store.read_config(rid)
        flops += run_flops(rec, vocab_size)
        tokens += float(ProxyConfig.from_dict(rec["config"]).total_tokens)
    return {"runs": len(ids), "flops": flops, "train_tokens": tokens}
