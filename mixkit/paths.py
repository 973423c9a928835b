"""Where generated data lives, and writes that never leave a half-written file behind."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


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
