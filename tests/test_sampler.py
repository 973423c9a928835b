"""MixtureSampler: exact per-step allocation, determinism, windows; eval_batches: fixed windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mixkit.mixture import Mixture
from mixkit.proxy.sampler import MixtureSampler, eval_batches
from mixkit.tokens import TokenData

DOMS = ["a", "b", "c", "d"]
SPAN = 10_000  # domain i's tokens are i*SPAN + position, so every token tells its domain and place


class Untouchable:
    """A shard that fails the test if anything reads it (zero-weight domains must not be read)."""

    def __init__(self, n):
        self.shape = (n,)

    def __getitem__(self, item):
        raise AssertionError("a zero-weight domain was read")


def fake_data(n_tokens=(5_000, 6_000, 7_000, 8_000), val_tokens=1_000, untouchable=()):
    train, val = {}, {}
    for i, d in enumerate(DOMS):
        arr = (i * SPAN + np.arange(n_tokens[i]) % SPAN).astype(np.uint16)
        train[d] = Untouchable(n_tokens[i]) if d in untouchable else arr
        val[d] = (i * SPAN + 5_000 + np.arange(val_tokens)).astype(np.uint16)
    return TokenData(root=Path("."), domains=DOMS, vocab_size=65_535, eot_id=0, fingerprint="fake",
                     train=train, val=val)


def domain_of(x: torch.Tensor) -> np.ndarray:
    return (x[:, 0].numpy() // SPAN).astype(int)


MIX = Mixture({"a": 0.1, "b": 0.27, "c": 0.333, "d": 0.297})


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_cumulative_rows_track_the_mixture_within_one_row(batch_size):
    data = fake_data()
    s = MixtureSampler(data, MIX, batch_size=batch_size, context_length=16, seed=0)
    w = MIX.as_array(DOMS)
    counted = np.zeros(4, dtype=int)
    for step in range(1, 101):
        x, _ = s.next_batch()
        assert x.shape[0] == batch_size
        counted += np.bincount(domain_of(x), minlength=4)
        rows = np.array([s.rows_seen[d] for d in DOMS])
        assert np.array_equal(rows, counted)  # bookkeeping matches what was actually drawn
        assert np.abs(rows - w * batch_size * step).max() < 1.0 + 1e-9, (step, rows, w * batch_size * step)
    share = counted / counted.sum()
    np.testing.assert_allclose(share, w, atol=0.01 if batch_size > 1 else 0.011)


def test_allocation_bound_on_random_mixtures():
    rng = np.random.default_rng(0)
    data = fake_data()
    for trial in range(40):
        w = rng.dirichlet(np.full(4, 0.3))
        w[w < 0.02] = 0
        m = Mixture.from_array(w / w.sum(), DOMS)
        B = int(rng.integers(1, 40))
        s = MixtureSampler(data, m, batch_size=B, context_length=8, seed=trial)
        for step in range(1, 61):
            alloc = s.allocation()
            assert alloc.sum() == B and (alloc >= 0).all()
            s._rows += alloc  # allocation alone, no token reads needed
            s.step += 1
            dev = np.abs(s._rows - m.as_array(DOMS) * B * step)
            assert dev.max() < 1.0 + 1e-9, (trial, step, dev)


def test_windows_are_contiguous_and_shifted():
    data = fake_data()
    s = MixtureSampler(data, MIX, batch_size=16, context_length=32, seed=1)
    x, y = s.next_batch()
    assert x.dtype == torch.long and y.dtype == torch.long
    assert x.shape == y.shape == (16, 32)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y[:, -1] - x[:, -1], torch.ones(16, dtype=torch.long))  # consecutive shard tokens
    assert (torch.diff(x, dim=1) == 1).all()
    # Windows lie inside the shard: last target position < shard length.
    dom = domain_of(x)
    pos = y[:, -1].numpy() - dom * SPAN
    assert (pos < np.array([5_000, 6_000, 7_000, 8_000])[dom]).all()


def test_rows_are_shuffled_across_domains():
    s = MixtureSampler(fake_data(), Mixture({"a": 0.5, "b": 0.5}, domains=DOMS), 64, 8, seed=0)
    dom = domain_of(s.next_batch()[0])
    assert (dom == 0).sum() == 32
    assert not (np.all(dom[:32] == 0) or np.all(dom[:32] == 1))  # not in domain blocks


def test_deterministic_for_a_seed():
    data = fake_data()
    a = MixtureSampler(data, MIX, 8, 16, seed=3)
    b = MixtureSampler(data, MIX, 8, 16, seed=3)
    c = MixtureSampler(data, MIX, 8, 16, seed=4)
    for _ in range(5):
        xa, ya = a.next_batch()
        xb, yb = b.next_batch()
        xc, _ = c.next_batch()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(xa, xc)


def test_state_dict_resumes_the_exact_sequence():
    data = fake_data()
    a = MixtureSampler(data, MIX, 8, 16, seed=3)
    for _ in range(3):
        a.next_batch()
    state = a.state_dict()
    expected = [a.next_batch()[0] for _ in range(3)]
    b = MixtureSampler(data, MIX, 8, 16, seed=99)
    b.load_state_dict(state)
    assert all(torch.equal(e, b.next_batch()[0]) for e in expected)
    assert b.rows_seen == a.rows_seen


def test_zero_weight_domain_never_touched():
    data = fake_data(n_tokens=(5_000, 6_000, 3, 8_000), untouchable=("c",))  # c: too short AND unreadable
    m = Mixture({"a": 0.2, "b": 0.3, "d": 0.5}, domains=DOMS)
    s = MixtureSampler(data, m, 10, 16, seed=0)
    seen = np.zeros(4, dtype=int)
    batches = iter(s)
    for _ in range(100):
        next(batches)
    for _ in range(20):
        seen += np.bincount(domain_of(s.next_batch()[0]), minlength=4)
    assert seen[2] == 0 and s.rows_seen["c"] == 0 and s.tokens_seen["c"] == 0
    assert s.tokens_seen["d"] == s.rows_seen["d"] * 16 == 0.5 * 10 * 120 * 16


def test_errors_are_clear():
    data = fake_data(n_tokens=(5_000, 6_000, 16, 8_000))
    with pytest.raises(ValueError, match=r"'c' train shard has 16 tokens.*context_length \+ 1 = 17"):
        MixtureSampler(data, MIX, 4, 16, seed=0)
    with pytest.raises(ValueError, match="'zz'"):
        MixtureSampler(fake_data(), Mixture({"a": 0.5, "zz": 0.5}), 4, 8, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        MixtureSampler(fake_data(), MIX, 0, 8, seed=0)
    with pytest.raises(ValueError, match="split"):
        MixtureSampler(fake_data(), MIX, 4, 8, seed=0, split="test")


def test_val_split_sampling():
    s = MixtureSampler(fake_data(), MIX, 8, 16, seed=0, split="val")
    x, _ = s.next_batch()
    assert ((x.numpy() % SPAN) >= 5_000).all()


def test_eval_batches_fixed_non_overlapping():
    data = fake_data(val_tokens=1_000)
    T = 32
    batches = list(eval_batches(data, "b", T, batch_size=8))
    again = list(eval_batches(data, "b", T, batch_size=8))
    assert all(torch.equal(p[0], q[0]) for p, q in zip(batches, again))
    xs = torch.cat([x for x, _ in batches])
    ys = torch.cat([y for _, y in batches])
    assert xs.shape == ((1_000 - 1) // T, T)
    assert [x.shape[0] for x, _ in batches] == [8, 8, 8, 7]
    flat = xs.reshape(-1).numpy() - (SPAN + 5_000)
    assert np.array_equal(flat, np.arange(xs.numel()))  # windows tile the shard in order, no overlap
    assert torch.equal(ys, xs + 1)
    limited = torch.cat([x for x, _ in eval_batches(data, "b", T, 8, max_tokens=100)])
    assert limited.shape == (3, T) and torch.equal(limited, xs[:3])


def test_eval_batches_errors():
    data = fake_data(val_tokens=10)
    with pytest.raises(ValueError, match="unknown domain 'zz'"):
        next(eval_batches(data, "zz", 8, 4))
    with pytest.raises(ValueError, match="'a' val shard has 10 tokens"):
        next(eval_batches(data, "a", 16, 4))


def test_on_real_tokens(token_data):
    m = Mixture(token_data.token_share)
    s = MixtureSampler(token_data, m, batch_size=32, context_length=128, seed=0)
    for _ in range(10):
        x, y = s.next_batch()
    assert x.shape == (32, 128) and int(x.max()) < token_data.vocab_size
    assert sum(s.rows_seen.values()) == 320
    x, y = next(eval_batches(token_data, token_data.domains[0], 128, 16))
    assert x.shape == (16, 128) and torch.equal(x[:, 1:], y[:, :-1])


@pytest.mark.parametrize("batch_size", [7, 32])
def test_changing_weights_carry_the_deficit_and_label_every_row(batch_size):
    # A policy's weights change every step: cumulative rows stay within one row of the summed targets.
    data = fake_data()
    s = MixtureSampler(data, MIX, batch_size=batch_size, context_length=16, seed=0, support=DOMS)
    rng = np.random.default_rng(1)
    target, w = np.zeros(4), MIX.as_array(DOMS)
    for step in range(200):
        if step:
            w = rng.dirichlet(np.full(4, 0.5 if step % 3 else 5.0))
            s.set_weights(w)
        x, _ = s.next_batch()
        target += w * batch_size
        assert np.array_equal(domain_of(x), s.last_domains)  # each row's label is its domain
        assert np.array_equal(np.bincount(s.last_domains, minlength=4), s.last_alloc)
        rows = np.array([s.rows_seen[d] for d in DOMS])
        assert np.abs(rows - target).max() < 1.0 + 1e-9, (step, rows, target)


def test_set_weights_errors_and_unchanged_weights_keep_the_sequence():
    data = fake_data()
    a = MixtureSampler(data, MIX, batch_size=8, context_length=16, seed=3)
    b = MixtureSampler(data, MIX, batch_size=8, context_length=16, seed=3)
    for _ in range(5):
        b.set_weights(MIX.as_array(DOMS))  # the same weights: nothing changes
        assert torch.equal(a.next_batch()[0], b.next_batch()[0])
    with pytest.raises(ValueError, match="summing to 1"):
        a.set_weights([0.5, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="support"):
        MixtureSampler(data, Mixture({"a": 1.0}, domains=DOMS), 8, 16, seed=0).set_weights([0.5, 0.5, 0, 0])
