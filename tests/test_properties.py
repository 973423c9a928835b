"""Property-based checks (hypothesis) of the invariants the rest of mixkit leans on.

Every test runs a fixed, derandomized set of examples, so the suite gives the same verdict on every
machine and stays fast; a failure prints the shrunk counterexample.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mixkit.mixture import Mixture
from mixkit.optimize import project_to_simplex
from mixkit.proxy.sampler import MixtureSampler

DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=60, database=None,
                         suppress_health_check=[HealthCheck.too_slow])
SLOW_FITS = settings(DETERMINISTIC, max_examples=10)

NAMES = ("code", "docs", "reference", "books", "dialogue", "math", "legal", "web", "news")


@st.composite
def simplex_points(draw, min_domains: int = 1, max_domains: int = 7, allow_zeros: bool = True):
    """(domains, weights): distinct names and a point of the simplex (some weights exactly 0)."""
    n = draw(st.integers(min_domains, max_domains))
    domains = draw(st.permutations(NAMES).map(lambda p: list(p[:n])))
    lo = 0.0 if allow_zeros else 1e-3
    raw = draw(st.lists(st.one_of(st.just(lo), st.floats(lo, 1.0)) if allow_zeros else st.floats(lo, 1.0),
                        min_size=n, max_size=n))
    assume(sum(raw) > 1e-3)
    w = np.asarray(raw, dtype=float)
    return domains, w / w.sum()


# ---------------------------------------------------------------------- Mixture


@DETERMINISTIC
@given(simplex_points())
def test_mixture_round_trips(point):
    domains, w = point
    m = Mixture(dict(zip(domains, w)), domains=domains, name="p")
    assert m.domains == domains
    np.testing.assert_allclose(m.as_array(), w, rtol=0, atol=1e-12)
    assert abs(m.as_array().sum() - 1.0) < 1e-12
    assert (m.as_array() >= 0).all()

    back = Mixture.from_array(m.as_array(), domains)
    assert back == m and back.key() == m.key()
    np.testing.assert_allclose(back.as_array(), m.as_array(), rtol=0, atol=1e-15)

    again = Mixture(m.to_dict(), domains=domains)
    assert again.key() == m.key()
    assert list(m.to_dict()) == domains
    np.testing.assert_allclose(list(m.to_dict().values()), w, rtol=0, atol=1e-12)
    assert Mixture.from_dict({"weights": m.to_dict(), "name": "p"}).key() == m.key()

    key = m.key()
    assert isinstance(key, str) and len(key) == 12 and key == m.key()
    # Extra zero-weight domains do not change the mixture.
    wider = list(domains) + [d for d in NAMES if d not in domains]
    assert Mixture.from_array(m.as_array(wider), wider).key() == key


@DETERMINISTIC
@given(simplex_points(min_domains=2), st.randoms(use_true_random=False))
def test_mixture_key_ignores_domain_order(point, rnd):
    domains, w = point
    m = Mixture(dict(zip(domains, w)), domains=domains)
    order = list(range(len(domains)))
    rnd.shuffle(order)
    shuffled = [domains[i] for i in order]
    p = Mixture.from_array(w[order], shuffled, name="other name")
    assert p.key() == m.key()
    assert p == m
    np.testing.assert_allclose(p.as_array(domains), w, rtol=0, atol=1e-12)


@DETERMINISTIC
@given(simplex_points(min_domains=2), st.data())
def test_mixture_rejects_negative_weight(point, data):
    domains, w = point
    i = data.draw(st.integers(0, len(domains) - 1))
    bad = w.copy()
    bad[i] = -data.draw(st.floats(1e-4, 10.0))
    with pytest.raises(ValueError, match="negative") as err:
        Mixture(dict(zip(domains, bad)), domains=domains)
    assert repr(domains[i]) in str(err.value)


@DETERMINISTIC
@given(simplex_points(), st.data())
def test_mixture_rejects_non_finite_weight(point, data):
    domains, w = point
    i = data.draw(st.integers(0, len(domains) - 1))
    bad = w.copy()
    bad[i] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    with pytest.raises(ValueError, match="not finite") as err:
        Mixture(dict(zip(domains, bad)), domains=domains)
    assert repr(domains[i]) in str(err.value)
    with pytest.raises(ValueError, match="not finite"):
        Mixture.from_array(bad, domains)


@DETERMINISTIC
@given(simplex_points(allow_zeros=False),
       st.one_of(st.floats(0.0, 1 - 1e-4), st.floats(1 + 1e-4, 100.0)))
def test_mixture_rejects_weights_not_summing_to_one(point, scale):
    domains, w = point
    with pytest.raises(ValueError, match="sum") as err:
        Mixture.from_array(w * scale, domains)
    assert "not 1" in str(err.value)


# ---------------------------------------------------------------------- sampler allocation


def _fake_data(domains, tokens: int = 64):
    shard = {d: np.arange(tokens, dtype=np.uint16) + i for i, d in enumerate(domains)}
    return SimpleNamespace(domains=list(domains), train=shard, val=shard)


@DETERMINISTIC
@given(simplex_points(), st.integers(1, 48), st.integers(1, 25), st.integers(0, 2**16))
def test_sampler_rows_track_targets_within_one_row(point, batch_size, steps, seed):
    domains, w = point
    mix = Mixture(dict(zip(domains, w)), domains=domains)
    sampler = MixtureSampler(_fake_data(domains), mix, batch_size=batch_size, context_length=4, seed=seed)
    for t in range(1, steps + 1):
        x, y = sampler.next_batch()
        assert tuple(x.shape) == (batch_size, 4) == tuple(y.shape)
        rows = np.array([sampler.rows_seen[d] for d in domains])
        assert rows.sum() == batch_size * t
        target = w * batch_size * t
        assert np.all(np.abs(rows - target) <= 1.0 + 1e-9), (t, rows.tolist(), target.tolist())
        assert np.all(rows[w == 0] == 0)
    assert sampler.tokens_seen == {d: sampler.rows_seen[d] * 4 for d in domains}


# ---------------------------------------------------------------------- laws on noiseless data


def _fit_quietly(law, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return law.fit(X, y)


@SLOW_FITS
@given(E=st.floats(1.0, 5.0), ratio=st.floats(0.1, 3.0), b=st.floats(0.15, 1.2))
def test_step_law_recovers_noiseless_curves(E, ratio, b):
    from mixkit.laws import StepLaw

    S = np.geomspace(50, 5000, 12)
    B = ratio * E * S[0] ** b  # reducible loss at the first step is `ratio` times the floor
    truth = lambda s: E + B / np.asarray(s, dtype=float) ** b  # noqa: E731
    law = _fit_quietly(StepLaw(n_starts=8, random_state=0), S, truth(S))
    fitted = law.predict(S)
    assert np.all(np.isfinite(fitted)) and np.all(fitted > 0)
    assert np.max(np.abs(fitted / truth(S) - 1)) < 1e-3
    far = np.array([1e4, 5e4])
    pred = law.predict(far)
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)
    assert np.max(np.abs(pred / truth(far) - 1)) < 1e-2


@SLOW_FITS
@given(E=st.floats(1.0, 5.0), ratio=st.floats(0.1, 3.0), a=st.floats(0.1, 0.9))
def test_size_law_recovers_noiseless_sizes(E, ratio, a):
    from mixkit.laws import SizeLaw

    N = np.geomspace(1e6, 1e8, 7)
    A = ratio * E * N[0] ** a
    truth = lambda n: E + A / np.asarray(n, dtype=float) ** a  # noqa: E731
    law = _fit_quietly(SizeLaw(n_starts=8, random_state=0), N, truth(N))
    fitted = law.predict(N)
    assert np.all(np.isfinite(fitted)) and np.all(fitted > 0)
    assert np.max(np.abs(fitted / truth(N) - 1)) < 1e-3
    far = np.array([3e8, 1e9])
    pred = law.predict(far)
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)
    assert np.max(np.abs(pred / truth(far) - 1)) < 1e-2


@settings(DETERMINISTIC, max_examples=15)
@given(st.lists(st.floats(0.05, 20.0), min_size=4, max_size=12),
       st.lists(st.floats(1.0, 1e5), min_size=4, max_size=12))
def test_step_law_fit_never_raises_on_valid_data(losses, steps):
    """Any positive finite losses at distinct positive steps (even a rising, flat or wild curve)
    give a fit with finite positive predictions, never an exception."""
    from mixkit.laws import StepLaw

    n = min(len(losses), len(steps))
    S = np.unique(np.asarray(steps[:n]))
    assume(len(S) >= 4)
    y = np.asarray(losses[: len(S)])
    law = _fit_quietly(StepLaw(n_starts=4, random_state=0), S, y)
    pred = law.predict(np.concatenate([S, [2 * S.max()]]))
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)


# ---------------------------------------------------------------------- simplex projection


@st.composite
def boxes(draw):
    """(v, lo, hi): a vector and per-coordinate bounds that admit at least one mixture."""
    d = draw(st.integers(1, 8))
    v = np.asarray(draw(st.lists(st.floats(-10.0, 10.0), min_size=d, max_size=d)))
    if draw(st.booleans()):
        return v, None, None
    lo = np.asarray(draw(st.lists(st.floats(0.0, 1.0), min_size=d, max_size=d)))
    lo = lo * draw(st.floats(0.0, 1.0)) / max(lo.sum(), 1.0)  # sum(lo) <= 1
    width = np.asarray(draw(st.lists(st.floats(0.0, 1.0), min_size=d, max_size=d)))
    hi = np.minimum(lo + width, 1.0)
    assume(hi.sum() >= 1.0)
    return v, lo, hi


@DETERMINISTIC
@given(boxes())
def test_project_to_simplex_lands_on_the_simplex_within_bounds(box):
    v, lo, hi = box
    w = project_to_simplex(v, lo, hi)
    lo_ = np.zeros_like(v) if lo is None else lo
    hi_ = np.ones_like(v) if hi is None else hi
    assert w.shape == v.shape
    assert np.all(np.isfinite(w))
    assert abs(w.sum() - 1.0) < 1e-9
    assert np.all(w >= lo_ - 1e-12) and np.all(w <= hi_ + 1e-12)
    # A projection is idempotent, and a Mixture accepts it as is.
    np.testing.assert_allclose(project_to_simplex(w, lo, hi), w, rtol=0, atol=1e-9)
    Mixture.from_array(w, [f"d{i}" for i in range(len(w))])


@DETERMINISTIC
@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**16))
def test_project_to_simplex_rows_are_independent(d, n, seed):
    V = np.random.default_rng(seed).normal(0, 3, size=(n, d))
    W = project_to_simplex(V)
    assert W.shape == (n, d)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    assert np.all(W >= 0) and np.all(W <= 1)
    for i in range(n):
        np.testing.assert_allclose(project_to_simplex(V[i]), W[i], rtol=0, atol=1e-12)
    # The projection is the nearest simplex point: no grid point of the simplex is closer.
    if d <= 3:
        from mixkit.mixture import grid

        pts = np.array([m.as_array() for m in grid([f"d{i}" for i in range(d)], 20)])
        for i in range(n):
            best = np.min(np.linalg.norm(pts - V[i], axis=1))
            assert np.linalg.norm(W[i] - V[i]) <= best + 1e-9
