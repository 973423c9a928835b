"""Byte-level BPE tokenizer and per-domain uint16 token shards with a fixed validation split.

Layout of a token folder (default `<data_dir>/tokens/<corpus>-v<vocab>/`):

    tokenizer.json                HF `tokenizers` file; id `eot_id` ends every document
    <domain>.train.bin            uint16 little-endian token ids, documents back to back
    <domain>.val.bin              same, for the held-out documents
    manifest.json                 settings, per-domain counts and the data fingerprint

The validation documents are picked by a hash of their text, so the split depends only on the
corpus content: every run, seed and machine sees the same validation tokens, and duplicate
documents always land on the same side (no train/val leakage through copies).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from mixkit.paths import atomic_write_text, staged_dir
from mixkit.progress import progress_bar

EOT = "<|endoftext|>"
FORMAT = 1
# Shards are raw little-endian uint16 so memmaps read the same on any machine.
DTYPE = np.dtype("<u2")
MAX_VOCAB = int(np.iinfo(np.uint16).max)  # 65535: ids 0..65534 all fit, with room to spare
MIN_VOCAB = 256 + 1  # every byte plus the end-of-text token

_ENCODE_CHUNK_BYTES = 1 << 20
_ENCODE_CHUNK_DOCS = 2048


@dataclass
class TokenData:
    """Token shards of one corpus: memmapped `train`/`val` arrays per domain plus the tokenizer."""

    root: Path
    domains: list[str]
    vocab_size: int
    eot_id: int
    fingerprint: str
    train: dict[str, np.ndarray] = field(repr=False)
    val: dict[str, np.ndarray] = field(repr=False)
    manifest: dict = field(default_factory=dict, repr=False)

    @property
    def token_counts(self) -> dict[str, int]:
        """Training tokens per domain."""
        return {d: int(self.train[d].shape[0]) for d in self.domains}

    @property
    def token_share(self) -> dict[str, float]:
        """Each domain's share of the training tokens: the natural mixture (RegMix's prior)."""
        counts = self.token_counts
        total = sum(counts.values())
        return {d: counts[d] / total for d in self.domains}

    @property
    def val_counts(self) -> dict[str, int]:
        return {d: int(self.val[d].shape[0]) for d in self.domains}

    def tokenizer(self):
        """A fresh `tokenizers.Tokenizer` that treats a literal "<|endoftext|>" in text as text."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.root / "tokenizer.json"))
        # Not stored in tokenizer.json, so set it on every load.
        tok.encode_special_tokens = True
        return tok

    def info(self) -> dict:
        """Summary for `mixkit corpus info --json`."""
        doms = self.manifest.get("domains", {})
        return {
            "domains": {
                d: {
                    "bytes": int(doms.get(d, {}).get("bytes", 0)),
                    "documents": int(doms.get(d, {}).get("documents", 0)),
                    "train_tokens": int(self.train[d].shape[0]),
                    "val_tokens": int(self.val[d].shape[0]),
                }
                for d in self.domains
            },
            "vocab_size": int(self.vocab_size),
        }

    def __reduce__(self):
        # Worker processes reopen the memmaps instead of receiving a pickled copy of every shard.
        return (load, (self.root,))


def default_out_dir(corpus, vocab_size: int) -> Path:
    """`<data_dir>/tokens/<corpus name>-v<vocab>`, beside the corpus folder `<data_dir>/corpus/<name>`."""
    return Path(corpus.root).parents[1] / "tokens" / f"{corpus.name}-v{vocab_size}"


def prepare(
    corpus,
    vocab_size: int = 4096,
    out_dir: str | os.PathLike | None = None,
    val_tokens: int = 50_000,
    seed: int = 0,
    progress: bool = True,
    *,
    tokenizer_sample_bytes: int = 2_000_000,
    max_val_fraction: float = 0.1,
) -> TokenData:
    """Train the tokenizer and write the token shards of `corpus`, or reuse them when up to date.

    `corpus` is anything with `name`, `root`, `domains`, `documents(domain)` and `fingerprint`
    (a `mixkit.corpus.Corpus`). The tokenizer is trained on the same number of bytes from every
    domain (at most `tokenizer_sample_bytes`, fewer when a domain is smaller), documents chosen by
    a seeded hash. Each domain holds out whole documents, chosen by a hash of their text, for
    about `val_tokens` validation tokens (at most `max_val_fraction` of the domain).
    """
    _check_vocab_size(vocab_size)
    if val_tokens < 0:
        raise ValueError(f"val_tokens must be >= 0, got {val_tokens}")
    if not 0 < max_val_fraction < 1:
        raise ValueError(f"max_val_fraction must be in (0, 1), got {max_val_fraction}")
    if tokenizer_sample_bytes <= 0:
        raise ValueError(f"tokenizer_sample_bytes must be positive, got {tokenizer_sample_bytes}")
    domains = list(corpus.domains)
    if not domains:
        raise ValueError(f"corpus {corpus.name!r} has no domains")
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(corpus, vocab_size)
    settings = {
        "format": FORMAT,
        "corpus_fingerprint": corpus.fingerprint,
        "requested_vocab_size": int(vocab_size),
        "seed": int(seed),
        "val_tokens": int(val_tokens),
        "max_val_fraction": float(max_val_fraction),
        "tokenizer_sample_bytes": int(tokenizer_sample_bytes),
        "domain_names": domains,
    }
    existing = _load_if_current(out_dir, settings)
    if existing is not None:
        return existing

    # Built under a hidden sibling name and renamed in whole: a crash leaves no folder that looks
    # valid, and a concurrent build that finished first is kept.
    with staged_dir(out_dir, label="tmp") as staging:
        _build(corpus, domains, staging, settings, progress)
    return load(out_dir)


def as_token_data(data: TokenData | str | os.PathLike) -> TokenData:
    """`data` itself, or the token folder it names opened with `load`."""
    return load(data) if isinstance(data, (str, os.PathLike)) else data


def load(root: str | os.PathLike) -> TokenData:
    """Open the token folder written by `prepare` (shards are memmapped, not read)."""
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no token manifest at {manifest_path}; build it with mixkit.tokens.prepare(corpus)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if not (root / "tokenizer.json").is_file():
        raise FileNotFoundError(f"token folder {root} has a manifest but no tokenizer.json")
    domains = list(manifest["domains"])
    train, val = {}, {}
    for d in domains:
        counts = manifest["domains"][d]
        train[d] = _open_shard(root / f"{d}.train.bin", counts["train_tokens"])
        val[d] = _open_shard(root / f"{d}.val.bin", counts["val_tokens"])
    return TokenData(
        root=root.resolve(),
        domains=domains,
        vocab_size=int(manifest["vocab_size"]),
        eot_id=int(manifest["eot_id"]),
        fingerprint=manifest["fingerprint"],
        train=train,
        val=val,
        manifest=manifest,
    )


# ----------------------------------------------------------------------------- building


def _build(corpus, domains: list[str], out: Path, settings: dict, progress: bool) -> None:
    sample = _tokenizer_sample(corpus, domains, settings["tokenizer_sample_bytes"], settings["seed"], progress)
    tok = train_tokenizer(
        (text for d in domains for text in sample[d]),
        settings["requested_vocab_size"],
        progress=progress,
        length=sum(len(v) for v in sample.values()),
    )
    sample_bytes = _sample_size(sample)
    del sample
    tok.save(str(out / "tokenizer.json"))
    tokenizer_sha = hashlib.sha256((out / "tokenizer.json").read_bytes()).hexdigest()
    eot_id = tok.token_to_id(EOT)

    stats = _corpus_stats(corpus)
    per_domain = {}
    for d in domains:
        counted = _encode_domain(
            tok, corpus.documents(d), d, eot_id, out, settings, progress,
            total_docs=(stats.get(d) or {}).get("documents"),
        )
        # Prefer the corpus's own byte/document counts so `corpus info` agrees with the corpus manifest.
        corpus_side = stats.get(d) or {}
        counted["bytes"] = int(corpus_side.get("bytes", counted["bytes"]))
        counted["documents"] = int(corpus_side.get("documents", counted["documents"]))
        per_domain[d] = counted

    vocab = tok.get_vocab_size()
    if vocab < settings["requested_vocab_size"]:
        warnings.warn(
            f"tokenizer learned only {vocab} of the {settings['requested_vocab_size']} requested tokens: "
            f"the training sample ({sample_bytes:,} bytes per domain) has too few distinct merges",
            stacklevel=3,
        )
    manifest = {
        **settings,
        "corpus_name": corpus.name,
        "vocab_size": vocab,
        "eot_id": eot_id,
        "eot_token": EOT,
        "dtype": "uint16",
        "tokenizer_sha256": tokenizer_sha,
        "tokenizer_sample_bytes_per_domain": sample_bytes,
        "domains": per_domain,
    }
    manifest["fingerprint"] = _fingerprint(settings["corpus_fingerprint"], tokenizer_sha, per_domain)
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def _sample_size(sample: dict[str, list[str]]) -> int:
    sizes = {sum(len(t.encode("utf-8")) for t in texts) for texts in sample.values()}
    return min(sizes) if sizes else 0


def train_tokenizer(texts: Iterable[str], vocab_size: int, progress: bool = False, length: int | None = None):
    """Byte-level BPE (GPT-2 style pre-tokenization, no normalizer, so decoding restores the exact text)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    _check_vocab_size(vocab_size)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=progress,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=length)
    tok.encode_special_tokens = True
    return tok


def _tokenizer_sample(corpus, domains, cap_bytes: int, seed: int, progress: bool) -> dict[str, list[str]]:
    """The same number of bytes from every domain: documents with the smallest seeded hash first.

    A bounded heap keeps only the lowest-hash documents worth `cap_bytes`, so memory stays small
    for large domains and the choice does not depend on document order.
    """
    kept: dict[str, list[tuple[bytes, str]]] = {}
    totals: dict[str, int] = {}
    salt = f"mixkit-tokenizer-sample:{int(seed)}\0".encode()
    for d in progress_bar(domains, desc="tokenizer sample", disable=not progress):
        heap: list[tuple[int, str, int]] = []  # (-hash, text, bytes): heapq is a min-heap, we evict the max
        held = 0
        total = 0
        for text in corpus.documents(d):
            raw = text.encode("utf-8")
            if not raw:
                continue
            total += len(raw)
            key = int.from_bytes(hashlib.blake2b(salt + raw, digest_size=8).digest(), "big")
            heapq.heappush(heap, (-key, text, len(raw)))
            held += len(raw)
            # Drop the highest-hash document while the rest still covers the cap.
            while heap and held - heap[0][2] >= cap_bytes:
                held -= heapq.heappop(heap)[2]
        if total == 0:
            raise ValueError(f"domain {d!r} of corpus {corpus.name!r} has no text")
        kept[d] = [(-negkey, text) for negkey, text, _ in heap]
        totals[d] = total
    budget = min(cap_bytes, min(totals.values()))
    sample = {}
    for d in domains:
        texts, used = [], 0
        for _, text in sorted(kept[d]):
            raw = text.encode("utf-8")
            if used + len(raw) > budget:
                # Cut the last document so every domain contributes exactly `budget` bytes.
                piece = raw[: budget - used].decode("utf-8", errors="ignore")
                if piece:
                    texts.append(piece)
                break
            texts.append(text)
            used += len(raw)
        sample[d] = texts
    return sample


def _encode_domain(tok, documents: Iterable[str], domain: str, eot_id: int, out: Path, settings: dict,
                   progress: bool, total_docs: int | None) -> dict:
    """Encode every document (ids + eot), then split whole documents into train and val shards."""
    scratch = out / f"{domain}.all.tmp"
    with progress_bar(total=total_docs, desc=f"encode {domain}", unit="doc", disable=not progress) as bar:
        lengths, keys, n_bytes = _encode_documents(tok, documents, eot_id, scratch, bar)
    if not len(lengths):
        raise ValueError(f"domain {domain!r} has no documents")
    total = int(lengths.sum())
    target = min(int(settings["val_tokens"]), int(settings["max_val_fraction"] * total))
    val_len = select_val(lengths, keys, target)
    if target > 0 and val_len.sum() < target // 2:
        warnings.warn(
            f"domain {domain!r}: only {int(val_len.sum()):,} validation tokens of the {target:,} wanted",
            stacklevel=4,
        )
    all_tokens = np.memmap(scratch, dtype=DTYPE, mode="r", shape=(total,))
    n_train, n_val = _write_split(all_tokens, lengths, val_len, out / f"{domain}.train.bin",
                                  out / f"{domain}.val.bin", eot_id)
    del all_tokens
    scratch.unlink()
    return {
        "bytes": n_bytes,
        "documents": len(lengths),
        "train_tokens": n_train,
        "val_tokens": n_val,
        "val_documents": int((val_len > 0).sum()),
    }


def _encode_documents(tok, documents: Iterable[str], eot_id: int, scratch: Path,
                      bar) -> tuple[np.ndarray, np.ndarray, int]:
    """Write each non-empty document's ids and an end-of-text token to `scratch`, in batches.

    Returns each document's token count (eot included), its validation-split hash key, and the
    total text bytes.
    """
    lengths: list[int] = []
    keys: list[int] = []
    n_bytes = 0
    eot = np.array([eot_id], dtype=DTYPE)
    batch: list[str] = []
    batch_bytes = 0
    with open(scratch, "wb") as fh:

        def flush():
            for enc in tok.encode_batch(batch, add_special_tokens=False):
                ids = np.asarray(enc.ids, dtype=DTYPE)
                fh.write(ids.tobytes())
                fh.write(eot.tobytes())
                lengths.append(ids.shape[0] + 1)
            bar.update(len(batch))
            batch.clear()

        for text in documents:
            raw = text.encode("utf-8")
            if not raw:
                continue
            n_bytes += len(raw)
            keys.append(_val_key(raw))
            batch.append(text)
            batch_bytes += len(raw)
            if batch_bytes >= _ENCODE_CHUNK_BYTES or len(batch) >= _ENCODE_CHUNK_DOCS:
                flush()
                batch_bytes = 0
        if batch:
            flush()
    return np.asarray(lengths, dtype=np.int64), np.asarray(keys, dtype=np.uint64), n_bytes


def _val_key(raw: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8, person=b"mixkit-val").digest(), "big")


def select_val(lengths: np.ndarray, keys: np.ndarray, target: int) -> np.ndarray:
    """Tokens of each document that go to validation (0 = all train).

    Documents are visited in order of their text hash and taken whole while they fit in `target`,
    so the split is the same whatever the document order. When no whole document fits (every
    document is longer than the target), the lowest-hash document gives its first `target` tokens
    (the token count includes the document's end-of-text token) instead of an empty split.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    val = np.zeros_like(lengths)
    if target <= 0 or lengths.size == 0:
        return val
    order = np.argsort(np.asarray(keys, dtype=np.uint64), kind="stable")
    used = 0
    for i in order:
        n = int(lengths[i])
        if used + n <= target:
            val[i] = n
            used += n
            if used == target:
                break
    if used == 0:
        # Every document is longer than the target (it is at most a fraction of the domain).
        val[int(order[0])] = target
    return val


def _write_split(all_tokens: np.ndarray, lengths: np.ndarray, val_len: np.ndarray, train_path: Path,
                 val_path: Path, eot_id: int) -> tuple[int, int]:
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n_train = n_val = 0
    eot = np.array([eot_id], dtype=DTYPE)
    with open(train_path, "wb") as tr, open(val_path, "wb") as va:
        i = 0
        n = lengths.shape[0]
        while i < n:
            # Copy runs of consecutive same-side documents in one slice.
            side = val_len[i] == lengths[i]
            partial = 0 < val_len[i] < lengths[i]
            if partial:
                s, k = int(starts[i]), int(val_len[i])
                head = np.asarray(all_tokens[s: s + k - 1])
                va.write(head.tobytes() + eot.tobytes())
                rest = np.asarray(all_tokens[s + k - 1: s + lengths[i]])
                tr.write(rest.tobytes())
                n_val += head.shape[0] + 1
                n_train += rest.shape[0]
                i += 1
                continue
            j = i + 1
            while j < n and (val_len[j] == lengths[j]) == side and not (0 < val_len[j] < lengths[j]):
                j += 1
            chunk = np.asarray(all_tokens[starts[i]: starts[i] + lengths[i:j].sum()])
            (va if side else tr).write(chunk.tobytes())
            if side:
                n_val += chunk.shape[0]
            else:
                n_train += chunk.shape[0]
            i = j
    return n_train, n_val


def _fingerprint(corpus_fingerprint: str, tokenizer_sha: str, per_domain: dict) -> str:
    counts = {d: [v["train_tokens"], v["val_tokens"]] for d, v in per_domain.items()}
    blob = json.dumps({"corpus": corpus_fingerprint, "tokenizer": tokenizer_sha, "counts": counts},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- helpers


def _check_vocab_size(vocab_size: int) -> None:
    if not isinstance(vocab_size, (int, np.integer)) or isinstance(vocab_size, bool):
        raise ValueError(f"vocab_size must be an integer, got {vocab_size!r}")
    if vocab_size > MAX_VOCAB:
        raise ValueError(f"vocab_size={vocab_size} does not fit the uint16 token shards (max {MAX_VOCAB})")
    if vocab_size < MIN_VOCAB:
        raise ValueError(f"vocab_size={vocab_size} is too small: byte-level BPE needs at least {MIN_VOCAB} "
                         "(256 bytes + end-of-text)")


def _corpus_stats(corpus) -> dict:
    stats = getattr(corpus, "stats", None)
    if callable(stats):
        try:
            return dict(stats())
        except Exception as exc:  # counting ourselves is a fine fallback for a partial corpus object
            warnings.warn(f"corpus.stats() failed ({exc}); counting bytes and documents while encoding",
                          stacklevel=3)
    return {}


def _open_shard(path: Path, expected: int) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"token shard {path} is missing; rebuild with mixkit.tokens.prepare(corpus)")
    size = path.stat().st_size
    if size != expected * DTYPE.itemsize:
        raise ValueError(f"token shard {path} has {size // DTYPE.itemsize} tokens but the manifest says "
                         f"{expected}; the folder is damaged, delete it and run prepare again")
    if expected == 0:
        return np.zeros(0, dtype=DTYPE)  # mmap cannot map an empty file
    return np.memmap(path, dtype=DTYPE, mode="r", shape=(expected,))


def _load_if_current(out_dir: Path, settings: dict) -> TokenData | None:
    path = out_dir / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if any(manifest.get(k) != v for k, v in settings.items()):
        return None
    try:
        return load(out_dir)
    except (FileNotFoundError, ValueError, KeyError):
        return None


def iter_documents(data: TokenData, domain: str, split: str = "train") -> Iterator[np.ndarray]:
    """The documents of a shard as id arrays (end-of-text token removed)."""
    arr = (data.train if split == "train" else data.val)[domain]
    ends = np.flatnonzero(np.asarray(arr) == data.eot_id)
    start = 0
    for e in ends:
        yield np.asarray(arr[start:e])
        start = e + 1
