"""Train one proxy model on one mixture and record per-domain validation curves.

`train_proxy(config, mixture, data)` trains on `MixtureSampler` batches, evaluates every domain's
fixed validation tokens along the way and returns a `RunResult` (its curve becomes run-table rows in
`mixkit.runs`).

Continual pretraining: `init_checkpoint=` starts from a saved model with a fresh optimizer and
schedule; the starting model's validation losses are kept in `RunResult.init_losses` (and are the
step-0 rows of the curve) so forgetting is measured against them.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from mixkit.mixture import Mixture
from mixkit.progress import progress_bar
from mixkit.proxy.checkpoint import load_initial_weights, write_checkpoint
from mixkit.proxy.config import ProxyConfig
from mixkit.proxy.device import autocast, head_dtype, prepare_process, resolve_device, resolve_precision
from mixkit.proxy.identity import run_id as make_run_id
from mixkit.proxy.model import GPT, GPTConfig, flops_per_token, param_counts
from mixkit.proxy.result import RunResult
from mixkit.proxy.sampler import MixtureSampler, eval_batches
from mixkit.proxy.schedule import lr_at
from mixkit.tokens import as_token_data

# Validation windows per forward pass: the loss is a per-token mean, so batching them differently
# from training changes nothing but the cost (fewer, larger matmuls).
EVAL_BATCH_ROWS = 128


def train_proxy(config: ProxyConfig, mixture: Mixture, data, *, init_checkpoint: str | os.PathLike | None = None,
                save_checkpoint: str | os.PathLike | None = None, progress: bool = True) -> RunResult:
    """Train a proxy on `mixture` over `data` (a TokenData or its folder) and return its curves.

    Same config and seed on the same CPU give the same curve: the model init follows
    `torch.manual_seed(config.seed)` and the batches a `MixtureSampler` seeded with it.
    `config.threads` applies for the run only; torch's thread count is restored afterwards.
    """
    threads = torch.get_num_threads()
    try:
        start = time.perf_counter()
        run = _setup(config, mixture, data, init_checkpoint)
        curve = _Curve(run)
        train_time = _train_steps(run, curve, progress)
        if save_checkpoint is not None:
            write_checkpoint(save_checkpoint, run.model, config, run.mixture, run.data.fingerprint, run_id=run.run_id)
        return _result(run, curve, train_time, time.perf_counter() - start)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


@dataclass
class _Run:
    """Everything a training loop needs, built once by `_setup`."""

    config: ProxyConfig
    mixture: Mixture
    data: object
    device: str
    precision: str
    model_config: GPTConfig
    model: GPT
    init_id: str | None
    run_id: str
    optimizer: torch.optim.Optimizer
    sampler: MixtureSampler
    eval_sets: dict[str, list] = field(repr=False)


def _setup(config: ProxyConfig, mixture, data, init_checkpoint) -> _Run:
    data = as_token_data(data)
    if not isinstance(mixture, Mixture):
        mixture = Mixture(mixture, domains=data.domains)
    # Raises a clear error if the mixture weights a domain the data does not have.
    mixture.as_array(data.domains)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = resolve_device(config)
    precision = resolve_precision(config, device)
    prepare_process(device)
    gcfg = config.model_config(data.vocab_size)
    torch.manual_seed(config.seed)
    model = GPT(gcfg)
    init_id = None
    if init_checkpoint is not None:
        init_id = load_initial_weights(model, init_checkpoint, data.fingerprint)
    model.to(device)
    model.train()
    return _Run(
        config=config, mixture=mixture, data=data, device=device, precision=precision, model_config=gcfg,
        model=model, init_id=init_id, run_id=make_run_id(config, mixture, config.seed, data.fingerprint, init_id),
        optimizer=_make_optimizer(model, config),
        sampler=MixtureSampler(data, mixture, config.batch_size, config.context_length, seed=config.seed),
        eval_sets={d: list(eval_batches(data, d, config.context_length, max(config.batch_size, EVAL_BATCH_ROWS),
                                        max_tokens=config.eval_tokens)) for d in data.domains},
    )


def _make_optimizer(model: GPT, config: ProxyConfig) -> torch.optim.Optimizer:
    # Decay matrices only: biases and LayerNorm gains are scale parameters that decay would pull to 0.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


@torch.inference_mode()
def evaluate(model: GPT, eval_sets: dict[str, list], device: str, precision: str) -> dict[str, float]:
    """Mean next-token loss per domain over its fixed validation batches."""
    was_training = model.training
    model.eval()
    out = {}
    for domain, batches in eval_sets.items():
        total, count = 0.0, 0
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device, precision):
                loss = model.loss(x, y, head_dtype=head_dtype(precision))
            total += float(loss) * y.numel()
            count += y.numel()
        out[domain] = total / count
    model.train(was_training)
    return out


class _Curve:
    """The run's validation rows (step, tokens, domain, loss) and mean training loss per interval."""

    def __init__(self, run: _Run):
        self.run = run
        self.rows: list[tuple[int, int, str, float]] = []
        self.train_rows: list[tuple[int, float]] = []
        self.init_losses = self.validate(0)

    def validate(self, step: int) -> dict[str, float]:
        run = self.run
        losses = evaluate(run.model, run.eval_sets, run.device, run.precision)
        for d, v in losses.items():
            if not math.isfinite(v):
                raise FloatingPointError(f"validation loss on {d!r} is {v} at step {step}: the run diverged "
                                         f"(lower lr={run.config.lr}?)")
            self.rows.append((step, step * run.config.tokens_per_step, d, v))
        return losses

    def add_train_loss(self, step: int, mean_loss: float) -> None:
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"training loss is {mean_loss} by step {step}: the run diverged "
                                     f"(lower lr={self.run.config.lr}?)")
        self.train_rows.append((step, mean_loss))


def _train_step(run: _Run, step: int) -> torch.Tensor:
    """One optimizer step on the sampler's next batch; returns the (detached) training loss."""
    for group in run.optimizer.param_groups:
        group["lr"] = lr_at(run.config, step)
    x, y = run.sampler.next_batch()
    x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
    with autocast(run.device, run.precision):
        # Never builds the (B, T, V) logits: see mixkit.proxy.head.head_cross_entropy.
        loss = run.model.loss(x, y, head_dtype=head_dtype(run.precision))
    loss.backward()
    if run.config.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.config.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def _train_steps(run: _Run, curve: _Curve, progress: bool) -> float:
    """Every optimizer step of the run, validating every `eval_every` steps; returns the seconds spent
    training (evaluation excluded)."""
    config, on_cuda = run.config, run.device.startswith("cuda")
    train_time = 0.0
    running, running_n = torch.zeros((), device=run.device), 0
    bar = progress_bar(range(config.steps), desc=f"proxy {config.name}", disable=not progress, leave=False)
    for step in bar:
        t0 = time.perf_counter()
        running += _train_step(run, step)
        running_n += 1
        if on_cuda:
            torch.cuda.synchronize()
        train_time += time.perf_counter() - t0
        done = step + 1
        if done % config.eval_every == 0 or done == config.steps:
            mean_train = float(running) / running_n
            curve.add_train_loss(done, mean_train)
            running, running_n = torch.zeros((), device=run.device), 0
            losses = curve.validate(done)
            bar.set_postfix(train=f"{mean_train:.3f}", val=f"{np.mean(list(losses.values())):.3f}")
    bar.close()
    return train_time


def _result(run: _Run, curve: _Curve, train_time: float, wall_time: float) -> RunResult:
    counts = param_counts(run.model_config)
    trained = run.config.total_tokens
    return RunResult(
        run_id=run.run_id,
        config=run.config,
        mixture=run.mixture,
        data_fingerprint=run.data.fingerprint,
        domains=list(run.data.domains),
        curve=pd.DataFrame(curve.rows, columns=["step", "tokens", "domain", "loss"]),
        tokens_seen=run.sampler.tokens_seen,
        wall_time_s=wall_time,
        train_time_s=train_time,
        tokens_per_s=trained / train_time if train_time > 0 else float("nan"),
        flops=float(flops_per_token(run.model_config)) * trained,
        n_params=counts["total"],
        n_non_embedding=counts["non_embedding"],
        device=run.device,
        precision=run.precision,
        init_losses=curve.init_losses if run.init_id is not None else None,
        init_checkpoint_id=run.init_id,
        train_loss=pd.DataFrame(curve.train_rows, columns=["step", "loss"]),
    )
