"""Run store, resumable sweeps and the run table they produce, on the real corpus shards."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from mixkit.mixture import Mixture
from mixkit.proxy import ProxyConfig
from mixkit.runs import RunStore, SweepResult, import_runs, load_runs, plan, run_id, store_summary, sweep
from mixkit.table import validate_table

REPO = Path(__file__).resolve().parents[1]
FAST = dict(context_length=64, batch_size=16, steps=12, eval_every=6, eval_tokens=1024, device="cpu",
            precision="fp32", threads=1)


def mixtures(data, n):
    """n distinct mixtures that lean on different domains."""
    out = []
    for i in range(n):
        lead = data.domains[i % len(data.domains)]
        share = 0.5 + 0.1 * (i // len(data.domains))
        rest = (1 - share) / (len(data.domains) - 1)
        out.append(Mixture({d: share if d == lead else rest for d in data.domains}, domains=data.domains))
    return out


def test_run_id_is_stable_and_sensitive():
    doms = ["a", "b"]
    c = ProxyConfig.preset("tiny", threads=1)
    m = Mixture({"a": 0.3, "b": 0.7}, domains=doms)
    rid = run_id(c, m, 0, "fp")
    assert len(rid) == 16 and int(rid, 16) >= 0
    assert rid == run_id(ProxyConfig.preset("tiny", threads=1), Mixture({"b": 0.7, "a": 0.3}), 0, "fp")
    # The preset label does not change what is computed (the thread count does: tests/test_identity.py).
    assert rid == run_id(c.replace(name="other"), m, 0, "fp")
    others = {run_id(c, Mixture({"a": 0.4, "b": 0.6}), 0, "fp"), run_id(c, m, 1, "fp"), run_id(c, m, 0, "fp2"),
              run_id(c, m, 0, "fp", "ckpt"), run_id(c.replace(lr=1e-3), m, 0, "fp")}
    assert rid not in others and len(others) == 5


def test_sweep_store_roundtrip_and_resume(token_data, tmp_path):
    store = tmp_path / "runs"
    mixes = mixtures(token_data, 2)
    cfg = ProxyConfig.preset("smoke", **FAST)
    ids = sweep(cfg, mixes, token_data, store, workers=1, progress=False, seeds=[0, 1])
    assert len(ids) == 4 and len(set(ids)) == 4
    assert store_summary(store) == {"runs": 4, "failed": 0}
    table = load_runs(store)
    validate_table(table)
    assert sorted(table["run_id"].unique()) == sorted(ids)
    assert len(table) == 4 * 3 * len(token_data.domains)  # 4 runs x evals at 0, 6, 12 x domains
    assert sorted(table["seed"].unique()) == [0, 1]
    w = table.groupby("run_id")[[f"w:{d}" for d in token_data.domains]].first()
    assert (w.sum(axis=1).round(9) == 1).all()
    rec = RunStore(store).read_config(ids[0])
    assert rec["data_fingerprint"] == token_data.fingerprint and rec["config"]["d_model"] == 32
    assert rec["metrics"]["tokens_per_s"] > 0 and rec["resolved"]["precision"] == "fp32"
    # A second sweep finds everything done and trains nothing.
    stamps = {rid: (store / rid / "DONE").stat().st_mtime_ns for rid in ids}
    again = sweep(cfg, mixes, token_data, store, workers=1, progress=False, seeds=[0, 1])
    assert again == ids and again.skipped == ids and again.trained == [] and again.finished == ids
    assert ids.trained == list(ids) and ids.summary() == {"planned": 4, "finished": 4, "trained": 4, "failed": 0}
    assert stamps == {rid: (store / rid / "DONE").stat().st_mtime_ns for rid in ids}
    details = load_runs(store, details=True)
    assert {"preset", "d_model", "lr", "init_checkpoint_id"} <= set(details.columns)


def test_a_run_failing_mid_way_is_recorded_not_finished(token_data, tmp_path, monkeypatch):
    from mixkit.proxy import sampler

    store = tmp_path / "runs"
    mixes = mixtures(token_data, 2)
    cfg = ProxyConfig.preset("smoke", **FAST)
    real = sampler.MixtureSampler.next_batch
    bad_weights = mixes[1].as_array(token_data.domains)

    def flaky(self):
        if self.step == 5 and (self.weights == bad_weights).all():
            raise RuntimeError("simulated crash at step 5")
        return real(self)

    monkeypatch.setattr(sampler.MixtureSampler, "next_batch", flaky)
    with pytest.warns(UserWarning, match="1 of 2 proxy run"):
        ids = sweep(cfg, mixes, token_data, store, workers=1, progress=False)
    assert ids.finished == [ids[0]] and list(ids.failed) == [ids[1]] and "simulated crash" in ids.failed[ids[1]]
    bad = store / ids[1]
    assert (bad / "error.json").is_file() and "simulated crash" in json.loads((bad / "error.json").read_text())["error"]
    assert not (bad / "DONE").exists() and not (bad / "curve.csv").exists() and not (bad / "lock").exists()
    assert store_summary(store) == {"runs": 1, "failed": 1}
    with pytest.warns(UserWarning, match="1 failed run"):
        assert list(load_runs(store)["run_id"].unique()) == [ids[0]]

    # The next sweep retries the failed run and finishes it.
    monkeypatch.setattr(sampler.MixtureSampler, "next_batch", real)
    sweep(cfg, mixes, token_data, store, workers=1, progress=False)
    assert store_summary(store) == {"runs": 2, "failed": 0}
    assert not (bad / "error.json").exists()


def test_a_planned_run_the_sweep_lost_track_of_counts_as_failed():
    result = SweepResult(["a", "b", "c"], {"a": "ok", "c": "failed"}, {"c": "boom"})
    assert result == ["a", "b", "c"] and result.finished == ["a"]
    assert result.failed == {"b": "the sweep did not run it", "c": "boom"}


def test_import_runs(token_data, tmp_path):
    src = tmp_path / "src"
    sweep(ProxyConfig.preset("smoke", **FAST), mixtures(token_data, 2), token_data, src, workers=1, progress=False)
    table = load_runs(src)
    dest = tmp_path / "dest"
    assert sorted(import_runs(table, dest)) == sorted(table["run_id"].unique())
    back = load_runs(dest).sort_values(["run_id", "step", "domain"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, table.sort_values(["run_id", "step", "domain"]).reset_index(drop=True),
                                  check_dtype=False)
    # A CSV from elsewhere, with a run id that is not a safe folder name.
    other = table[table["run_id"] == table["run_id"].iloc[0]].assign(run_id="cluster/run 7")
    other.to_csv(tmp_path / "other.csv", index=False)
    assert import_runs(tmp_path / "other.csv", dest) == ["cluster/run 7"]
    assert import_runs(tmp_path / "other.csv", dest) == []  # already there
    assert "cluster/run 7" in set(load_runs(dest)["run_id"])
    with pytest.raises(ValueError, match="missing required column"):
        import_runs(table.drop(columns=["loss"]), dest)
    with pytest.raises(FileNotFoundError):
        import_runs(tmp_path / "nope.csv", dest)


SWEEP_SCRIPT = textwrap.dedent("""
    import sys
    from mixkit import tokens
    from mixkit.proxy import ProxyConfig
    from mixkit.runs import sweep
    sys.path.insert(0, sys.argv[3])
    from test_runs import FAST, mixtures

    if __name__ == "__main__":  # spawned workers re-import this file
        data = tokens.load(sys.argv[1])
        sweep(ProxyConfig.preset("smoke", **{**FAST, "steps": 40, "eval_every": 20}), mixtures(data, 6), data,
              sys.argv[2], workers=2, progress=False)
""")


def test_killed_sweep_restarts_without_loss_or_duplicates(token_data, tmp_path):
    store = tmp_path / "runs"
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP_SCRIPT)
    cmd = [sys.executable, str(script), str(token_data.root), str(store), str(Path(__file__).parent)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and store_summary(store)["runs"] < 1:
        time.sleep(0.2)
    assert proc.poll() is None, f"sweep ended before it could be killed:\n{proc.stdout.read().decode()}"
    os.kill(proc.pid, signal.SIGKILL)  # the sweep only; its workers notice and exit on their own
    proc.wait()
    proc.stdout.close()
    finished_at_kill = store_summary(store)["runs"]
    assert 1 <= finished_at_kill < 6
    unfinished = [p for p in store.iterdir() if not (p / "DONE").exists()]
    for p in unfinished:
        assert not (p / "curve.csv").exists() and not (p / "config.json").exists()

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert store_summary(store) == {"runs": 6, "failed": 0}
    table = load_runs(store)
    assert table["run_id"].nunique() == 6
    per_run = table.groupby("run_id").size()
    assert (per_run == 3 * len(token_data.domains)).all(), per_run  # steps 0, 20, 40: no run twice
    assert not table.duplicated(["run_id", "step", "domain"]).any()
    assert not list(store.glob("*/lock"))


SHARED_SWEEP = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from mixkit import tokens
    from mixkit.proxy import ProxyConfig
    from mixkit.runs import sweep
    sys.path.insert(0, sys.argv[3])
    from test_runs import FAST, mixtures

    if __name__ == "__main__":
        data = tokens.load(sys.argv[1])
        cfg = ProxyConfig.preset("smoke", **{**FAST, "steps": 40, "eval_every": 20})
        # Start together: both have imported torch and opened the shards before either trains.
        Path(sys.argv[4]).touch()
        while not all(Path(p).exists() for p in sys.argv[5:]):
            time.sleep(0.02)
        result = sweep(cfg, mixtures(data, 4), data, sys.argv[2], workers=1, progress=False)
        print(json.dumps({"ids": list(result), "trained": result.trained, "failed": len(result.failed)}))
""")


def test_two_sweeps_on_one_store_share_the_runs(token_data, tmp_path):
    store = tmp_path / "runs"
    script = tmp_path / "shared_sweep.py"
    script.write_text(SHARED_SWEEP)
    ready = [str(tmp_path / f"ready-{i}") for i in range(2)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, str(script), str(token_data.root), str(store),
                               str(Path(__file__).parent), ready[i], *ready], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    cfg = ProxyConfig.preset("smoke", **{**FAST, "steps": 40, "eval_every": 20})
    planned = [rid for rid, _, _ in plan(cfg, mixtures(token_data, 4), token_data)]
    assert all(r["ids"] == planned and r["failed"] == 0 for r in results)
    trained = [set(r["trained"]) for r in results]
    assert not trained[0] & trained[1] and trained[0] | trained[1] == set(planned)  # each run trained once
    assert all(trained), f"one sweep waited for the other instead of sharing the work: {results}"
    assert store_summary(store) == {"runs": 4, "failed": 0} and not list(store.glob("*/lock"))


@pytest.mark.parametrize("workers", [1, 2])
def test_sweep_trains_around_a_held_run_and_comes_back_to_it(token_data, tmp_path, workers):
    from mixkit.runs.locks import try_lock

    store = tmp_path / "runs"
    cfg, mixes = ProxyConfig.preset("smoke", **FAST), mixtures(token_data, 3)
    ids = [rid for rid, _, _ in plan(cfg, mixes, token_data)]
    held = try_lock(store / ids[0])  # another live process training the first run, as far as the sweep sees
    out = {}
    thread = threading.Thread(target=lambda: out.update(result=sweep(cfg, mixes, token_data, store,
                                                                     workers=workers, progress=False)), daemon=True)
    thread.start()
    try:
        deadline = time.time() + 240
        while time.time() < deadline and RunStore(store).finished() != sorted(ids[1:]):
            time.sleep(0.2)
        assert RunStore(store).finished() == sorted(ids[1:])  # the others went ahead
        time.sleep(2.0)  # two retry intervals of the sweep
        assert thread.is_alive() and not RunStore(store).is_finished(ids[0])  # and it waits for the held one
    finally:
        held.release()
    thread.join(240)
    result = out["result"]
    assert list(result) == ids and result.trained == ids and result.failed == {} and result.finished == ids
