"""Run-store faults: corrupt or partial run directories are re-run and never loaded; storage
failures (full disk, no permission) surface with a clear message."""

from __future__ import annotations

import errno

import pytest

import mixkit.paths
import mixkit.runs.store
from mixkit import runs
from mixkit.mixture import Mixture
from mixkit.proxy import ProxyConfig

FAST = dict(context_length=64, batch_size=16, steps=6, eval_every=3, eval_tokens=512, device="cpu",
            precision="fp32", threads=1)


def _two_runs(token_data, store):
    doms = token_data.domains
    mixes = [Mixture({doms[0]: 1.0}, domains=doms), Mixture({doms[0]: 0.5, doms[1]: 0.5}, domains=doms)]
    cfg = ProxyConfig.preset("smoke", **FAST)
    return cfg, mixes, runs.sweep(cfg, mixes, token_data, store, workers=1, progress=False)


@pytest.mark.parametrize("damage", ["truncate_curve", "edit_config", "old_marker", "delete_curve"])
def test_corrupt_run_is_detected_rerun_and_never_loaded(token_data, tmp_path, damage):
    store = tmp_path / "runs"
    cfg, mixes, ids = _two_runs(token_data, store)
    bad = store / ids[0]
    if damage == "truncate_curve":
        text = (bad / "curve.csv").read_text()
        (bad / "curve.csv").write_text(text[: len(text) // 2])
    elif damage == "edit_config":
        (bad / "config.json").write_text((bad / "config.json").read_text().replace('"seed"', '"seeed"'))
    elif damage == "old_marker":
        (bad / "DONE").write_text("2026-01-01T00:00:00\n")
    else:
        (bad / "curve.csv").unlink()
    st = runs.RunStore(store)
    assert st.corrupt() == [ids[0]] and st.finished() == [ids[1]]
    with pytest.warns(UserWarning, match="do not match their DONE checksums"):
        table = runs.load_runs(store)
    assert set(table["run_id"]) == {ids[1]}
    # The next sweep re-runs exactly the damaged run and leaves the good one alone.
    good_stamp = (store / ids[1] / "DONE").stat().st_mtime_ns
    runs.sweep(cfg, mixes, token_data, store, workers=1, progress=False)
    assert st.corrupt() == [] and sorted(st.finished()) == sorted(ids)
    assert (store / ids[1] / "DONE").stat().st_mtime_ns == good_stamp
    assert set(runs.load_runs(store)["run_id"]) == set(ids)


def test_full_disk_is_reported_clearly(token_data, tmp_path, monkeypatch):
    def no_space(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    # Every write of a run's files and of its error record goes through the atomic writer.
    monkeypatch.setattr(mixkit.runs.store, "atomic_write_text", no_space)
    monkeypatch.setattr(mixkit.paths, "atomic_write_text", no_space)
    store = tmp_path / "runs"
    with pytest.warns(UserWarning, match="no space left on the device holding"):
        _, _, result = _two_runs(token_data, store)
    assert runs.RunStore(store).finished() == []
    # No error.json could be written either: the sweep's own count is what tells the truth.
    assert runs.store_summary(store) == {"runs": 0, "failed": 0}
    assert result.summary() == {"planned": 2, "finished": 0, "trained": 0, "failed": 2}
    assert list(result.failed) == list(result) and all("no space left" in m for m in result.failed.values())


def test_unwritable_store_fails_before_training(token_data, tmp_path, monkeypatch):
    real_mkdir = type(tmp_path).mkdir

    def denied(self, *a, **k):
        if self.name == "runs":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(type(tmp_path), "mkdir", denied)
    with pytest.raises(OSError, match="check its permissions or choose a writable store"):
        _two_runs(token_data, tmp_path / "runs")


def test_checkpoint_sweep_retrains_a_run_finished_without_weights(token_data, tmp_path):
    store = tmp_path / "runs"
    cfg, mixes, ids = _two_runs(token_data, store)
    st = runs.RunStore(store)
    with pytest.raises(FileNotFoundError):
        st.checkpoint(ids[0])
    curve = st.read_curve(ids[0])
    assert runs.sweep(cfg, mixes, token_data, store, workers=1, progress=False, checkpoints=True) == ids
    assert st.checkpoint(ids[0]).is_file() and st.is_finished(ids[0])
    # Deterministic training: the retrained run records the same curve.
    assert st.read_curve(ids[0])["loss"].tolist() == curve["loss"].tolist()


def test_no_room_for_a_lock_file_fails_the_run_not_the_sweep(token_data, tmp_path, monkeypatch):
    import os

    real_open = os.open

    def full(path, *a, **k):
        if os.path.basename(path) == "lock":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", full)
    with pytest.warns(UserWarning, match="2 of 2 proxy run"):
        _, _, result = _two_runs(token_data, tmp_path / "runs")
    assert result.finished == [] and all("no space left on the device holding" in m for m in result.failed.values())
