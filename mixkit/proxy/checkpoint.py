"""Proxy checkpoints: final weights with the configs and mixture that made them.

A continual-pretraining run starts from one (`train_proxy(init_checkpoint=...)`), and its identity
(`checkpoint_id`) is part of the continual run's id.

Checkpoints live in run stores that other people and machines write to, so they are read with
`torch.load(weights_only=True)`: a file holding anything but tensors and plain data (dicts, lists,
strings, numbers) is refused before any of it is built, and loading one never runs code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import warnings
from pathlib import Path

import torch

from mixkit.mixture import Mixture
from mixkit.paths import atomic_write_bytes, json_ready
from mixkit.proxy.config import ProxyConfig
from mixkit.proxy.model import GPT, GPTConfig

CHECKPOINT_FORMAT = 1


def write_checkpoint(path: str | os.PathLike, model: GPT, config: ProxyConfig, mixture: Mixture,
                    data_fingerprint: str, run_id: str | None = None) -> Path:
    """Model weights + configs + mixture, written atomically (a crash never leaves a torn file)."""
    # Plain Python values only (a numpy float in a config would not load under weights_only=True).
    meta = json_ready({
        "format": CHECKPOINT_FORMAT,
        "run_id": run_id,
        "model_config": dataclasses.asdict(model.cfg),
        "config": config.to_dict(),
        "mixture": mixture.to_dict(),
        "mixture_domains": mixture.domains,
        "data_fingerprint": data_fingerprint,
    }, nan=float("nan"))
    payload = {**meta, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint's payload; refuses a file that is not tensors and plain data (never runs it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():
            # A pickle made outside torch.save warns about its protocol before it is refused anyway.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"checkpoint {path} was refused: it is not only tensors and plain data "
                         f"({_unpickler_reason(exc)}), so it is damaged or holds objects that would run "
                         "code when loaded; mixkit never runs code from a checkpoint (a genuine one "
                         "holds only weights, configs and the mixture)") from None
    except Exception as exc:  # torch raises KeyError, RuntimeError, EOFError... on a damaged file
        raise ValueError(f"checkpoint {path} is damaged or not a PyTorch file "
                         f"({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a mixkit proxy checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def _unpickler_reason(exc: Exception) -> str:
    """The line of torch's long weights-only error that names what was refused."""
    text = str(exc)
    tail = text.split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    # Only its first sentence: the rest advises allow-listing the object, which mixkit must not do.
    return (lines[0] if lines else text.strip()).split(". ", 1)[0].rstrip(".")[:300]


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
    check_compatible(ckpt, path, model.cfg, data_fingerprint)
    model.load_state_dict(ckpt["state_dict"])
    return checkpoint_id(path, ckpt)


def check_compatible(ckpt: dict, path, model_config: GPTConfig, data_fingerprint: str, *, what: str = "checkpoint",
                     other: str = "config", require_data: bool = False) -> None:
    """Refuse a checkpoint of another architecture than `model_config`, or one trained on other token
    data (its token ids would mean different strings). A checkpoint that records no data fingerprint
    passes unless `require_data`."""
    saved = GPTConfig(**ckpt["model_config"])
    if saved != model_config:
        diff = {k: (v, getattr(model_config, k)) for k, v in dataclasses.asdict(saved).items()
                if getattr(model_config, k) != v}
        raise ValueError(f"{what} {path} has a different architecture (another model config) than the {other} "
                         f"(field: ({what}, {other})): {diff}")
    recorded = ckpt.get("data_fingerprint")
    if recorded != data_fingerprint and (require_data or recorded is not None):
        raise ValueError(f"{what} {path} was trained on token data {recorded}, not this data ({data_fingerprint}): "
                         "another tokenizer or corpus, so token ids would not match")
