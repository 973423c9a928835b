"""Train one proxy model on one mixture and record per-domain validation curves.

`ProxyConfig.preset(name)` gives the standard proxy sizes; `train_proxy(config, mixture, data)`
trains on `MixtureSampler` batches, evaluates every domain's fixed validation tokens along the way
and returns a `RunResult` whose `to_table()` rows are the run table of `mixkit.table`.

Continual pretraining: `init_checkpoint=` starts from a saved model with a fresh optimizer and
schedule; the starting model's validation losses are kept in `RunResult.init_losses` (and are the
step-0 rows of the curve) so forgetting is measured against them.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mixkit.mixture import Mixture
from mixkit.paths import atomic_write_bytes
from mixkit.proxy.model import GPT, GPTConfig, flops_per_token, param_counts

SCHEDULES = ("cosine", "constant", "wsd")
PRECISIONS = ("auto", "fp32", "bf16")
CHECKPOINT_FORMAT = 1

# "auto" precision on a CPU with bf16 matmuls: bf16 from this width up. With the chunked head
# (mixkit.proxy.model.head_cross_entropy) and fp32 attention, bf16 measured 2x fp32 at d64 x 2 on an
# avx512_bf16 CPU without AMX (bench/proxy_throughput.py), and tests/test_speed_equivalence.py shows
# its final losses within seed noise of fp32. Before the chunked head, bf16 did not pay below d128.
_CPU_BF16_MIN_D_MODEL = 1

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


def resolve_device(config: ProxyConfig) -> str:
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"ProxyConfig.device={config.device!r} but CUDA is not available")
    return config.device


def resolve_precision(config: ProxyConfig, device: str) -> str:
    if config.precision != "auto":
        return config.precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device == "cpu" and config.d_model >= _CPU_BF16_MIN_D_MODEL and _cpu_has_bf16():
        return "bf16"
    return "fp32"


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def keep_freed_memory_mapped() -> bool:
    """Ask glibc to keep freed multi-MB blocks in the process instead of unmapping them.

    A training step allocates and frees the same large activations every step (a tiny proxy's MLP
    hidden state alone is 4 MB). Above glibc's mmap threshold each of them is a fresh mapping whose
    pages the kernel zero-fills on first touch: measured 3,600-5,500 page faults and about 8 ms of
    system time per tiny-preset step, against about 0 with these settings. PyTorch has no caching
    allocator on the CPU, so this is the allocator-level fix (what LD_PRELOADing jemalloc or
    tcmalloc would do), applied once per process that trains on a CPU. Returns whether it applied
    (False off glibc).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    mb = 1 << 20
    # 32 MB is glibc's largest allowed mmap threshold on 64-bit; blocks above it still map and unmap.
    return all(mallopt(opt, value) == 1 for opt, value in
               ((M_MMAP_THRESHOLD, 32 * mb), (M_TRIM_THRESHOLD, 256 * mb), (M_TOP_PAD, 64 * mb)))


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


# ---------------------------------------------------------------------------- results


@dataclass
class RunResult:
    """One finished proxy run. `curve` is tidy: step, tokens, domain, loss (validation loss)."""

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

    @property
    def config_hash(self) -> str:
        from mixkit.runs import config_hash

        return config_hash(self.config)

    @property
    def final_losses(self) -> dict[str, float]:
        last = self.curve[self.curve["step"] == self.curve["step"].max()]
        return dict(zip(last["domain"], last["loss"].astype(float)))

    def to_table(self) -> pd.DataFrame:
        """Run-table rows (`mixkit.table`): one per (step, validation domain), weights as w:<domain>."""
        from mixkit.table import weight_column

        out = pd.DataFrame({
            "run_id": self.run_id,
            "model_size": int(self.n_non_embedding),
            "step": self.curve["step"].astype(int).to_numpy(),
            "tokens": self.curve["tokens"].astype(float).to_numpy(),
            "domain": self.curve["domain"].astype(str).to_numpy(),
            "loss": self.curve["loss"].astype(float).to_numpy(),
            "seed": int(self.config.seed),
            "config_hash": self.config_hash,
        })
        weights = self.mixture.as_array(self.domains)
        for d, w in zip(self.domains, weights):
            out[weight_column(d)] = float(w)
        return out

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


# ---------------------------------------------------------------------------- checkpoints


def write_checkpoint(path: str | os.PathLike, model: GPT, config: ProxyConfig, mixture: Mixture,
                    data_fingerprint: str, run_id: str | None = None) -> Path:
    """Model weights + configs + mixture, written atomically (a crash never leaves a torn file)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "run_id": run_id,
        "model_config": dataclasses.asdict(model.cfg),
        "config": config.to_dict(),
        "mixture": mixture.to_dict(),
        "mixture_domains": mixture.domains,
        "data_fingerprint": data_fingerprint,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a mixkit proxy checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def checkpoint_id(path: str | os.PathLike, ckpt: dict | None = None) -> str:
    """Stable identity of a checkpoint: the id of the run that wrote it, else a hash of its bytes.

    The run id survives re-running the run that wrote it, so continual runs keep their ids too.
    """
    ckpt = load_checkpoint(path) if ckpt is None else ckpt
    if ckpt.get("run_id"):
        return str(ckpt["run_id"])
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# ---------------------------------------------------------------------------- training


def _load_data(data):
    if isinstance(data, (str, os.PathLike)):
        from mixkit import tokens

        return tokens.load(data)
    return data


def _make_optimizer(model: GPT, config: ProxyConfig, device: str) -> torch.optim.Optimizer:
    # Decay matrices only: biases and LayerNorm gains are scale parameters that decay would pull to 0.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def _autocast(device: str, precision: str):
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16")


def _head_dtype(precision: str) -> torch.dtype:
    return torch.bfloat16 if precision == "bf16" else torch.float32


# Validation windows per forward pass: the loss is a per-token mean, so batching them differently
# from training changes nothing but the cost (fewer, larger matmuls).
EVAL_BATCH_ROWS = 128


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
            with _autocast(device, precision):
                loss = model.loss(x, y, head_dtype=_head_dtype(precision))
            total += float(loss) * y.numel()
            count += y.numel()
        out[domain] = total / count
    model.train(was_training)
    return out


def train_proxy(config: ProxyConfig, mixture: Mixture, data, *, init_checkpoint: str | os.PathLike | None = None,
                save_checkpoint: str | os.PathLike | None = None, progress: bool = True) -> RunResult:
    """Train a proxy on `mixture` over `data` (a TokenData or its folder) and return its curves.

    Same config and seed on the same CPU give the same curve: the model init follows
    `torch.manual_seed(config.seed)` and the batches a `MixtureSampler` seeded with it.
    `config.threads` applies for the run only; torch's thread count is restored afterwards.
    """
    threads = torch.get_num_threads()
    try:
        return _train(config, mixture, data, init_checkpoint, save_checkpoint, progress)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _train(config, mixture, data, init_checkpoint, save_checkpoint, progress) -> RunResult:
    from mixkit.runs import run_id as make_run_id
    from mixkit.sampler import MixtureSampler, eval_batches

    start = time.perf_counter()
    data = _load_data(data)
    if not isinstance(mixture, Mixture):
        mixture = Mixture(mixture, domains=data.domains)
    # Raises a clear error if the mixture weights a domain the data does not have.
    mixture.as_array(data.domains)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = resolve_device(config)
    precision = resolve_precision(config, device)
    if device == "cpu":
        keep_freed_memory_mapped()
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    gcfg = config.model_config(data.vocab_size)
    torch.manual_seed(config.seed)
    model = GPT(gcfg)
    init_id = None
    if init_checkpoint is not None:
        ckpt = load_checkpoint(init_checkpoint)
        saved = GPTConfig(**ckpt["model_config"])
        if saved != gcfg:
            diff = {k: (v, getattr(gcfg, k)) for k, v in dataclasses.asdict(saved).items() if getattr(gcfg, k) != v}
            raise ValueError(f"checkpoint {init_checkpoint} has a different architecture than the config "
                             f"(field: (checkpoint, config)): {diff}")
        if ckpt.get("data_fingerprint") not in (None, data.fingerprint):
            raise ValueError(f"checkpoint {init_checkpoint} was trained on token data "
                             f"{ckpt['data_fingerprint']}, not this data ({data.fingerprint}): token ids would not match")
        model.load_state_dict(ckpt["state_dict"])
        init_id = checkpoint_id(init_checkpoint, ckpt)
    model.to(device)
    model.train()
    rid = make_run_id(config, mixture, config.seed, data.fingerprint, init_id)

    optimizer = _make_optimizer(model, config, device)
    sampler = MixtureSampler(data, mixture, config.batch_size, config.context_length, seed=config.seed)
    eval_sets = {d: list(eval_batches(data, d, config.context_length, max(config.batch_size, EVAL_BATCH_ROWS),
                                      max_tokens=config.eval_tokens)) for d in data.domains}

    rows: list[tuple[int, int, str, float]] = []
    train_rows: list[tuple[int, float]] = []

    def record(step: int) -> dict[str, float]:
        losses = evaluate(model, eval_sets, device, precision)
        for d, v in losses.items():
            if not math.isfinite(v):
                raise FloatingPointError(f"validation loss on {d!r} is {v} at step {step}: the run diverged "
                                         f"(lower lr={config.lr}?)")
            rows.append((step, step * config.tokens_per_step, d, v))
        return losses

    head_dtype = _head_dtype(precision)
    init_losses = record(0)
    train_time = 0.0
    running, running_n = torch.zeros((), device=device), 0
    bar = tqdm(range(config.steps), desc=f"proxy {config.name}", disable=not progress, leave=False)
    for step in bar:
        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(config, step)
        x, y = sampler.next_batch()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _autocast(device, precision):
            # Never builds the (B, T, V) logits: see mixkit.proxy.model.head_cross_entropy.
            loss = model.loss(x, y, head_dtype=head_dtype)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        running += loss.detach()
        running_n += 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        train_time += time.perf_counter() - t0
        done = step + 1
        if done % config.eval_every == 0 or done == config.steps:
            mean_train = float(running) / running_n
            if not math.isfinite(mean_train):
                raise FloatingPointError(f"training loss is {mean_train} by step {done}: the run diverged "
                                         f"(lower lr={config.lr}?)")
            train_rows.append((done, mean_train))
            running, running_n = torch.zeros((), device=device), 0
            losses = record(done)
            bar.set_postfix(train=f"{mean_train:.3f}", val=f"{np.mean(list(losses.values())):.3f}")
    bar.close()

    if save_checkpoint is not None:
        write_checkpoint(save_checkpoint, model, config, mixture, data.fingerprint, run_id=rid)

    counts = param_counts(gcfg)
    trained = config.total_tokens
    return RunResult(
        run_id=rid,
        config=config,
        mixture=mixture,
        data_fingerprint=data.fingerprint,
        domains=list(data.domains),
        curve=pd.DataFrame(rows, columns=["step", "tokens", "domain", "loss"]),
        tokens_seen=sampler.tokens_seen,
        wall_time_s=time.perf_counter() - start,
        train_time_s=train_time,
        tokens_per_s=trained / train_time if train_time > 0 else float("nan"),
        flops=float(flops_per_token(gcfg)) * trained,
        n_params=counts["total"],
        n_non_embedding=counts["non_embedding"],
        device=device,
        precision=precision,
        init_losses=init_losses if init_checkpoint is not None else None,
        init_checkpoint_id=init_id,
        train_loss=pd.DataFrame(train_rows, columns=["step", "loss"]),
    )
