"""Mixtures that change during training: phased schedules, adaptive policies (ODM's EXP3, DoReMi),
their run ids, weights histories and the store, on the real corpus shards."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mixkit.mixture import Mixture, Phased
from mixkit.online import doremi, online_data_mixing
from mixkit.proxy import EXP3, DoReMi, Policy, ProxyConfig, run_id, train_proxy
from mixkit.proxy.policies import doremi_step, exp3_rewards, exp3_weights, exploration_rate
from mixkit.runs import RunStore, load_runs, plan, sweep

REPO = Path(__file__).resolve().parents[1]
FAST = dict(context_length=64, batch_size=16, steps=12, eval_every=6, eval_tokens=1024, device="cpu",
            precision="fp32", threads=1)


def fast(**over):
    return ProxyConfig.preset("smoke", **{**FAST, **over})


def uniform(data):
    return Mixture(dict.fromkeys(data.domains, 1.0 / len(data.domains)), domains=data.domains)


def rows_table(result):
    return result.weights_history.pivot(index="step", columns="domain", values="rows")


def test_phased_schedule_trains_exactly_its_phases_rows(token_data):
    doms = token_data.domains
    half = Mixture({doms[0]: 0.5, doms[1]: 0.5}, domains=doms)  # 8 + 8 of 16 rows
    skew = Mixture({doms[2]: 0.25, doms[3]: 0.75}, domains=doms)  # 4 + 12
    schedule = Phased([(1 / 3, half), (0.5, uniform(token_data)), (1.0, skew)])
    result = train_proxy(fast(), schedule, token_data, progress=False)
    rows = rows_table(result)[doms]
    assert (rows.sum(axis=1) == 16).all()
    assert (rows.iloc[:4][doms[:2]] == 8).all().all() and (rows.iloc[:4][doms[2:]] == 0).all().all()
    # 16/7 rows a domain in the uniform phase: per step 2 or 3, over its two steps 4 or 5 (carry).
    mid = rows.iloc[4:6]
    assert mid.isin([2, 3]).all().all() and mid.sum().isin([4, 5]).all()
    last = rows.iloc[6:]
    assert (last[doms[2]] == 4).all() and (last[doms[3]] == 12).all() and (last[doms[4:] + doms[:2]] == 0).all().all()
    # The recorded weights are the phases' and the run's mixture their step-weighted average.
    weights = result.weights_history.pivot(index="step", columns="domain", values="weight")[doms]
    assert np.allclose(weights.iloc[0], half.as_array(doms)) and np.allclose(weights.iloc[-1], skew.as_array(doms))
    expected = (4 * half.as_array(doms) + 2 * uniform(token_data).as_array(doms) + 6 * skew.as_array(doms)) / 12
    assert np.allclose(result.mixture.as_array(doms), expected)
    assert result.tokens_seen == {d: int(rows[d].sum()) * 64 for d in doms}


@pytest.mark.parametrize("phases, message", [
    ([(0.6, "A"), (0.4, "B")], "must increase"),
    ([(0.5, "A"), (0.9, "B")], "cover the run"),
    ([(0.0, "A"), (1.0, "B")], "not in (0, 1]"),
    ([(0.01, "A"), (1.0, "B")], "gets no step"),
])
def test_bad_schedules_fail_before_the_store_exists(token_data, tmp_path, phases, message):
    mixes = {"A": uniform(token_data), "B": Mixture({token_data.domains[0]: 1.0}, domains=token_data.domains)}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        spec = Phased([(f, mixes[m]) for f, m in phases])
        sweep(fast(), spec, token_data, tmp_path / "runs", workers=1, progress=False)
    assert not (tmp_path / "runs").exists()


class _Bad(Policy):
    name = "bad"

    def __init__(self, when: int, value):
        self.when, self.value = when, value

    def params(self):
        return {"when": self.when, "value": repr(self.value)}

    def reset(self, domains, steps, seed):
        self.k = len(domains)
        return self.value if self.when == 0 else np.full(self.k, 1.0 / self.k)

    def update(self, stats):
        return self.value if stats.step >= self.when else np.full(self.k, 1.0 / self.k)


@pytest.mark.parametrize("case, message", [("nan", "NaN"), ("negative", "negative"), ("sum", "summing to")])
def test_a_policy_returning_invalid_weights_is_a_clear_error(token_data, case, message):
    k = len(token_data.domains)
    bad = np.full(k, 0.5) if case == "sum" else np.full(k, 1.0 / k)
    if case != "sum":
        bad[0], bad[1] = (float("nan"), bad[1]) if case == "nan" else (-0.1, bad[1] + 0.1 + 1.0 / k)
    with pytest.raises(ValueError, match=f"policy 'bad' returned .*{message}.* at step 0"):
        plan(fast(), _Bad(0, bad), token_data)
    with pytest.raises(ValueError, match=f"policy 'bad' returned .*{message}.* at step 3"):
        train_proxy(fast(), _Bad(3, bad), token_data, progress=False)


def test_exp3_follows_the_paper_and_finds_the_best_arm():
    k = 4
    assert exploration_rate(k, 1) == 1 / k and math.isclose(exploration_rate(k, 1000), math.sqrt(math.log(4) / 4000))
    # Importance weighting: the reward is the loss over the weight it was drawn with, smoothed.
    r = exp3_rewards(np.zeros(k), np.array([1.0, np.nan, 2.0, 1.0]), np.array([0.5, 0.25, 0.125, 0.125]), 0.9)
    assert np.allclose(r, [0.1 * 2.0, 0.0, 0.1 * 16.0, 0.1 * 8.0])
    # A bandit with a known best arm (highest loss = the most to learn): one arm pulled per step.
    rng, losses = np.random.default_rng(0), np.array([1.0, 3.0, 1.5, 2.0])
    rewards, weights, picks = np.zeros(k), exp3_weights(np.zeros(k), 0), np.zeros(k)
    for t in range(1, 3001):
        arm = rng.choice(k, p=weights)
        picks[arm] += 1
        seen = np.full(k, np.nan)
        seen[arm] = losses[arm] + rng.normal(0, 0.1)
        rewards = exp3_rewards(rewards, seen, weights, 0.9)
        weights = exp3_weights(rewards, t)
        assert math.isclose(weights.sum(), 1.0) and weights.min() >= exploration_rate(k, t + 1) - 1e-12
    assert int(np.argmax(weights)) == 1 and weights[1] > 1 / k and int(np.argmax(picks)) == 1


def test_doremi_step_is_exponentiated_gradient_with_smoothing():
    alpha = np.array([0.5, 0.25, 0.25])
    out = doremi_step(alpha, np.array([0.0, 1.0, 0.0]), 1.0, 0.1)
    raw = alpha * np.exp([0.0, 1.0, 0.0])
    assert np.allclose(out, 0.9 * raw / raw.sum() + 0.1 / 3)


def test_same_seed_same_weights_and_curve_and_ids_hash_the_policy(token_data):
    cfg = fast(steps=30, eval_every=15)
    a, b = (train_proxy(cfg, EXP3(), token_data, progress=False) for _ in range(2))
    assert a.weights_history.equals(b.weights_history) and a.curve.equals(b.curve) and a.run_id == b.run_id
    # ODM moved the weights once its exploration rate fell below 1/K (after about 14 steps at K=7).
    w = a.weights_history.pivot(index="step", columns="domain", values="weight")
    assert np.allclose(w.iloc[0], 1 / 7) and not np.allclose(w.iloc[-1], 1 / 7)
    assert a.mixture.name == "odm" and a.schedule["policy"] == "odm"
    fp, u = token_data.fingerprint, uniform(token_data)
    ids = {run_id(cfg, u, 0, fp), run_id(cfg, EXP3(), 0, fp), run_id(cfg, EXP3(smoothing=0.5), 0, fp),
           run_id(cfg, Phased([(1.0, u)]), 0, fp), run_id(cfg, Phased([(0.5, u), (1.0, u)]), 0, fp)}
    assert len(ids) == 5 and run_id(cfg, EXP3(), 0, fp) == a.run_id


def test_policy_runs_in_the_store_keep_their_weights(token_data, tmp_path):
    store = tmp_path / "runs"
    doms = token_data.domains
    phased = Phased([(0.5, uniform(token_data)), (1.0, Mixture({doms[0]: 1.0}, domains=doms))])
    ids = sweep(fast(), [uniform(token_data), phased, EXP3()], token_data, store, workers=1, progress=False)
    assert len(set(ids)) == 3 and sweep(fast(), [phased, EXP3()], token_data, store, workers=1,
                                        progress=False).trained == []
    rs = RunStore(store)
    assert not (rs.run_dir(ids[0]) / "weights.csv").exists() and (rs.run_dir(ids[1]) / "weights.csv").exists()
    w = rs.read_weights(ids[1])
    assert list(w.columns) == ["step", "domain", "weight", "rows"] and w["step"].max() == 12
    assert (w[(w.step > 6) & (w.domain == doms[0])]["rows"] == 16).all()
    assert np.allclose(rs.read_weights(ids[0]).groupby("domain")["weight"].first().to_numpy(), 1 / 7)
    table = load_runs(store)
    assert set(table.loc[table.run_id == ids[1], "mixing"]) == {"phased"}
    assert table.loc[table.run_id == ids[0], "mixing"].isna().all()


def _with_noise_domain(data, domain: str):
    """The same corpus with one domain replaced by uniformly random tokens (unlearnable)."""
    rng = np.random.default_rng(0)
    train, val = dict(data.train), dict(data.val)
    train[domain] = rng.integers(0, data.vocab_size, size=train[domain].shape[0]).astype(train[domain].dtype)
    val[domain] = rng.integers(0, data.vocab_size, size=val[domain].shape[0]).astype(val[domain].dtype)
    return dataclasses.replace(data, train=train, val=val, fingerprint=data.fingerprint + "-noise-" + domain)


def test_doremi_gives_an_unlearnable_domain_less_than_uniform(token_data, tmp_path):
    noisy = _with_noise_domain(token_data, "math")
    # Batches of 4096 tokens (about 600 a domain) keep the per-step excess estimate steady enough.
    cfg = fast(n_layers=2, batch_size=32, context_length=128, steps=100, eval_every=50, seed=1)
    res = doremi(cfg, noisy, tmp_path / "runs", progress=False)
    assert res.mixture["math"] < 1 / len(noisy.domains), res.mixture
    assert len(res.history) == 100 and np.allclose(res.history.sum(axis=1), 1.0)
    assert res.history.min().min() >= 1e-3 / 7 - 1e-12  # smoothing keeps every domain in play
    # Reused, not retrained: the reference and DRO runs are ordinary store runs.
    assert doremi(cfg, noisy, tmp_path / "runs", progress=False).run_ids == res.run_ids


def test_doremi_and_odm_refuse_bad_input_before_writing(token_data, tmp_path):
    store = tmp_path / "runs"
    cfg = fast()
    with pytest.raises(ValueError, match="eta must be a positive"):
        doremi(cfg, token_data, store, eta=0)
    with pytest.raises(ValueError, match=r"smoothing must be in \[0, 1\)"):
        doremi(cfg, token_data, store, smoothing=1.0)
    with pytest.raises(ValueError, match="rounds"):
        doremi(cfg, token_data, store, rounds=0)
    with pytest.raises(ValueError, match="reference must be"):
        doremi(cfg, token_data, store, reference="best")
    with pytest.raises(ValueError, match=r"smoothing must be in \[0, 1\)"):
        online_data_mixing(cfg, token_data, store, smoothing=-0.1)
    assert not store.exists()
    # A reference of another model config or token data.
    ref = tmp_path / "ref.pt"
    train_proxy(fast(d_model=16), uniform(token_data), token_data, save_checkpoint=ref, progress=False)
    with pytest.raises(ValueError, match="another model config"):
        doremi(cfg, token_data, store, reference_checkpoint=ref)
    with pytest.raises(ValueError, match="another model config"):
        train_proxy(cfg, DoReMi(ref), token_data, progress=False)
    other = dataclasses.replace(token_data, fingerprint="another-tokenizer")
    with pytest.raises(ValueError, match="another tokenizer or corpus"):
        doremi(fast(d_model=16), other, store, reference_checkpoint=ref)
    assert not store.exists()


POLICY_SWEEP = textwrap.dedent("""
    import sys
    from mixkit import tokens
    from mixkit.mixture import Mixture, Phased
    from mixkit.proxy import EXP3, ProxyConfig
    from mixkit.runs import sweep

    def specs(data):
        doms = data.domains
        u = Mixture(dict.fromkeys(doms, 1 / len(doms)), domains=doms)
        return [EXP3(smoothing=s) for s in (0.9, 0.5, 0.0)] + [
            Phased([(0.5, u), (1.0, Mixture({d: 1.0}, domains=doms))]) for d in doms[:3]]

    if __name__ == "__main__":  # spawned workers re-import this file
        data = tokens.load(sys.argv[1])
        cfg = ProxyConfig.preset("smoke", context_length=64, batch_size=16, steps=40, eval_every=20,
                                 eval_tokens=1024, device="cpu", precision="fp32", threads=1)
        sweep(cfg, specs(data), data, sys.argv[2], workers=2, progress=False)
""")


def test_killed_policy_sweep_resumes_without_loss_or_duplicates(token_data, tmp_path):
    store = tmp_path / "runs"
    script = tmp_path / "policy_sweep.py"
    script.write_text(POLICY_SWEEP)
    cmd = [sys.executable, str(script), str(token_data.root), str(store)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 900  # generous: only a sweep that never finishes a run should hit it
    while time.time() < deadline and proc.poll() is None and len(RunStore(store).finished()) < 1:
        time.sleep(0.2)
    assert proc.poll() is None, f"sweep ended before it could be killed:\n{proc.stdout.read().decode()}"
    os.kill(proc.pid, signal.SIGKILL)  # the sweep only; its workers notice and exit on their own
    proc.wait()
    proc.stdout.close()
    stamps = {p.parent.name: p.stat().st_mtime_ns for p in store.glob("*/DONE")}
    assert 1 <= len(stamps) < 6
    for p in store.iterdir():
        if not (p / "DONE").exists():
            assert not any((p / f).exists() for f in ("curve.csv", "config.json", "weights.csv"))

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rs = RunStore(store)
    assert len(rs.finished()) == 6 and rs.failed() == [] and not list(store.glob("*/lock"))
    assert all(p.stat().st_mtime_ns == stamps[p.parent.name] for p in store.glob("*/DONE") if p.parent.name in stamps)
    table = load_runs(store)
    assert table["run_id"].nunique() == 6 and not table.duplicated(["run_id", "step", "domain"]).any()
    for rid in rs.finished():
        w = rs.read_weights(rid)
        assert len(w) == 40 * len(token_data.domains) and not w.duplicated(["step", "domain"]).any()


def test_iterated_doremi_uses_each_round_as_the_next_reference(token_data, tmp_path):
    store = tmp_path / "runs"
    res = doremi(fast(), token_data, store, rounds=2, progress=False)
    assert len(res.run_ids) == len(res.reference_ids) == len(res.rounds) == 2 and res.mixture == res.rounds[-1]
    second_ref = RunStore(store).read_config(res.reference_ids[1])["mixture"]
    assert np.allclose([second_ref[d] for d in token_data.domains], res.rounds[0].as_array(token_data.domains))
    assert sorted(res.history["round"].unique()) == [1, 2] and len(res.history) == 24
    assert (RunStore(store).run_dir(res.reference_ids[0]) / "model.pt").is_file()
