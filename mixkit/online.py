"""Online baselines that choose a mixture while a proxy trains: DoReMi and Online Data Mixing (ODM).

    res = doremi(config, data, store)               # reference run, then the DRO proxy
    res.mixture, res.history                         # average domain weights; weights per step
    res = online_data_mixing(config, data, store)   # one run whose mixture an EXP3 bandit picks

Every run is a normal run of the store (`mixkit.runs`): the reference run is trained with its
checkpoint kept, or reused when the store has it; the DRO and ODM runs are policy runs whose ids
hash the policy (`mixkit.proxy.policies`), so calling again trains nothing. Bad input (eta <= 0,
smoothing outside [0, 1), a reference of another model config, tokenizer or domain set, an
unknown reference) raises before anything is trained or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pandas as pd

from mixkit.mixture import Mixture
from mixkit.proxy import EXP3, DoReMi, ProxyConfig
from mixkit.proxy.checkpoint import load_checkpoint
from mixkit.proxy.policies import check_doremi, check_reference
from mixkit.runs import RunStore, sweep
from mixkit.runs.store import as_store
from mixkit.tokens import as_token_data


@dataclass
class OnlineResult:
    """What an online method produced.

    `mixture`: the domain weights averaged over training (DoReMi: of the last round), a Mixture.
    `history`: the weights of every step, a DataFrame indexed by step (1-based) with one column per
    domain (DoReMi with several rounds: a `round` column too). `run_ids`: the policy run of each
    round; `reference_ids`: DoReMi's reference run of each round; `rounds`: each round's mixture;
    `losses`: the final validation losses of the (last) policy run.
    """

    method: str
    mixture: Mixture
    history: pd.DataFrame
    run_ids: list[str]
    reference_ids: list[str] = field(default_factory=list)
    rounds: list[Mixture] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)


def doremi(config: ProxyConfig, data, store, *, reference="uniform", reference_checkpoint=None, rounds: int = 1,
           eta: float = 1.0, smoothing: float = 1e-3, workers: int | None = None, threads: int | None = None,
           progress: bool = True) -> OnlineResult:
    """DoReMi (Xie et al. 2023): domain weights of a Group-DRO proxy against a reference proxy.

    `reference`: "uniform" (the paper's default), "natural" (the token share) or a Mixture; its run
    is trained into `store` with its checkpoint (reused when there). `reference_checkpoint`: a saved
    model to use instead for the first round (checked against `config` and `data`). `rounds` > 1
    iterates: round k's mixture is the reference mixture of round k+1.
    """
    data = as_token_data(data)
    check_doremi(eta, smoothing)
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if not isinstance(config, ProxyConfig):
        raise TypeError(f"config must be a ProxyConfig, got {type(config).__name__}")
    ref_mix = reference_mixture(reference, data)
    if reference_checkpoint is not None:
        check_reference(load_checkpoint(reference_checkpoint), reference_checkpoint,
                        config.model_config(data.vocab_size), data)
    store = RunStore(store) if not isinstance(store, RunStore) else store
    opts = dict(workers=workers, threads_per_worker=threads, progress=progress)
    run_ids, ref_ids, outputs, frames = [], [], [], []
    for k in range(rounds):
        if k == 0 and reference_checkpoint is not None:
            ckpt, ref_ids = reference_checkpoint, [None]
        else:
            ref_ids.append(_one_run(config, ref_mix, data, store, opts, checkpoints=True))
            ckpt = store.checkpoint(ref_ids[-1])
        run_ids.append(_one_run(config, DoReMi(ckpt, eta=eta, smoothing=smoothing), data, store, opts))
        history = weights_table(store, run_ids[-1])
        outputs.append(ref_mix := _average(history, data.domains, f"doremi-{k + 1}"))
        frames.append(history.assign(round=k + 1))
    history = frames[0].drop(columns="round") if rounds == 1 else pd.concat(frames)
    return OnlineResult("doremi", outputs[-1], history, run_ids, ref_ids, outputs, _final_losses(store, run_ids[-1]))


def online_data_mixing(config: ProxyConfig, data, store, *, smoothing: float = 0.9, workers: int | None = None,
                       threads: int | None = None, progress: bool = True) -> OnlineResult:
    """ODM (Albalak et al. 2023): one run whose mixture an EXP3 bandit picks every step, rewarded by
    each domain's training loss. The result's mixture is the average of its weights over the run."""
    data = as_token_data(data)
    if not isinstance(config, ProxyConfig):
        raise TypeError(f"config must be a ProxyConfig, got {type(config).__name__}")
    policy = EXP3(smoothing=smoothing)  # checks smoothing before anything runs
    store = RunStore(store) if not isinstance(store, RunStore) else store
    rid = _one_run(config, policy, data, store, dict(workers=workers, threads_per_worker=threads, progress=progress))
    history = weights_table(store, rid)
    mixture = _average(history, data.domains, "odm")
    return OnlineResult("odm", mixture, history, [rid], rounds=[mixture], losses=_final_losses(store, rid))


def reference_mixture(reference, data) -> Mixture:
    """"uniform", "natural" (the token share) or a Mixture / {domain: weight} over the data's domains."""
    if isinstance(reference, str):
        if reference == "uniform":
            return Mixture(dict.fromkeys(data.domains, 1.0 / len(data.domains)), name="uniform")
        if reference == "natural":
            return Mixture(data.token_share, domains=data.domains, name="natural")
        raise ValueError(f"reference must be 'uniform', 'natural' or a Mixture, got {reference!r}")
    if isinstance(reference, (Mixture, Mapping)):
        mix = reference if isinstance(reference, Mixture) else Mixture(reference, domains=data.domains)
        mix.as_array(data.domains)
        return mix
    raise TypeError(f"reference must be 'uniform', 'natural' or a Mixture, got {type(reference).__name__}")


def _one_run(config, mixture, data, store: RunStore, opts: dict, checkpoints: bool = False) -> str:
    result = sweep(config, mixture, data, store, checkpoints=checkpoints, **opts)
    if result.failed:
        rid, err = next(iter(result.failed.items()))
        raise RuntimeError(f"run {rid} failed: {err}")
    return result[0]


def weights_table(store, rid: str) -> pd.DataFrame:
    """A run's weights per step as a wide DataFrame: index step, one column per domain."""
    long = as_store(store).read_weights(rid)
    wide = long.pivot(index="step", columns="domain", values="weight")
    wide.columns.name = None
    return wide


def _average(history: pd.DataFrame, domains: Sequence[str], name: str) -> Mixture:
    return Mixture.from_array(history[list(domains)].mean(axis=0).to_numpy(), domains, name=name)


def _final_losses(store: RunStore, rid: str) -> dict[str, float]:
    return dict((store.read_config(rid).get("metrics") or {}).get("final_losses") or {})
