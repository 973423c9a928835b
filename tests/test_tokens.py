"""Tokenizer and token shards: round trip, shard sizes, the fixed validation split, caching."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mixkit import tokens

STDLIB = Path(ast.__file__).parent


def _code_docs() -> list[str]:
    """Real Python source: each top-level function of a few stdlib modules is one document."""
    docs = []
    for name in ["textwrap.py", "fnmatch.py", "shlex.py", "colorsys.py", "bisect.py", "heapq.py"]:
        src = (STDLIB / name).read_text(encoding="utf-8")
        lines = src.splitlines(keepends=True)
        for node in ast.parse(src).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                docs.append("".join(lines[node.lineno - 1: node.end_lineno]))
    return docs


def _prose_docs() -> list[str]:
    """Real English prose: docstrings of stdlib functions and classes."""
    docs = []
    for name in ["argparse.py", "shutil.py", "tempfile.py", "pathlib/__init__.py", "pathlib.py", "zipfile/__init__.py"]:
        path = STDLIB / name
        if not path.is_file():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 40:
                    docs.append(doc)
    return sorted(set(docs))


def _unicode_docs() -> list[str]:
    """Multilingual lines: characters with their Unicode names, in scripts of several blocks."""
    blocks = [(0x391, 0x3A9), (0x410, 0x44F), (0x5D0, 0x5EA), (0x3041, 0x3093), (0x4E00, 0x4E40),
              (0x1F600, 0x1F64F), (0xE0, 0xFF), (0x2200, 0x22FF)]
    docs = []
    for lo, hi in blocks:
        for start in range(lo, hi, 12):
            chars = [chr(c) for c in range(start, min(start + 12, hi + 1)) if unicodedata.name(chr(c), "")]
            docs.append("\n".join(f"{c} — {unicodedata.name(c).lower()} (U+{ord(c):04X})" for c in chars) + "\n")
    docs.append("naïve café, Straße, ﬁ ligature, e\u0301 combining, 🇺🇳 flag, \t tab\r\nCRLF and a literal <|endoftext|>.")
    return docs


@dataclass
class MiniCorpus:
    """Stand-in for mixkit.corpus.Corpus: the attributes tokens.prepare relies on."""

    name: str
    root: Path
    docs: dict

    @property
    def domains(self) -> list[str]:
        return sorted(self.docs)

    def documents(self, domain):
        yield from self.docs[domain]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.docs, sort_keys=True).encode()).hexdigest()


def _mini(tmp: Path, name="mini", reverse=False) -> MiniCorpus:
    docs = {"code": _code_docs(), "prose": _prose_docs(), "unicode": _unicode_docs()}
    if reverse:
        docs = {d: list(reversed(v)) for d, v in docs.items()}
    root = tmp / "corpus" / name
    root.mkdir(parents=True, exist_ok=True)
    return MiniCorpus(name, root, docs)


VOCAB = 600
VAL = 3_000


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return _mini(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def mini_data(mini):
    return tokens.prepare(mini, vocab_size=VOCAB, val_tokens=VAL, progress=False, tokenizer_sample_bytes=40_000)


def _decoded_docs(data, domain, split):
    tok = data.tokenizer()
    return [tok.decode(ids.tolist(), skip_special_tokens=False) for ids in tokens.iter_documents(data, domain, split)]


def test_stand_in_corpus_is_big_enough(mini):
    sizes = {d: sum(len(t.encode()) for t in mini.documents(d)) for d in mini.domains}
    assert all(s > 20_000 for s in sizes.values()), sizes


def test_layout_and_default_out_dir(mini, mini_data):
    assert mini_data.root == (mini.root.parents[1] / "tokens" / f"mini-v{VOCAB}").resolve()
    names = {p.name for p in mini_data.root.iterdir()}
    assert names == {"tokenizer.json", "manifest.json"} | {f"{d}.{s}.bin" for d in mini.domains for s in ("train", "val")}
    assert not [p for p in mini_data.root.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    assert mini_data.domains == ["code", "prose", "unicode"]
    assert mini_data.vocab_size == VOCAB
    assert mini_data.tokenizer().get_vocab_size() == VOCAB
    assert mini_data.eot_id == mini_data.tokenizer().token_to_id("<|endoftext|>")


def test_round_trip_on_real_text_and_unicode(mini, mini_data):
    tok = mini_data.tokenizer()
    samples = [t for d in mini.domains for t in list(mini.documents(d))[:15]]
    samples += ["", " ", "  leading spaces", "tabs\tand\nnewlines\r\n", "日本語のテキスト", "emoji 🎉🧪👩🏽‍🔬",
                "Ελληνικά и русский", "e\u0301\u0301", "\x00\x01 control", "a <|endoftext|> b"]
    for text in samples:
        ids = tok.encode(text).ids
        assert tok.decode(ids, skip_special_tokens=False) == text
    # A literal end-of-text string in a document is text, not a document boundary.
    assert mini_data.eot_id not in tok.encode("a <|endoftext|> b").ids


def test_shard_sizes_match_manifest_and_encoding(mini, mini_data):
    manifest = json.loads((mini_data.root / "manifest.json").read_text())
    tok = mini_data.tokenizer()
    for d in mini.domains:
        m = manifest["domains"][d]
        assert (mini_data.root / f"{d}.train.bin").stat().st_size == 2 * m["train_tokens"]
        assert (mini_data.root / f"{d}.val.bin").stat().st_size == 2 * m["val_tokens"]
        assert mini_data.token_counts[d] == m["train_tokens"] and mini_data.val_counts[d] == m["val_tokens"]
        docs = list(mini.documents(d))
        expected = sum(len(tok.encode(t).ids) + 1 for t in docs)  # +1: end-of-text after each document
        assert m["train_tokens"] + m["val_tokens"] == expected
        assert m["documents"] == len(docs)
        assert m["bytes"] == sum(len(t.encode()) for t in docs)
        # Every document ends with exactly one end-of-text token.
        n_eot = int((mini_data.train[d] == mini_data.eot_id).sum() + (mini_data.val[d] == mini_data.eot_id).sum())
        assert n_eot == len(docs)
        assert mini_data.train[d].dtype == np.uint16 and isinstance(mini_data.train[d], np.memmap)
    assert abs(sum(mini_data.token_share.values()) - 1) < 1e-12
    assert manifest["fingerprint"] == mini_data.fingerprint and len(mini_data.fingerprint) == 64


def test_info_from_load_alone(mini, mini_data):
    info = tokens.load(mini_data.root).info()
    assert info["vocab_size"] == VOCAB
    assert set(info["domains"]) == set(mini.domains)
    for d, row in info["domains"].items():
        assert set(row) == {"bytes", "documents", "train_tokens", "val_tokens"}
        assert row["documents"] == len(list(mini.documents(d)))
        assert row["train_tokens"] == mini_data.token_counts[d] > 0
    json.dumps(info)


def test_val_split_whole_documents_disjoint_and_capped(mini, mini_data):
    for d in mini.domains:
        docs = list(mini.documents(d))
        val_docs = _decoded_docs(mini_data, d, "val")
        train_docs = _decoded_docs(mini_data, d, "train")
        assert val_docs, f"{d} has no validation documents"
        assert set(val_docs) <= set(docs)  # whole documents, decoded exactly
        assert sorted(val_docs + train_docs) == sorted(docs)
        assert not set(val_docs) & set(train_docs)
        total = mini_data.token_counts[d] + mini_data.val_counts[d]
        target = min(VAL, int(0.1 * total))
        assert mini_data.val_counts[d] <= target
        assert mini_data.val_counts[d] >= 0.5 * target  # greedy fill gets close with small documents


def test_val_split_independent_of_order_and_seed(tmp_path, mini_data):
    other = _mini(tmp_path, reverse=True)
    data2 = tokens.prepare(other, vocab_size=VOCAB, val_tokens=VAL, seed=1, progress=False, tokenizer_sample_bytes=40_000)
    assert data2.fingerprint != mini_data.fingerprint  # different seed -> different tokenizer
    for d in mini_data.domains:
        assert sorted(_decoded_docs(data2, d, "val")) == sorted(_decoded_docs(mini_data, d, "val"))


def test_tokenizer_sample_balanced_and_seeded(mini):
    a = tokens._tokenizer_sample(mini, mini.domains, 15_000, seed=0, progress=False)
    b = tokens._tokenizer_sample(mini, mini.domains, 15_000, seed=0, progress=False)
    c = tokens._tokenizer_sample(mini, mini.domains, 15_000, seed=3, progress=False)
    sizes = [sum(len(t.encode()) for t in a[d]) for d in mini.domains]
    # Exactly the budget, except a cut inside a multi-byte character drops at most 3 bytes.
    assert all(15_000 - 3 <= s <= 15_000 for s in sizes), sizes
    assert a == b and a != c
    # More than the smallest domain: every domain contributes the smallest domain's size.
    smallest = min(sum(len(t.encode()) for t in mini.documents(d)) for d in mini.domains)
    big = tokens._tokenizer_sample(mini, mini.domains, 10**9, seed=0, progress=False)
    assert all(smallest - 3 <= sum(len(t.encode()) for t in big[d]) <= smallest for d in mini.domains)


def test_tokenizer_training_deterministic(mini):
    sample = tokens._tokenizer_sample(mini, mini.domains, 20_000, seed=0, progress=False)
    texts = [t for d in mini.domains for t in sample[d]]
    assert tokens.train_tokenizer(texts, 400).to_str() == tokens.train_tokenizer(texts, 400).to_str()


def test_prepare_second_call_is_a_no_op(mini, mini_data, monkeypatch):
    before = {p.name: p.stat().st_mtime_ns for p in mini_data.root.iterdir()}

    def boom(*a, **k):
        raise AssertionError("prepare retrained although the manifest matches")

    monkeypatch.setattr(tokens, "train_tokenizer", boom)
    again = tokens.prepare(mini, vocab_size=VOCAB, val_tokens=VAL, progress=False, tokenizer_sample_bytes=40_000)
    assert again.fingerprint == mini_data.fingerprint
    assert {p.name: p.stat().st_mtime_ns for p in again.root.iterdir()} == before


def test_changed_settings_or_damage_rebuild(tmp_path):
    corpus = _mini(tmp_path)
    kw = dict(vocab_size=300, progress=False, tokenizer_sample_bytes=10_000)
    first = tokens.prepare(corpus, val_tokens=1_000, **kw)
    second = tokens.prepare(corpus, val_tokens=2_000, **kw)
    assert second.root == first.root
    assert second.val_counts != first.val_counts and second.fingerprint != first.fingerprint
    # A damaged shard is detected on load and rebuilt by prepare.
    shard = second.root / "code.train.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(ValueError, match="code.train.bin"):
        tokens.load(second.root)
    third = tokens.prepare(corpus, val_tokens=2_000, **kw)
    assert third.fingerprint == second.fingerprint
    assert not [p for p in third.root.parent.iterdir() if p.name.startswith(".")]


def test_crash_leaves_nothing_behind(tmp_path, monkeypatch):
    corpus = _mini(tmp_path)

    def crash(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(tokens, "_encode_domain", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        tokens.prepare(corpus, vocab_size=300, progress=False, tokenizer_sample_bytes=10_000)
    tokens_dir = tmp_path / "tokens"
    # Neither a staging folder nor the parent folder the build created for itself stays behind.
    assert not tokens_dir.exists() or list(tokens_dir.iterdir()) == []


def test_token_folder_is_readable_by_others(tmp_path):
    """The staging folder becomes the token folder: it must not keep a private (0700/0600) mode."""
    old_umask = os.umask(0o022)
    try:
        data = tokens.prepare(_mini(tmp_path), vocab_size=300, progress=False, tokenizer_sample_bytes=10_000)
    finally:
        os.umask(old_umask)
    for path in (data.root, data.root / "manifest.json", data.root / "tokenizer.json", data.root / "code.train.bin"):
        assert path.stat().st_mode & 0o044 == 0o044, (path.name, oct(path.stat().st_mode))


def test_fingerprint_tracks_corpus(tmp_path, mini_data):
    corpus = _mini(tmp_path)
    corpus.docs["code"] = corpus.docs["code"][:-1]
    other = tokens.prepare(corpus, vocab_size=VOCAB, val_tokens=VAL, progress=False, tokenizer_sample_bytes=40_000)
    assert other.fingerprint != mini_data.fingerprint


@pytest.mark.parametrize("bad", [65_536, 100_000, 256, 0, 4096.0])
def test_vocab_size_errors(tmp_path, bad):
    tiny = MiniCorpus("tiny", tmp_path / "corpus" / "tiny", {"a": ["some text"]})
    with pytest.raises(ValueError, match="vocab_size"):
        tokens.prepare(tiny, vocab_size=bad, progress=False)
    assert not (tmp_path / "tokens").exists()


def test_vocab_size_error_mentions_uint16(tmp_path):
    tiny = MiniCorpus("tiny", tmp_path / "corpus" / "tiny", {"a": ["some text"]})
    with pytest.raises(ValueError, match="uint16"):
        tokens.prepare(tiny, vocab_size=70_000, progress=False)


def test_load_missing_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare"):
        tokens.load(tmp_path / "nope")


def test_pickle_reopens_memmaps(mini_data):
    clone = pickle.loads(pickle.dumps(mini_data))
    assert len(pickle.dumps(mini_data)) < 10_000  # the shards are not copied
    assert clone.fingerprint == mini_data.fingerprint
    assert np.array_equal(clone.train["code"], mini_data.train["code"])


def test_select_val_is_order_independent_and_bounded():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 400, size=300)
    keys = rng.integers(0, 2**63, size=300, dtype=np.uint64)
    val = tokens.select_val(lengths, keys, 5_000)
    assert 4_600 <= val.sum() <= 5_000
    assert set(np.unique(val[val > 0] == lengths[val > 0])) == {True}  # whole documents only
    perm = rng.permutation(300)
    assert np.array_equal(tokens.select_val(lengths[perm], keys[perm], 5_000), val[perm])
    assert tokens.select_val(lengths, keys, 0).sum() == 0
    # Every document longer than the target: the lowest-hash one gives `target` tokens.
    big = tokens.select_val(np.array([500, 600]), np.array([9, 3], dtype=np.uint64), 100)
    assert big.tolist() == [0, 100]


# ---------------------------------------------------------------------- the real corpus


def test_real_shards_match_manifest(token_data):
    manifest = json.loads((token_data.root / "manifest.json").read_text())
    assert token_data.vocab_size == 4096
    for d in token_data.domains:
        m = manifest["domains"][d]
        assert (token_data.root / f"{d}.train.bin").stat().st_size == 2 * m["train_tokens"]
        assert (token_data.root / f"{d}.val.bin").stat().st_size == 2 * m["val_tokens"]
        total = m["train_tokens"] + m["val_tokens"]
        assert 0 < m["val_tokens"] <= min(50_000, int(0.1 * total))
        assert int(token_data.train[d].max()) < token_data.vocab_size
    assert len(token_data.domains) == 7


def test_real_round_trip(builtin_corpus, token_data):
    tok = token_data.tokenizer()
    for d in builtin_corpus.domains:
        for i, text in enumerate(builtin_corpus.documents(d)):
            assert tok.decode(tok.encode(text).ids, skip_special_tokens=False) == text, (d, i)
            if i == 9:
                break


def test_real_val_split_is_whole_documents(builtin_corpus, token_data):
    tok = token_data.tokenizer()
    for d in token_data.domains:
        docs = set(builtin_corpus.documents(d))
        val_docs = [tok.decode(ids.tolist(), skip_special_tokens=False) for ids in tokens.iter_documents(token_data, d, "val")]
        assert len(val_docs) >= 5 and set(val_docs) <= docs, d
        n_eot = int((token_data.train[d] == token_data.eot_id).sum()) + len(val_docs)
        assert n_eot == token_data.info()["domains"][d]["documents"], d
