"""Train one proxy model on one mixture and record per-domain validation curves.

`train_proxy(config, mixture, data)` trains on `MixtureSampler` batches, evaluates every domain's
fixed validation tokens along the way and returns a `RunResult` (its curve becomes run-table rows in
`mixkit.runs`). The mixture may change during the run: a `Phased` schedule or an adaptive `Policy`
(`mixkit.proxy.mixing`); the weights every step trained on are the result's `weights_history`.

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
from mixkit.proxy.mixing import Schedule, StepStats, describe, resolve_mixing, support_of
from mixkit.proxy.model import GPT, GPTConfig, flops_per_token, param_counts
from mixkit.proxy.result import RunResult
from mixkit.proxy.sampler import MixtureSampler, eval_batches
from mixkit.proxy.schedule import lr_at
from mixkit.tokens import as_token_data

# Validation windows per forward pass: the loss is a per-token mean, so batching them differently
# from training changes nothing but the cost (fewer, larger matmuls).
EVAL_BATCH_ROWS = 128


def train_proxy(config: ProxyConfig, mixture, data, *, init_checkpoint: str | os.PathLike | None = None,
                save_checkpoint: str | os.PathLike | None = None, progress: bool = True) -> RunResult:
    """Train a proxy on `mixture` over `data` (a TokenData or its folder) and return its curves.

    `mixture` is a Mixture (or dict of weights), a Phased schedule (or a list of (end fraction,
    Mixture) pairs) or a Policy; it is checked against the data and the step count before training.

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
            write_checkpoint(save_checkpoint, run.model, config, _trained_mixture(run), run.data.fingerprint,
                             run_id=run.run_id)
        return _result(run, curve, train_time, time.perf_counter() - start)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


@dataclass
class _Run:
    """Everything a training loop needs, built once by `_setup`."""

    config: ProxyConfig
    mixture: Mixture  # the first step's sampling mixture (a fixed run's only one)
    spec: object  # what the run id hashes: the Mixture, the Phased schedule or the Policy
    schedule: Schedule
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
    # Raises a clear error on unknown domains, a schedule that does not cover the run, or a policy
    # whose first weights are not a mixture, before any training.
    spec = resolve_mixing(mixture, data.domains, config.steps)
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
    context = {"model_config": gcfg, "config": config, "data": data, "device": device, "precision": precision}
    schedule = Schedule(spec, data.domains, config.steps, config.seed, context)
    first = spec if schedule.kind == "fixed" else Mixture.from_array(schedule.sample_weights(0), data.domains)
    return _Run(
        config=config, mixture=first, spec=spec, schedule=schedule, data=data, device=device, precision=precision,
        model_config=gcfg, model=model, init_id=init_id,
        run_id=make_run_id(config, spec, config.seed, data.fingerprint, init_id),
        optimizer=_make_optimizer(model, config),
        sampler=MixtureSampler(data, first, config.batch_size, config.context_length, seed=config.seed,
                               support=support_of(spec, data.domains)),
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
    schedule = run.schedule
    if schedule.dynamic:
        run.sampler.set_weights(schedule.sample_weights(step))
    x, y = run.sampler.next_batch()
    schedule.record(step, run.sampler.last_alloc)
    x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
    token_weights = token_losses = None
    if schedule.policy is not None:
        token_losses = torch.empty(y.numel(), dtype=torch.float32, device=run.device)
        if schedule.loss_weighted:
            token_weights = schedule.token_weights(run.sampler.last_domains, y.shape[1]).to(run.device)
    with autocast(run.device, run.precision):
        # Never builds the (B, T, V) logits: see mixkit.proxy.head.head_cross_entropy.
        loss = run.model.loss(x, y, head_dtype=head_dtype(run.precision), token_weights=token_weights,
                              token_losses_out=token_losses)
    loss.backward()
    if run.config.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.config.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    if schedule.policy is not None:
        _observe(run, step, x, y, token_losses)
    return loss.detach()


def _observe(run: _Run, step: int, x, y, token_losses: torch.Tensor) -> None:
    """Hand the policy this step's per-domain training losses; it sets the next step's weights.

    The losses are those of the forward pass the step trained on (before its update): a policy
    decides step t+1 from step t, so the weights never wait on an extra forward pass.
    """
    schedule, domains = run.schedule, run.sampler.last_domains
    domain_loss, rows = schedule.domain_losses(token_losses, domains, y.shape[0])
    schedule.observe(StepStats(step=step + 1, domain_loss=domain_loss, rows=rows,
                               weights=schedule.trained_weights(step), x=x, y=y, row_domains=domains,
                               token_losses=token_losses))


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


def _trained_mixture(run: _Run) -> Mixture:
    """A fixed run's mixture; a phased or policy run's weights averaged over its steps."""
    return run.mixture if run.schedule.kind == "fixed" else run.schedule.average()


def _result(run: _Run, curve: _Curve, train_time: float, wall_time: float) -> RunResult:
    counts = param_counts(run.model_config)
    trained = run.config.total_tokens
    return RunResult(
        run_id=run.run_id,
        config=run.config,
        mixture=_trained_mixture(run),
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
        schedule=describe(run.spec),
        weights_history=run.schedule.history(),
    )
