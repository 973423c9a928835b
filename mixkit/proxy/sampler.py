"""Training batches that follow a mixture exactly, and fixed validation batches.

Every step a `MixtureSampler` gives each domain the number of rows its weight asks for. Rows are
handed out to the domains furthest behind their target `w_i * batch_size * steps`, so after any
number of steps each domain's cumulative row count is within one row of its target, even when
`w_i * batch_size` is not an integer (a 0.1 weight at batch 32 gets 3 or 4 rows a step, 3.2 on
average). Each row is a random window of the domain's shard; rows are shuffled so domains mix.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from mixkit.mixture import Mixture


class MixtureSampler:
    """Random next-token windows drawn per the mixture; deterministic for a seed.

    `next_batch()` returns `(x, y)`, two int64 tensors `[batch_size, context_length]` where `y`
    is `x` shifted by one token; `last_domains` holds each row's domain index and `last_alloc` the
    rows per domain. Domains with weight 0 are never read. `set_weights` changes the mixture
    between steps (phased schedules, adaptive policies); `support` names the domains it may move
    weight to, so their shards are opened and checked up front.
    """

    def __init__(self, data, mixture: Mixture, batch_size: int, context_length: int, seed: int,
                 split: str = "train", support=None):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(context_length, (int, np.integer)) or context_length < 1:
            raise ValueError(f"context_length must be a positive integer, got {context_length!r}")
        if not isinstance(mixture, Mixture):
            mixture = Mixture(mixture, domains=data.domains)
        self.data = data
        self.mixture = mixture
        self.batch_size = int(batch_size)
        self.context_length = int(context_length)
        self.seed = seed
        self.split = split
        self.domains = list(data.domains)
        # Raises if the mixture puts weight on a domain the data does not have.
        self.weights = mixture.as_array(self.domains)
        self._active = np.flatnonzero(self.weights > 0)
        shards = data.train if split == "train" else data.val
        self._shards = {}
        opened = self._active if support is None else np.flatnonzero(
            (self.weights > 0) | np.isin(self.domains, list(support)))
        for i in opened:
            d = self.domains[i]
            n = int(shards[d].shape[0])
            if n < self.context_length + 1:
                raise ValueError(
                    f"domain {d!r} {split} shard has {n} tokens, fewer than context_length + 1 = "
                    f"{self.context_length + 1}; lower context_length or give it weight 0"
                )
            self._shards[d] = shards[d]
        self._rng = np.random.default_rng(seed)
        self._rows = np.zeros(len(self.domains), dtype=np.int64)
        self.step = 0
        self._window = np.arange(self.context_length + 1, dtype=np.int64)
        # Cumulative row target of the steps before the current weights took over (see set_weights).
        self._offset = np.zeros(len(self.domains))
        self._since = 0
        self.last_alloc = np.zeros(len(self.domains), dtype=np.int64)
        self.last_domains = np.zeros(0, dtype=np.int64)

    def set_weights(self, weights) -> None:
        """Change the mixture from the next step on, carrying every domain's row deficit over.

        The cumulative target of each domain becomes the sum over steps of its weight that step
        times batch_size, so a domain's row count stays within one row of it however often the
        weights change (a policy changing them every step included), as long as every domain keeps a
        positive weight. A domain whose weight drops to 0 (a phase that leaves it out) keeps the
        fraction of a row it was behind or ahead; the active domains absorb it, so their counts can
        drift from target by up to one row per such domain.
        """
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape[0] != len(self.domains) or not np.all(np.isfinite(w)) or (w < 0).any() \
                or abs(float(w.sum()) - 1.0) > 1e-6:
            raise ValueError(f"sampler weights must be {len(self.domains)} finite non-negative numbers summing to 1 "
                             f"(domains {self.domains}), got {w.tolist()}")
        if np.array_equal(w, self.weights):
            return
        closed = [self.domains[i] for i in np.flatnonzero(w > 0) if self.domains[i] not in self._shards]
        if closed:
            raise ValueError(f"domains {closed} get weight but were not in the sampler's support; "
                             "pass support= with every domain the run may use")
        self._offset = self._offset + self.weights * self.batch_size * (self.step - self._since)
        self._since = self.step
        self.weights = w
        self._active = np.flatnonzero(w > 0)

    # ------------------------------------------------------------------ allocation

    def allocation(self) -> np.ndarray:
        """Rows per domain for the next step (does not advance the sampler)."""
        # With weights never changed, offset is 0 and since is 0: the target of earlier versions.
        target = self._offset + self.weights * self.batch_size * (self.step + 1 - self._since)
        deficit = target - self._rows
        alloc = np.zeros(len(self.domains), dtype=np.int64)
        act = self._active
        # Hand rows one at a time to the active domain furthest behind its target (ties: lower
        # index). Giving a row only to a domain with positive deficit keeps every count below
        # target + 1; filling exactly batch_size rows keeps the totals on target.
        d = deficit[act].copy()
        for _ in range(self.batch_size):
            j = int(np.argmax(d))
            alloc[act[j]] += 1
            d[j] -= 1.0
        return alloc

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        alloc = self.allocation()
        parts, labels = [], []
        for i in self._active:
            k = int(alloc[i])
            if k == 0:
                continue
            shard = self._shards[self.domains[i]]
            starts = self._rng.integers(0, shard.shape[0] - self.context_length, size=k)
            parts.append(np.asarray(shard[starts[:, None] + self._window], dtype=np.int64))
            labels.append(np.full(k, i, dtype=np.int64))
        rows = np.concatenate(parts, axis=0)
        order = self._rng.permutation(rows.shape[0])
        rows = rows[order]
        self.last_domains = np.concatenate(labels)[order]
        self.last_alloc = alloc
        self._rows += alloc
        self.step += 1
        t = torch.from_numpy(rows)
        return t[:, :-1].contiguous(), t[:, 1:].contiguous()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    # ------------------------------------------------------------------ bookkeeping

    @property
    def rows_seen(self) -> dict[str, int]:
        return {d: int(r) for d, r in zip(self.domains, self._rows)}

    @property
    def tokens_seen(self) -> dict[str, int]:
        """Input tokens per domain so far (rows * context_length)."""
        return {d: int(r) * self.context_length for d, r in zip(self.domains, self._rows)}

    def state_dict(self) -> dict:
        """Everything needed to resume the exact batch sequence (e.g. from a checkpoint)."""
        return {"step": self.step, "rows": self._rows.tolist(), "rng": self._rng.bit_generator.state,
                "weights": self.weights.tolist(), "offset": self._offset.tolist(), "since": self._since}

    def load_state_dict(self, state: dict) -> None:
        rows = np.asarray(state["rows"], dtype=np.int64)
        if rows.shape != self._rows.shape:
            raise ValueError(f"sampler state has {rows.shape[0]} domains, this sampler has {len(self.domains)}")
        self.step = int(state["step"])
        self._rows = rows
        self._rng.bit_generator.state = state["rng"]
        if "weights" in state:  # states saved before mixtures could change have none
            self.set_weights(state["weights"])
            self._offset = np.asarray(state["offset"], dtype=np.float64)
            self._since = int(state["since"])


def eval_batches(data, domain: str, context_length: int, batch_size: int, max_tokens: int | None = None,
                 split: str = "val") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed, non-overlapping windows over a domain's validation shard, in order.

    Window k covers tokens `[k*T, (k+1)*T]` (x the first T, y the last T), so every run scores the
    same tokens. `max_tokens` keeps the first `max_tokens // T` windows. The last batch may be short.
    """
    if domain not in data.domains:
        raise ValueError(f"unknown domain {domain!r}: not one of {list(data.domains)}")
    if context_length < 1 or batch_size < 1:
        raise ValueError(f"context_length and batch_size must be positive, got {context_length}, {batch_size}")
    shard = (data.val if split == "val" else data.train)[domain]
    T = int(context_length)
    n_windows = (int(shard.shape[0]) - 1) // T
    if max_tokens is not None:
        n_windows = min(n_windows, int(max_tokens) // T)
    if n_windows < 1:
        raise ValueError(
            f"domain {domain!r} {split} shard has {int(shard.shape[0])} tokens: not one window of "
            f"context_length + 1 = {T + 1} (or max_tokens={max_tokens} < context_length)"
        )
    offsets = np.arange(T + 1, dtype=np.int64)
    for start in range(0, n_windows, batch_size):
        k = np.arange(start, min(start + batch_size, n_windows), dtype=np.int64)
        rows = torch.from_numpy(np.asarray(shard[k[:, None] * T + offsets], dtype=np.int64))
        yield rows[:, :-1].contiguous(), rows[:, 1:].contiguous()
