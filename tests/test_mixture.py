"""Mixture validation and the mixture designs (uniform, natural, grid, RegMix Dirichlet)."""

from __future__ import annotations

import hashlib
import itertools
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixkit import mixture
from mixkit.mixture import Mixture

DOMS = ["books", "code", "legal", "math"]


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "weights, domains, match",
    [
        ({"code": 1.2, "books": -0.2}, None, r"'books' is negative: -0\.2"),
        ({"code": float("nan"), "books": 1.0}, None, r"'code' is not finite: nan"),
        ({"code": float("inf"), "books": 0.0}, None, r"'code' is not finite: inf"),
        ({"code": -float("inf"), "books": 1.0}, None, r"'code' is not finite: -inf"),
        ({"code": 0.5, "books": 0.4}, None, r"sum to 0\.9, not 1"),
        ({"code": 0.7, "books": 0.4}, None, r"sum to 1\.1, not 1"),
        ({"code": 0.0, "books": 0.0}, None, r"sum to 0, not 1"),
        ({"code": 0.5, "chess": 0.5}, DOMS, r"unknown domain 'chess'"),
        ({}, None, "empty"),
        ({}, DOMS, "empty"),
        ({"code": 1.0}, [], "domains is empty"),
        ({"code": 1.0}, ["code", "code"], "'code' is listed twice"),
        ({"code": "lots"}, None, r"'code' is not a number: 'lots'"),
        ({"code": None}, None, r"'code' is not a number: None"),
        ({"": 1.0}, None, "non-empty strings"),
    ],
)
def test_every_validation_error_names_the_problem(weights, domains, match):
    with pytest.raises(ValueError, match=match):
        Mixture(weights, domains=domains)


def test_type_errors():
    with pytest.raises(TypeError, match="mapping"):
        Mixture([0.5, 0.5])
    with pytest.raises(TypeError, match="string"):
        Mixture({"a": 1.0}, domains="abc")


def test_missing_domains_get_zero_and_order_follows_domains():
    m = Mixture({"math": 0.25, "code": 0.75}, domains=DOMS)
    assert m.domains == DOMS
    assert m.weights == {"books": 0.0, "code": 0.75, "legal": 0.0, "math": 0.25}
    assert list(m.weights) == DOMS
    assert m.as_array().tolist() == [0.0, 0.75, 0.0, 0.25]
    assert m.as_array(["math", "code"]).tolist() == [0.25, 0.75]
    assert m.as_array(["math", "code", "extra"]).tolist() == [0.25, 0.75, 0.0]
    with pytest.raises(ValueError, match="code"):
        m.as_array(["math", "books"])  # would drop the 0.75 of code
    assert m["code"] == 0.75
    with pytest.raises(KeyError, match="chess"):
        m["chess"]


def test_tolerance_renormalizes_and_clips_float_noise():
    m = Mixture({"a": 0.5 + 4e-7, "b": 0.5, "c": -1e-17})
    assert math.isclose(sum(m.weights.values()), 1.0, abs_tol=1e-15)
    assert m["c"] == 0.0
    with pytest.raises(ValueError, match="sum"):
        Mixture({"a": 0.5 + 4e-7, "b": 0.5}, tol=1e-9)


def test_immutable():
    m = Mixture({"a": 0.5, "b": 0.5}, name="half")
    with pytest.raises(AttributeError, match="immutable"):
        m.name = "other"
    with pytest.raises(AttributeError):
        m._values = np.ones(2)
    w = m.weights
    w["a"] = 0.9
    assert m["a"] == 0.5
    arr = m.as_array()
    arr[0] = 0.9
    assert m["a"] == 0.5


def test_key_repr_dict_pickle():
    m = Mixture({"code": 0.75, "math": 0.25}, domains=DOMS, name="codey")
    same = Mixture({"math": 0.25, "code": 0.75})  # other order, no zero domains, no name
    assert m.key() == same.key() and m == same and hash(m) == hash(same)
    assert len(m.key()) == 12 and int(m.key(), 16) >= 0
    assert m.key() != Mixture({"math": 0.26, "code": 0.74}).key()
    assert repr(m) == "Mixture('codey': books=0.000, code=0.750, legal=0.000, math=0.250)"
    assert m.to_dict() == {"books": 0.0, "code": 0.75, "legal": 0.0, "math": 0.25}
    assert Mixture(m.to_dict()) == m
    assert Mixture.from_dict({"weights": m.to_dict(), "name": "x"}).name == "x"
    back = pickle.loads(pickle.dumps(m))
    assert back == m and back.name == "codey" and back.domains == DOMS


def test_key_is_a_fixed_function_of_the_weights():
    # A regression value: run stores use the key as a directory name, so it must not drift.
    assert Mixture({"a": 0.5, "b": 0.5}).key() == Mixture({"b": 0.5, "a": 0.5, "c": 0.0}).key()
    assert Mixture({"a": 0.5, "b": 0.5}).key() == hashlib.sha256(b"a=0.500000;b=0.500000").hexdigest()[:12]


def test_from_array_length_mismatch():
    with pytest.raises(ValueError, match="3 weights but 2 domains"):
        Mixture.from_array([0.2, 0.3, 0.5], ["a", "b"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=9))
def test_property_simplex_points_round_trip(raw):
    arr = np.asarray(raw, dtype=float)
    if arr.sum() <= 0:
        arr = np.ones_like(arr)
    arr = arr / arr.sum()
    doms = [f"d{i}" for i in range(arr.size)]
    m = Mixture.from_array(arr, doms)
    np.testing.assert_allclose(m.as_array(doms), arr, rtol=1e-12, atol=1e-15)
    assert abs(m.as_array().sum() - 1) < 1e-12
    assert (m.as_array() >= 0).all()
    assert Mixture(m.to_dict(), domains=doms) == m
    rev = doms[::-1]
    assert Mixture.from_array(m.as_array(rev), rev).key() == m.key()  # key ignores domain order


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=10), min_size=2, max_size=6), st.floats(0.02, 0.5))
def test_property_off_simplex_rejected(raw, off):
    arr = np.asarray(raw) / np.sum(raw) * (1 + off)
    with pytest.raises(ValueError, match="sum to"):
        Mixture.from_array(arr, [f"d{i}" for i in range(arr.size)])


# ---------------------------------------------------------------------- designs


def test_uniform_and_natural():
    (u,) = mixture.uniform(DOMS)
    assert u.as_array().tolist() == [0.25] * 4 and u.name == "uniform"
    (n,) = mixture.natural({"code": 300, "books": 100, "math": 0})
    assert n.weights == {"code": 0.75, "books": 0.25, "math": 0.0}
    with pytest.raises(ValueError, match="'math'"):
        mixture.natural({"code": 3, "math": -1})
    with pytest.raises(ValueError, match="sum to 0"):
        mixture.natural({"code": 0})
    with pytest.raises(ValueError, match="listed twice"):
        mixture.uniform(["a", "a"])


@pytest.mark.parametrize("d, k", [(1, 3), (2, 1), (2, 10), (3, 4), (4, 5), (7, 4)])
def test_grid_count_and_points(d, k):
    doms = [f"d{i}" for i in range(d)]
    pts = mixture.grid(doms, k)
    assert len(pts) == math.comb(k + d - 1, d - 1)
    arrs = np.array([m.as_array() for m in pts])
    np.testing.assert_allclose(arrs * k, np.round(arrs * k), atol=1e-9)  # multiples of 1/k
    assert len({m.key() for m in pts}) == len(pts)
    assert {tuple(r) for r in np.round(arrs * k).astype(int)} == {
        c for c in itertools.product(range(k + 1), repeat=d) if sum(c) == k
    }


def test_grid_errors():
    with pytest.raises(ValueError, match="positive integer"):
        mixture.grid(DOMS, 0)
    with pytest.raises(ValueError, match="max_points"):
        mixture.grid([f"d{i}" for i in range(10)], 40)


def test_dirichlet_seeded_distinct_and_named():
    a = mixture.dirichlet(DOMS, 20, rng=0)
    b = mixture.dirichlet(DOMS, 20, rng=0)
    c = mixture.dirichlet(DOMS, 20, rng=1)
    assert [m.key() for m in a] == [m.key() for m in b]
    assert [m.key() for m in a] != [m.key() for m in c]
    assert len(a) == 20 and all(m.domains == DOMS for m in a)
    rounded = {tuple(np.round(m.as_array(), 3)) for m in a}
    assert len(rounded) == 20
    assert [m.name for m in a[:2]] == ["dirichlet-0", "dirichlet-1"]
    g = np.random.default_rng(5)
    assert len(mixture.dirichlet(DOMS, 3, rng=g)) == 3  # a Generator works too


def test_dirichlet_dedup_exhausts_on_a_coarse_grid():
    # Two domains rounded to 1 decimal give at most 11 distinct mixtures.
    with pytest.raises(ValueError, match="found only 11 distinct"):
        mixture.dirichlet(["a", "b"], 12, dedup_decimals=1, rng=0, max_tries=20_000)
    assert len(mixture.dirichlet(["a", "b"], 11, dedup_decimals=1, rng=0, max_tries=200_000)) == 11


def test_dirichlet_tiny_weights_zeroed():
    mixes = mixture.dirichlet(DOMS, 200, rng=0, min_weight=0.01)
    arr = np.array([m.as_array() for m in mixes])
    assert ((arr == 0) | (arr >= 0.01)).all()
    assert (arr == 0).any()  # strength down to 0.1 gives sparse mixtures
    np.testing.assert_allclose(arr.sum(axis=1), 1.0, atol=1e-12)


def test_dirichlet_follows_the_tempered_prior():
    prior = {"books": 0.81, "code": 0.09, "legal": 0.09, "math": 0.01}
    # Without zeroing and dedup (both drop near-vertex draws) the mean is the tempered prior.
    raw = dict(min_weight=0.0, dedup_decimals=12)
    mixes = mixture.dirichlet(DOMS, 1000, prior=prior, rng=0, temperature=0.5, **raw)
    mean = np.array([m.as_array() for m in mixes]).mean(axis=0)
    p = np.sqrt(np.array([0.81, 0.09, 0.09, 0.01]))
    np.testing.assert_allclose(mean, p / p.sum(), atol=0.03)
    flat = mixture.dirichlet(DOMS, 1000, prior=prior, rng=0, temperature=0.0, **raw)
    np.testing.assert_allclose(np.array([m.as_array() for m in flat]).mean(axis=0), 0.25, atol=0.03)
    # With the defaults the prior still orders the domains.
    default = np.array([m.as_array() for m in mixture.dirichlet(DOMS, 300, prior=prior, rng=0)]).mean(axis=0)
    assert default[0] > default[1] > default[3] and default[0] > default[2] > default[3]
    # A domain without prior mass is never sampled.
    zero = mixture.dirichlet(DOMS, 50, prior=[1, 1, 0, 1], rng=0)
    assert all(m["legal"] == 0 for m in zero)


def test_dirichlet_repetition_caps():
    avail = {"books": 1_000, "code": 5_000, "legal": 100_000, "math": 100_000}
    budget = 10_000
    mixes = mixture.dirichlet(DOMS, 40, rng=0, available_tokens=avail, budget_tokens=budget, max_epochs=2.0)
    arr = np.array([m.as_array() for m in mixes])
    caps = 2.0 * np.array([1_000, 5_000, 100_000, 100_000]) / budget
    assert (arr <= caps + 1e-12).all()
    assert arr[:, 0].max() > 0.1  # the cap binds but the domain is still used
    with pytest.raises(ValueError, match="caps sum to"):
        mixture.dirichlet(DOMS, 5, available_tokens=avail, budget_tokens=10**8, max_epochs=1.0)
    with pytest.raises(ValueError, match="both available_tokens and budget_tokens"):
        mixture.dirichlet(DOMS, 5, available_tokens=avail)
    with pytest.raises(ValueError, match="unknown domain 'chess'"):
        mixture.dirichlet(DOMS, 5, available_tokens={**avail, "chess": 1}, budget_tokens=10)


def test_dirichlet_argument_errors():
    with pytest.raises(ValueError, match="n must be"):
        mixture.dirichlet(DOMS, 0)
    with pytest.raises(ValueError, match="strength"):
        mixture.dirichlet(DOMS, 3, strength=(0, 1))
    with pytest.raises(ValueError, match="prior for domain 'code'"):
        mixture.dirichlet(DOMS, 3, prior=[1, -1, 1, 1])
    with pytest.raises(ValueError, match="prior has 3 values"):
        mixture.dirichlet(DOMS, 3, prior=[1, 1, 1])
    with pytest.raises(ValueError, match="found only"):
        mixture.dirichlet(DOMS, 50, max_tries=10)
