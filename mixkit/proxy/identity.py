"""The identity of a proxy run: a content hash of everything that defines what it computes.

`run_id` hashes (config, mixture, seed, token data, starting checkpoint), the mixture being a fixed
mixture, a phased schedule or an adaptive policy's configuration, so the same run always
gets the same id: a run store uses it as the run's directory name and a sweep skips what is done.
These ids name existing stores: changing what is hashed, or how, orphans every stored run
(tests/test_identity.py pins known ids).

Same id, same curve, bit for bit, on the same machine: a CPU run's torch thread count is part of
its id, because CPU kernels split their reductions by thread count (1 and 2 threads measured up to
2e-6 nats apart in fp32 and 2e-3 in bf16 at the smoke preset). One thread, the default of sweeps on
CPU, is hashed as nothing, so the ids of one-thread runs are those of earlier versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import torch

from mixkit.mixture import Mixture
from mixkit.proxy.device import resolve_device, resolve_precision

# Fields that do not change what a run computes (the preset label) stay out of its id; the seed is
# hashed on its own, and the thread count as it resolves (see cpu_threads).
_NOT_HASHED = ("threads", "name", "seed")


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _config_dict(config) -> dict:
    d = config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)
    d = {k: v for k, v in d.items() if k not in _NOT_HASHED}
    # "auto" device and precision are hashed as what they resolve to on this machine: a bf16 run and
    # an fp32 run of the same config are different computations and must not share a cache entry.
    device = resolve_device(config) if d.get("device") == "auto" else str(d.get("device"))
    if d.get("device") == "auto" or d.get("precision") == "auto":
        d["device"] = "cuda" if device.startswith("cuda") else device
        d["precision"] = resolve_precision(config, device)
    threads = cpu_threads(config, device)
    if threads is not None and threads != 1:
        d["cpu_threads"] = threads
    return d


def cpu_threads(config, device: str) -> int | None:
    """The torch thread count a run trains with on a CPU (`config.threads`, else this process's
    current count); None on a GPU, whose kernels do not depend on it."""
    if not device.startswith("cpu"):
        return None
    threads = getattr(config, "threads", None)
    return int(threads) if threads is not None else torch.get_num_threads()


def _mixture_dict(mixture) -> dict:
    # A phased schedule or a policy is hashed as its own identity (end fractions and mixtures; the
    # policy's class and parameters); a fixed Mixture as before, so its ids stay.
    if not isinstance(mixture, Mixture):
        if not hasattr(mixture, "identity"):
            mixture = Mixture(mixture)
        else:
            return mixture.identity()
    # Rounded and zero-free so 0.1 + 0.2 style float noise or listing a zero-weight domain keeps the id.
    return {d: round(float(w), 10) for d, w in sorted(mixture.weights.items()) if round(float(w), 10) != 0}


def config_hash(config) -> str:
    """Hash of the config fields that change the computation: not the seed or the preset name; device,
    precision and the CPU thread count as they resolve."""
    return _digest(_config_dict(config))


def run_id(config, mixture, seed: int, data_fingerprint: str, init_checkpoint_id: str | None = None) -> str:
    """sha256 of the canonical JSON of everything that defines a run, first 16 hex digits.

    `mixture` is a Mixture, or anything with `identity()` (a Phased schedule, a Policy)."""
    return _digest({
        "config": _config_dict(config),
        "mixture": _mixture_dict(mixture),
        "seed": int(seed),
        "data": str(data_fingerprint),
        "init": init_checkpoint_id,
    })
