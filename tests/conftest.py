"""Shared fixtures: the real built-in corpus and its token shards (built once, cached under data/),
and the papers' released runs in ../shared/peer-data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PEER_DATA = REPO.parent / "shared" / "peer-data"


@pytest.fixture(scope="session")
def peer_data() -> Path:
    if not PEER_DATA.is_dir():
        pytest.skip(f"peer data not found at {PEER_DATA} (only present beside the project checkout)")
    return PEER_DATA


@pytest.fixture(scope="session")
def builtin_corpus():
    """The real seven-domain corpus; built on first use (about a minute), reused after."""
    from mixkit import corpus

    return corpus.builtin(data_dir=REPO / "data", progress=False)


@pytest.fixture(scope="session")
def token_data(builtin_corpus):
    """Token shards of the built-in corpus at the default vocabulary."""
    from mixkit import tokens

    return tokens.prepare(builtin_corpus, progress=False)
