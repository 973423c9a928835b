"""Training-free mixtures from per-domain token entropy (BiMix, Ge et al. 2024).

BiMix finds that mixtures derived from domain entropy alone (conditional entropy of the next token
given the previous one did best) rival mixtures that need proxy training: a domain whose next token
is harder to predict gets more weight, a repetitive one less.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from mixkit.mixture.weights import Mixture


def _entropy_from_counts(counts: np.ndarray) -> float:
    c = counts[counts > 0].astype(float)
    if c.size == 0:
        raise ValueError("cannot compute an entropy from zero counts")
    p = c / c.sum()
    return float(-(p * np.log(p)).sum())


def unigram_entropy(tokens: np.ndarray) -> float:
    """Shannon entropy (nats) of the token distribution."""
    tokens = np.asarray(tokens)
    if tokens.size == 0:
        raise ValueError("no tokens")
    _, counts = np.unique(tokens, return_counts=True)
    return _entropy_from_counts(counts)


def conditional_entropy(tokens: np.ndarray) -> float:
    """H(next token | previous token) in nats, from the bigram counts of a token sequence.

    ``H(Y | X) = H(X, Y) - H(X)`` with X the first and Y the second token of each adjacent pair.
    """
    t = np.asarray(tokens).astype(np.int64).ravel()
    if t.size < 2:
        raise ValueError("need at least two tokens for bigram statistics")
    prev, nxt = t[:-1], t[1:]
    base = int(t.max()) + 1
    _, pair_counts = np.unique(prev * base + nxt, return_counts=True)
    _, prev_counts = np.unique(prev, return_counts=True)
    return _entropy_from_counts(pair_counts) - _entropy_from_counts(prev_counts)


def _bigram_conditional_entropy(counts: np.ndarray) -> float:
    counts = np.asarray(counts, dtype=float)
    return _entropy_from_counts(counts.ravel()) - _entropy_from_counts(counts.sum(axis=1))


def _sample_tokens(tokens: np.ndarray, max_tokens: int | None, gen: np.random.Generator, n_windows: int = 64) -> np.ndarray:
    """Up to max_tokens tokens as contiguous windows at random offsets (bigrams stay intact)."""
    n = len(tokens)
    if max_tokens is None or n <= max_tokens:
        return np.asarray(tokens)
    n_windows = max(1, min(n_windows, max_tokens // 2))
    w = max_tokens // n_windows
    starts = np.sort(gen.choice(n - w + 1, size=n_windows, replace=False))
    # Pairs across window seams are rare (one per window) and only add a little noise.
    return np.concatenate([np.asarray(tokens[s:s + w]) for s in starts])


def domain_entropy(tokens, kind: str = "conditional", max_tokens: int | None = 2_000_000, rng=0) -> float:
    """Entropy of one domain's tokens (``kind`` "conditional" or "unigram"), on a token budget."""
    gen = np.random.default_rng(rng)
    sample = _sample_tokens(np.asarray(tokens), max_tokens, gen)
    if kind == "conditional":
        return conditional_entropy(sample)
    if kind == "unigram":
        return unigram_entropy(sample)
    raise ValueError(f"kind must be 'conditional' or 'unigram', got {kind!r}")


def entropy_mixture(
    token_data_or_counts: Any,
    kind: str = "conditional",
    normalize: str = "proportional",
    temperature: float = 1.0,
    max_tokens: int | None = 2_000_000,
    domains: Sequence[str] | None = None,
    rng: int | np.random.Generator | None = 0,
    return_entropies: bool = False,
):
    """Training-free mixture from per-domain token entropy (see the module docstring).

    ``token_data_or_counts`` is one of:

    * a :class:`mixkit.tokens.TokenData` (its uint16 train shards are read);
    * {domain: 1-D token array};
    * {domain: 2-D bigram count matrix} (rows: previous token; conditional entropy only);
    * {domain: precomputed entropy (float)}.

    ``normalize``: "proportional" (``w_i = H_i / sum_j H_j``, default) or "softmax"
    (``w_i ∝ exp(H_i / temperature)``), the latter sharpens differences; BiMix normalizes the
    entropies into proportions, and the exact normalization is kept selectable here.
    Token arrays longer than ``max_tokens`` are sampled as random contiguous windows (seed ``rng``).

    Returns a :class:`Mixture`; with ``return_entropies`` a tuple (mixture, {domain: entropy}).
    """
    if kind not in ("conditional", "unigram"):
        raise ValueError(f"kind must be 'conditional' or 'unigram', got {kind!r}")
    gen = np.random.default_rng(rng)
    source = _entropy_source(token_data_or_counts)
    if domains is None:
        domains = list(source)
    missing = [d for d in domains if d not in source]
    if missing:
        raise ValueError(f"no data for domain(s) {missing}")
    if len(domains) < 1:
        raise ValueError("no domains")
    entropies = {d: _source_entropy(d, source[d], kind, max_tokens, gen) for d in domains}
    w = _entropy_weights(np.array([entropies[d] for d in domains]), normalize, temperature)
    result = Mixture({d: float(x) for d, x in zip(domains, w)}, domains=list(domains), name=f"entropy-{kind}")
    return (result, entropies) if return_entropies else result


def _entropy_source(token_data_or_counts) -> dict:
    if hasattr(token_data_or_counts, "train") and hasattr(token_data_or_counts, "domains"):
        return {d: token_data_or_counts.train[d] for d in token_data_or_counts.domains}
    if isinstance(token_data_or_counts, Mapping):
        return dict(token_data_or_counts)
    raise ValueError("entropy_mixture needs a TokenData or a {domain: tokens | bigram counts | entropy} mapping")


def _source_entropy(domain: str, v, kind: str, max_tokens: int | None, gen: np.random.Generator) -> float:
    """One domain's entropy from its tokens, bigram counts or a precomputed value."""
    if isinstance(v, (int, float, np.floating, np.integer)):
        h = float(v)
    else:
        arr = np.asarray(v) if not isinstance(v, np.ndarray) else v
        if arr.ndim == 2:
            if kind != "conditional":
                raise ValueError(f"domain {domain!r}: a bigram count matrix gives the conditional entropy only")
            h = _bigram_conditional_entropy(arr)
        elif arr.ndim == 1:
            h = domain_entropy(arr, kind=kind, max_tokens=max_tokens, rng=gen)
        else:
            raise ValueError(f"domain {domain!r}: expected tokens (1-D), bigram counts (2-D) or an entropy, "
                             f"got shape {arr.shape}")
    if not np.isfinite(h) or h < 0:
        raise ValueError(f"domain {domain!r}: entropy {h} is not a finite non-negative number")
    return h


def _entropy_weights(H: np.ndarray, normalize: str, temperature: float) -> np.ndarray:
    if normalize == "proportional":
        if H.sum() <= 0:
            raise ValueError("all domain entropies are zero; cannot normalize them into weights")
        return H / H.sum()
    if normalize == "softmax":
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        z = H / temperature
        w = np.exp(z - z.max())
        return w / w.sum()
    raise ValueError(f"normalize must be 'proportional' or 'softmax', got {normalize!r}")
