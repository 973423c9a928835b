"""BiMix's training-free mixtures from token entropy (mixkit.mixture.entropy)."""

from __future__ import annotations

import numpy as np
import pytest

from mixkit.mixture import Mixture, conditional_entropy, entropy_mixture, unigram_entropy


def test_entropies():
    assert unigram_entropy(np.array([1, 1, 2, 2])) == pytest.approx(np.log(2))
    # A deterministic cycle: the next token is known from the previous one.
    assert conditional_entropy(np.tile(np.arange(7), 100)) == pytest.approx(0.0, abs=1e-12)


def test_entropy_mixture():
    rng = np.random.default_rng(0)
    data = {
        "varied": rng.integers(0, 1000, 200_000).astype(np.uint16),
        "repetitive": np.tile(np.arange(40, dtype=np.uint16), 5000),
        "middle": rng.integers(0, 50, 200_000).astype(np.uint16),
    }
    mix, H = entropy_mixture(data, return_entropies=True)
    assert isinstance(mix, Mixture) and mix.name == "entropy-conditional"
    w = mix.weights
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["repetitive"] < w["middle"] < w["varied"]
    assert H["repetitive"] == pytest.approx(0.0, abs=1e-9)
    uni = entropy_mixture(data, kind="unigram", max_tokens=50_000)
    wu = uni.weights
    assert sum(wu.values()) == pytest.approx(1.0) and wu["varied"] > wu["middle"]
    soft = entropy_mixture({"x": 1.0, "y": 2.0}, normalize="softmax")
    ws = soft.weights
    assert ws["y"] == pytest.approx(np.e / (1 + np.e))
    with pytest.raises(ValueError, match="kind"):
        entropy_mixture(data, kind="joint")
