"""Where generated data lives, and writes that never leave a half-written file or folder behind."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def data_dir() -> Path:
    """Root of generated data (corpus, token shards, run store); `MIXKIT_DATA` overrides `./data`."""
    return Path(os.environ.get("MIXKIT_DATA", "data"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never a torn one, because
    rename within one filesystem is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new file beside `path`, created 0666 so the kernel applies the umask as for a plain open().

    Not mkstemp: its 0600 would have to be widened by reading the umask, and os.umask can only be
    read by setting it, which changes it for every thread of the process for that instant.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}-{os.urandom(6).hex()}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def json_digest(obj) -> str:
    """Hex sha256 of `obj`'s JSON with sorted keys (values JSON cannot hold written as str): the key
    of a cached answer (a fit folder, a remembered recommendation)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_ready(obj, nan=None):
    """`obj` with numpy/pandas values as plain Python, paths as strings and dict keys as strings.

    Non-finite floats become `nan` (default None, so the JSON is strict); pass `nan=float("nan")`
    to keep them as JSON's non-standard NaN.
    """
    if hasattr(obj, "tolist"):  # numpy scalars and arrays, pandas objects
        obj = obj.tolist()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else nan
    if isinstance(obj, dict):
        return {str(k): json_ready(v, nan) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v, nan) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, obj, indent: int | None = 1, nan=None, **dumps) -> Path:
    """`json_ready(obj, nan)` written atomically as JSON."""
    text = json.dumps(json_ready(obj, nan), indent=indent, allow_nan=nan is not None, **dumps)
    return atomic_write_text(path, text)


@contextmanager
def staged_dir(final: str | os.PathLike, label: str = "building") -> Iterator[Path]:
    """Build a folder under a hidden sibling name; it replaces `final` only if the block succeeds.

    An interrupted or failed build never leaves a folder that looks finished: the staging folder is
    removed on any error. A SIGKILL leaves a hidden `.<name>.<label>-<pid>@<host>-*` sibling, which
    the next build of `final` removes once that process is gone (`remove_stale_staging`).
    """
    final = Path(final)
    created = [p for p in (final.parent, *final.parent.parents) if not p.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(final)
    # Not mkdtemp: its 0700 mode would outlive the rename and hide the folder from other users.
    tmp = final.parent / staging_name(final, label)
    tmp.mkdir()
    try:
        yield tmp
        swap_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed build created for itself, innermost first, while they are empty
    (bad input writes nothing, not even an empty `data/corpus/`)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (another build uses it) or already gone


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname()) or "localhost"


def staging_name(final: Path, label: str) -> str:
    """Hidden sibling name `.<name>.<label>-<pid>@<host>-<hex>` for work in progress on `final`."""
    # The host is part of the name because a shared filesystem shows other machines' pids, which
    # say nothing about whether those processes are alive.
    return f".{final.name}.{label}-{os.getpid()}@{_host_tag()}-{os.urandom(4).hex()}"


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows: never guess there
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:  # PermissionError: alive, another user's; anything else: cannot tell, keep it
        return True
    return True


def remove_stale_staging(final: str | os.PathLike) -> list[Path]:
    """Remove the hidden staging and moved-aside siblings of `final` left by killed processes.

    A sibling `.<name>.<label>-<pid>[@<host>]-<hex>` is removed only when it was made on this host
    (names without a host predate the tag and were made by local builds) and its pid is not alive;
    a live process's folder is never touched. Returns the removed paths.
    """
    final = Path(final)
    pattern = re.compile(rf"\.{re.escape(final.name)}\.[A-Za-z0-9_]+-(?P<pid>\d+)(?:@(?P<host>[A-Za-z0-9_-]+))?"
                         r"-[0-9a-f]{8}")
    removed = []
    try:
        siblings = list(final.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        found = pattern.fullmatch(sibling.name)
        if not found or found["host"] not in (None, _host_tag()) or _pid_alive(int(found["pid"])):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed


def swap_into_place(tmp: Path, final: Path) -> None:
    """Rename the finished folder `tmp` over `final`; an old `final` is moved aside, then removed."""
    old = None
    if final.exists():
        old = final.parent / staging_name(final, "old")
        os.replace(final, old)
    try:
        os.replace(tmp, final)
    except OSError:
        # Another process finished the same build in between (the rename target is a non-empty
        # folder): its result is as good as ours.
        if not any(final.iterdir()):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def project_root() -> Path:
    """The checkout mixkit runs from (the package is installed in editable mode by `make`)."""
    return Path(__file__).resolve().parents[1]


def notebook_dirs(name: str, out_dir: str = "", data_dir: str = "", runs_dir: str = "") -> tuple[Path, Path, Path]:
    """Resolve a notebook's (out_dir, data_dir, runs_dir) parameters; empty strings mean the defaults.

    Defaults do not depend on the directory the kernel starts in (JupyterLab starts it in
    notebooks/, papermill in the project root): data under $MIXKIT_DATA or <project>/data, runs in
    <data>/runs, outputs in <project>/reports/interactive/<name>.
    """
    root = project_root()
    data = Path(data_dir) if data_dir else Path(os.environ.get("MIXKIT_DATA", root / "data"))
    runs = Path(runs_dir) if runs_dir else data / "runs"
    out = Path(out_dir) if out_dir else root / "reports" / "interactive" / name
    out.mkdir(parents=True, exist_ok=True)
    return out.resolve(), data.resolve(), runs.resolve()
