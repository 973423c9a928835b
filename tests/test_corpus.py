"""Built-in corpus (real build, cached under data/) and user domains from folders."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mixkit import corpus as mc, paths
from mixkit.paths import staging_name

PROSE = ("books", "dialogue", "docs", "legal", "reference")


def _letter_share(text: str) -> float:
    visible = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in visible) / len(visible)


# --------------------------------------------------------------------------- built-in corpus


def test_builtin_manifest(builtin_corpus):
    c = builtin_corpus
    m = c.manifest
    assert c.name == "builtin" and c.root.name == "builtin"
    assert c.domains == sorted(mc.BUILTIN_DOMAINS)
    assert m["recipe"] == mc.RECIPE_VERSION
    assert m["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    pinned = {s["name"]: s["sha256"] for s in m["sources"]}
    assert pinned == {s.name: s.sha256 for s in mc.SOURCES}
    assert not re.search(r"https?://", json.dumps(m["sources"]))
    for domain in c.domains:
        info = m["domains"][domain]
        assert (c.root / f"{domain}.jsonl").stat().st_size == info["file_bytes"]
        assert info["documents"] > 100, domain
    # Full re-hash agrees with the manifest, and the fingerprint is a pure function of the hashes.
    again = mc.load(c.root, verify=True)
    assert again.fingerprint == c.fingerprint and len(c.fingerprint) == 64


def test_builtin_domains_have_2mb(builtin_corpus):
    stats = builtin_corpus.stats()
    small = {d: s["bytes"] for d, s in stats.items() if s["bytes"] < 2_000_000}
    assert not small, f"domains under 2 MB: {small}"
    # bytes are the UTF-8 size of the texts themselves, not of the JSON lines
    first = next(builtin_corpus.documents("legal"))
    assert len(first.encode()) < builtin_corpus.manifest["domains"]["legal"]["file_bytes"]


def test_builtin_second_call_rebuilds_nothing(builtin_corpus):
    before = {p.name: p.stat().st_mtime_ns for p in builtin_corpus.root.iterdir()}
    t0 = time.perf_counter()
    again = mc.builtin(data_dir=builtin_corpus.root.parents[1], progress=False)
    assert time.perf_counter() - t0 < 5
    assert {p.name: p.stat().st_mtime_ns for p in again.root.iterdir()} == before
    assert again.fingerprint == builtin_corpus.fingerprint


def test_builtin_identity_decides_reuse(builtin_corpus):
    identity = mc._builtin_identity()
    assert mc._builtin_is_current(builtin_corpus.root, identity)
    assert not mc._builtin_is_current(builtin_corpus.root, {**identity, "recipe": "builtin-0"})
    assert not mc._builtin_is_current(builtin_corpus.root, {**identity, "python": "2.7"})
    assert not mc._builtin_is_current(builtin_corpus.root, {**identity, "sources": identity["sources"][1:]})


def test_hash_mismatch_fails_before_writing(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for s in mc.SOURCES:  # every artifact "cached" but wrong: no network is touched
        (downloads / s.filename).write_bytes(b"not the real artifact")
    actual = hashlib.sha256(b"not the real artifact").hexdigest()
    with pytest.raises(ValueError) as err:
        mc.builtin(data_dir=tmp_path, progress=False)
    first = mc.SOURCES[0]
    assert first.filename in str(err.value)
    assert first.sha256 in str(err.value) and actual in str(err.value)
    assert not (tmp_path / "corpus").exists() or not any((tmp_path / "corpus").iterdir())


def test_failed_build_leaves_no_folder(tmp_path):
    def broken():
        yield "one good document"
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError):
        mc._build(tmp_path / "corpus" / "x", {"name": "x"}, {"a": lambda: ["doc"], "b": broken}, False)
    # Not even the parent folder the build created for itself stays behind.
    assert list(tmp_path.iterdir()) == []


def test_built_corpus_is_readable_by_others(tmp_path):
    """The staging folder becomes the corpus: it must not keep a private (0700/0600) mode."""
    old_umask = os.umask(0o022)
    try:
        c = mc._build(tmp_path / "corpus" / "x", {"name": "x"}, {"a": lambda: ["doc"]}, False)
    finally:
        os.umask(old_umask)
    for path in (c.root, c.root / "manifest.json", c.root / "a.jsonl"):
        assert path.stat().st_mode & 0o044 == 0o044, oct(path.stat().st_mode)
    assert [p.name for p in (tmp_path / "corpus").iterdir()] == ["x"]  # no staging folder left


def test_fetch_uses_injected_table(tmp_path):
    payload = b"artifact bytes"
    good = mc.Source("fake", "1.0", "fake-1.0-py3-none-any.whl", hashlib.sha256(payload).hexdigest())
    (tmp_path / good.filename).write_bytes(payload)
    assert mc.fetch(good, tmp_path) == tmp_path / good.filename
    bad = mc.Source("fake", "1.0", good.filename, "0" * 64)
    with pytest.raises(ValueError, match="expected 0{64}, got " + good.sha256):
        mc.fetch(bad, tmp_path)


def test_index_follows_pip_configuration(tmp_path, monkeypatch):
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "no-xdg"))
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple/\n"
                    "extra-index-url = file:///extra/one file:///extra/two\n"
                    "[download]\nextra-index-url = file:///for/download\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert mc.index_urls()[0] == "https://mirror.example/simple"
    assert "file:///for/download" in mc.index_urls() and "file:///extra/one" not in mc.index_urls()
    monkeypatch.setenv("PIP_INDEX_URL", "http://env.example/simple")
    assert mc.index_urls()[0] == "http://env.example/simple"
    monkeypatch.delenv("PIP_INDEX_URL")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip's way of saying: no configuration files
    assert mc.index_urls() == [mc.PYPI_SIMPLE]


def _killed_build(final, tmp_path):
    """Run a corpus build in a child process and SIGKILL it mid-build; return the child's pid."""
    ready = tmp_path / "ready"
    code = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from mixkit import corpus\n"
        "def docs():\n"
        "    yield 'first document'\n"
        "    Path(sys.argv[2]).write_text('x')\n"
        "    time.sleep(60)\n"
        "corpus._build(Path(sys.argv[1]), {'name': 'x'}, {'a': docs}, False)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(final), str(ready)])
    deadline = time.monotonic() + 60
    while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert ready.exists(), "the child build never started"
    return child.pid


def test_next_build_removes_a_killed_builds_staging_folder(tmp_path):
    final = tmp_path / "corpus" / "x"
    dead = _killed_build(final, tmp_path)
    left = [p.name for p in final.parent.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".x.building-{dead}@"), left
    # Beside it: a live process's build, an old-style name and a moved-aside copy of a dead one,
    # another host's build (its pid means nothing here) and another corpus's leftover.
    live = final.parent / f".x.building-{os.getpid()}-0123abcd"
    old_style = final.parent / f".x.building-{dead}-89abcdef"
    moved_aside = final.parent / staging_name(final, "old").replace(f"-{os.getpid()}@", f"-{dead}@")
    other_host = final.parent / f".x.building-{dead}@some-other-host-0123abcd"
    other_corpus = final.parent / f".y.building-{dead}-0123abcd"
    for folder in (live, old_style, moved_aside, other_host, other_corpus):
        folder.mkdir()
        (folder / "a.jsonl").write_text("{}\n")
    c = mc._build(final, {"name": "x"}, {"a": lambda: ["doc"]}, False)
    assert sorted(p.name for p in final.parent.iterdir()) == sorted(
        ["x", live.name, other_host.name, other_corpus.name])
    assert list(c.documents("a")) == ["doc"]


def test_atomic_write_follows_the_umask_without_touching_it(tmp_path, monkeypatch):
    real_umask = os.umask
    previous = real_umask(0o022)
    try:
        def forbidden(mask):
            raise AssertionError("os.umask changed the whole process's umask")

        monkeypatch.setattr(os, "umask", forbidden)
        written = paths.atomic_write_text(tmp_path / "out" / "a.json", "{}")
        assert written.stat().st_mode & 0o777 == 0o644
        real_umask(0o077)
        assert paths.write_json(tmp_path / "b.json", {"k": 1}).stat().st_mode & 0o777 == 0o600
    finally:
        monkeypatch.undo()
        real_umask(previous)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "b.json", "out"]  # no temp files


# --------------------------------------------------------------------------- per-source cleaning


def test_legal_has_no_front_matter(builtin_corpus):
    docs = list(builtin_corpus.documents("legal"))
    assert len(docs) > 2000
    assert not [d[:80] for d in docs if re.match(r"\s*---\s*\n", d) and "\nkey:" in d[:200]]
    assert not any(d.lstrip().startswith("key:") for d in docs)
    assert any("Permission is hereby granted, free of charge" in d for d in docs)


def test_books_kjv_without_italic_brackets(builtin_corpus):
    docs = list(builtin_corpus.documents("books"))
    kjv, milton = docs[:-7], docs[-7:]  # seven Milton works follow the Bible
    assert docs[0].startswith("In the beginning God created the heaven and the earth.")
    assert "darkness was upon the face of the deep" in docs[0]
    assert not [d for d in kjv if "[" in d or "]" in d]
    assert any("Of Mans First Disobedience" in d for d in milton)
    assert not any(d.startswith("\ufeff") for d in docs)  # byte-order marks stripped


def test_reference_lines_and_no_ansi(builtin_corpus):
    text = "\n".join(builtin_corpus.documents("reference"))
    assert "\x1b" not in text
    assert re.search(r"^1-dodecanol \(n\.\) An insoluble solid alcohol", text, re.M)
    assert "algorithm patents and look and feel lawsuits" in text  # a jargon entry, escapes gone


def test_dialogue_turns_and_no_folio(builtin_corpus):
    docs = list(builtin_corpus.documents("dialogue"))
    turns = "A: Good morning, how are you?\nB: I am doing well, how about you?\nA: I'm also good.\n"
    assert any(d.startswith(turns) for d in docs)
    plays = [d for d in docs if "by William Shakespeare" in d[:300]]
    assert 35 <= len(plays) <= 45
    assert not any("Actus Primus" in d for d in docs)  # First Folio spelling


def test_code_docs_math(builtin_corpus):
    code = list(builtin_corpus.documents("code"))
    assert sum("def " in d for d in code) > 0.8 * len(code)
    docs = list(builtin_corpus.documents("docs"))
    assert all(len(d) > 80 for d in docs)
    math = "\n".join(builtin_corpus.documents("math"))
    assert ">>> " in math and "integral" in math.lower()


def test_prose_domains_mostly_letters(builtin_corpus):
    for domain in PROSE:
        text = "".join(builtin_corpus.documents(domain))
        assert _letter_share(text) > 0.88, domain
    # symbols and digits: code and math sit clearly below every prose domain
    for domain in ("code", "math"):
        assert _letter_share("".join(builtin_corpus.documents(domain))) < 0.85, domain


# --------------------------------------------------------------------------- user folders


def _make_folders(root):
    (root / "essays").mkdir(parents=True)
    (root / "essays" / "a.txt").write_text("First essay.\r\nSecond line.")
    (root / "essays" / "b.txt").write_text("Another essay, ünïcode ok.")
    (root / "chats").mkdir()
    lines = [{"text": "hi there", "id": 1}, {"text": "   "}, {"text": "bye now"}]
    (root / "chats" / "log.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    (root / "tables").mkdir()
    pq.write_table(pa.table({"text": ["row one", None, "row two"], "n": [1, 2, 3]}),
                   root / "tables" / "part.parquet")
    return root


def test_from_folders_layout(tmp_path):
    src = _make_folders(tmp_path / "mine")
    with pytest.warns(UserWarning, match="null"):
        c = mc.from_folders(src, data_dir=tmp_path / "data", progress=False)
    assert c.name == "mine" and c.root == tmp_path / "data" / "corpus" / "mine"
    assert c.domains == ["chats", "essays", "tables"]
    assert list(c.documents("essays")) == ["First essay.\nSecond line.", "Another essay, ünïcode ok."]
    assert list(c.documents("chats")) == ["hi there", "bye now"]  # blank documents dropped
    assert list(c.documents("tables")) == ["row one", "row two"]
    assert c.stats()["chats"] == {"bytes": len("hi therebye now"), "documents": 2}
    assert sorted(p.name for p in c.root.iterdir()) == [
        "chats.jsonl", "essays.jsonl", "manifest.json", "tables.jsonl"]
    assert mc.load(c.root, verify=True).fingerprint == c.fingerprint

    # unchanged input: reused; changed input: rebuilt
    mtime = (c.root / "manifest.json").stat().st_mtime_ns
    assert mc.from_folders(src, data_dir=tmp_path / "data", progress=False).fingerprint == c.fingerprint
    assert (c.root / "manifest.json").stat().st_mtime_ns == mtime
    (src / "essays" / "c.txt").write_text("A third.")
    with pytest.warns(UserWarning):
        c2 = mc.from_folders(src, name="renamed", data_dir=tmp_path / "data", progress=False)
    assert c2.stats()["essays"]["documents"] == 3 and c2.fingerprint != c.fingerprint


def test_from_folders_errors(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mc.from_folders(tmp_path / "nope", data_dir=data)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.txt").write_text("text without a domain folder")
    with pytest.raises(ValueError, match="no domain sub-folders"):
        mc.from_folders(tmp_path / "flat", data_dir=data)

    def one_domain(name, filename, content):
        root = tmp_path / name
        (root / "d").mkdir(parents=True)
        (root / "d" / filename).write_bytes(content)
        return root

    with pytest.raises(ValueError, match="'d'.*no .txt"), pytest.warns(UserWarning, match="notes.md"):
        mc.from_folders(one_domain("empty", "notes.md", b"x"), data_dir=data, progress=False)
    with pytest.raises(ValueError, match="reserved"):
        mc.from_folders(tmp_path / "empty", name="builtin", data_dir=data)
    with pytest.raises(ValueError, match=r"bin\.txt looks binary"):
        mc.from_folders(one_domain("binary", "bin.txt", b"abc\x00def"), data_dir=data, progress=False)
    with pytest.raises(ValueError, match=r"latin\.txt is not valid UTF-8"):
        mc.from_folders(one_domain("latin", "latin.txt", "café".encode("latin-1")), data_dir=data,
                        progress=False)
    with pytest.raises(ValueError, match=r"rows\.jsonl:2 has no string 'text' field"):
        mc.from_folders(one_domain("nofield", "rows.jsonl", b'{"text": "ok"}\n{"body": "x"}\n'),
                        data_dir=data, progress=False)
    with pytest.raises(ValueError, match=r"blank\.txt.*|no documents"):
        mc.from_folders(one_domain("blank", "blank.txt", b"  \n"), data_dir=data, progress=False)
    root = tmp_path / "nocol"
    (root / "d").mkdir(parents=True)
    pq.write_table(pa.table({"body": ["x"]}), root / "d" / "t.parquet")
    with pytest.raises(ValueError, match=r"t\.parquet has no 'text' column"):
        mc.from_folders(root, data_dir=data, progress=False)
    # none of the failures left a corpus (or a half-built folder) behind
    assert not (data / "corpus").exists() or list((data / "corpus").iterdir()) == []


def test_load_and_documents_errors(tmp_path, builtin_corpus):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        mc.load(tmp_path)
    with pytest.raises(ValueError, match="unknown domain 'web'"):
        next(builtin_corpus.documents("web"))


def test_from_hf_validation_and_missing_package(monkeypatch):
    with pytest.raises(ValueError, match="domain_field"):
        mc.from_hf("some/dataset", domain_field=3)
    monkeypatch.setitem(sys.modules, "datasets", None)  # behaves as if not installed
    with pytest.raises(ImportError, match=r"mixkit\[hf\]"):
        mc.from_hf("some/dataset")


def test_from_hf_with_stub_datasets(tmp_path, monkeypatch):
    """The layout logic, offline: a stand-in `datasets` module serves two tiny configs."""
    import types

    rows = {"en": [{"text": "hello", "lang": "en"}, {"text": "world", "lang": "en"}],
            "de": [{"text": "hallo", "lang": "de"}]}
    stub = types.ModuleType("datasets")
    stub.load_dataset = lambda name, config, split, streaming: (
        rows[config] if config else rows["en"] + rows["de"])
    monkeypatch.setitem(sys.modules, "datasets", stub)

    by_config = mc.from_hf("org/greetings", domain_field={"english": "en", "german": "de"},
                           data_dir=tmp_path, progress=False)
    assert by_config.root == tmp_path / "corpus" / "greetings"
    assert list(by_config.documents("english")) == ["hello", "world"]
    by_column = mc.from_hf("org/greetings", domain_field="lang", name="bylang", data_dir=tmp_path,
                           max_documents=10, progress=False)
    assert by_column.stats() == {"de": {"bytes": 5, "documents": 1}, "en": {"bytes": 10, "documents": 2}}
    assert mc.load(by_column.root).fingerprint == by_column.fingerprint != by_config.fingerprint
    with pytest.raises(ValueError, match="no field 'body'"):
        mc.from_hf("org/greetings", text_field="body", data_dir=tmp_path, progress=False)
