"""Proxy checkpoints: final weights with the configs and mixture that made them.

A continual-pretraining run starts from one (`train_proxy(init_checkpoint=...)`), and its identity
(`checkpoint_id`) is part of the continual run's id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from pathlib import Path

import torch

from mixkit.mixture import Mixture
from mixkit.paths import atomic_write_bytes
from mixkit.proxy.config import ProxyConfig
from mixkit.proxy.model import GPT, GPTConfig

CHECKPOINT_FORMAT = 1


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


def load_initial_weights(model: GPT, path: str | os.PathLike, data_fingerprint: str) -> str:
    """Load a checkpoint's weights into `model` (a continual run's start); returns its `checkpoint_id`.

    Refuses a checkpoint of another architecture, or one trained on other token data (its token ids
    would mean different strings).
    """
    ckpt = load_checkpoint(path)
    saved = GPTConfig(**ckpt["model_config"])
    if saved != model.cfg:
        diff = {k: (v, getattr(model.cfg, k)) for k, v in dataclasses.asdict(saved).items()
                if getattr(model.cfg, k) != v}
        raise ValueError(f"checkpoint {path} has a different architecture than the config "
                         f"(field: (checkpoint, config)): {diff}")
    if ckpt.get("data_fingerprint") not in (None, data_fingerprint):
        raise ValueError(f"checkpoint {path} was trained on token data "
                         f"{ckpt['data_fingerprint']}, not this data ({data_fingerprint}): token ids would not match")
    model.load_state_dict(ckpt["state_dict"])
    return checkpoint_id(path, ckpt)
