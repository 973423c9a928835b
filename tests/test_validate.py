"""The validation protocol: paired t intervals that cover at their stated rate, verdicts, the
steps-equivalent against its closed form, and validation runs that are real and cached."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mixkit.mixture import Mixture, Phased, uniform
from mixkit.proxy import ProxyConfig
from mixkit.validate import (BETTER, TIE, WORSE, paired_interval, plot_gains, plot_steps_equivalent, proxy_compute,
                             seeds_to_resolve, steps_to_reach, validate, verdict)

FAST = dict(steps=24, eval_every=6, eval_tokens=256, batch_size=4, context_length=32)


def _experiments(rng, reps: int, n: int, offset: float):
    """Synthetic paired losses: a shared per-seed effect (init, data order) much larger than the
    pair noise, and a candidate `offset` nats better than the baseline."""
    seed_effect = rng.normal(0.0, 0.2, (reps, n))
    base = 3.0 + seed_effect + rng.normal(0.0, 0.01, (reps, n))
    cand = 3.0 - offset + seed_effect + rng.normal(0.0, 0.01, (reps, n))
    return cand, base


@pytest.mark.parametrize("n,level", [(3, 0.95), (5, 0.9)])
def test_paired_interval_covers_a_known_offset_at_its_stated_rate(n, level):
    rng = np.random.default_rng(0)
    cand, base = _experiments(rng, 4000, n, offset=0.02)
    hits = [(iv.low <= 0.02 <= iv.high) for iv in (paired_interval(c, b, level) for c, b in zip(cand, base))]
    assert abs(np.mean(hits) - level) < 0.015, f"coverage {np.mean(hits):.3f} at stated {level}"


def test_pairing_removes_the_shared_seed_effect():
    rng = np.random.default_rng(1)
    cand, base = _experiments(rng, 1, 3, offset=0.05)
    iv = paired_interval(cand[0], base[0])
    assert iv.low > 0 and verdict(iv) == BETTER  # unpaired, the 0.2 seed effect would swamp 0.05
    assert verdict(paired_interval(base[0], cand[0])) == WORSE


def test_identical_losses_are_no_detectable_difference_and_bad_input_is_refused():
    iv = paired_interval([3.1, 3.2, 3.0], [3.1, 3.2, 3.0])
    assert (iv.gain, iv.low, iv.high) == (0.0, 0.0, 0.0) and iv.verdict == TIE
    assert math.isnan(paired_interval([3.0], [3.1]).low)
    with pytest.raises(ValueError, match="one candidate and one baseline value per seed"):
        paired_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="level"):
        paired_interval([1.0, 2.0], [1.0, 2.0], level=95)


def test_seeds_to_resolve_is_the_smallest_count_of_the_t_test_sample_size():
    from scipy import stats
    need = lambda k, sd: (stats.t.ppf(0.975, k - 1) + stats.t.ppf(0.8, k - 1)) * sd / math.sqrt(k)  # noqa: E731
    for gain, sd in [(0.05, 0.08), (0.01, 0.06), (0.2, 0.05), (-0.03, 0.02)]:
        n = int(seeds_to_resolve(gain, sd))
        assert need(n, sd) <= abs(gain) and (n == 2 or need(n - 1, sd) > abs(gain)), (gain, sd, n)
    assert seeds_to_resolve(0.05, 0.08) == 23  # about (1.96 + 0.84)^2 * (0.08 / 0.05)^2 = 20, plus the t correction
    assert math.isinf(seeds_to_resolve(0.0, 0.1)) and math.isinf(seeds_to_resolve(1e-4, 1.0))
    assert math.isnan(seeds_to_resolve(0.05, math.nan))


def test_seeds_to_resolve_resolves_a_known_gain_at_its_stated_power():
    rng = np.random.default_rng(3)
    gain, sd = 0.04, 0.06
    n = int(seeds_to_resolve(gain, sd))
    diffs = gain + rng.normal(0.0, sd, (4000, n))
    resolved = np.mean([paired_interval(np.zeros(n), d).low > 0 for d in diffs])
    assert 0.78 < resolved < 0.86, f"resolved {resolved:.3f} at n={n} (planned power 0.8)"


def test_steps_equivalent_matches_the_power_law_closed_form():
    E, B, b = 2.0, 6.0, 0.5
    steps = np.arange(0, 101, 5)
    curve = E + B * np.maximum(steps, 1) ** (-b)
    closed = lambda loss: (B / (loss - E)) ** (1 / b)  # noqa: E731
    inside = steps_to_reach(steps, curve, E + B * 42.0 ** (-b))
    assert not inside.extrapolated and inside.steps == pytest.approx(42.0, rel=2e-3)
    beyond = steps_to_reach(steps, curve, E + B * 160.0 ** (-b))
    assert beyond.extrapolated and beyond.steps == pytest.approx(closed(E + B * 160.0 ** (-b)), rel=1e-3)
    assert beyond.law[2] == pytest.approx(b, rel=1e-3)
    assert math.isinf(steps_to_reach(steps, curve, E - 0.1).steps)


@pytest.fixture(scope="module")
def validated(token_data, tmp_path_factory):
    store = tmp_path_factory.mktemp("validation-store")
    cfg = ProxyConfig.preset("smoke", **FAST)
    doms = ["code", "books", "legal"]
    cands = {"same as uniform": Mixture(uniform(doms)[0].weights, domains=doms), "code only": {"code": 1.0}}
    first = validate(cands, cfg, token_data, store, seeds=2, domains=doms, workers=1, progress=False)
    second = validate(cands, cfg, token_data, store, seeds=2, domains=doms, workers=1, progress=False)
    return first, second, store


def test_identical_mixtures_trained_for_real_are_no_detectable_difference(validated):
    v, _, _ = validated
    row = v.row("same as uniform", "uniform")
    assert row.gain == 0.0 and row.verdict == TIE and row.n_seeds == 2
    other = v.row("code only", "natural")  # the verdict follows its interval, whichever way it falls
    assert other.verdict == (BETTER if other.ci_low > 0 else WORSE if other.ci_high < 0 else TIE)
    assert set(v.final["seed"]) == {0, 1} and v.final["loss"].gt(0).all()
    assert len(set(v.runs["run_id"])) == 6  # 3 mixtures (uniform shared) x 2 seeds
    assert {"name", "baseline", "gain", "ci_low", "ci_high", "verdict", "steps_equivalent", "steps_equivalent_low",
            "steps_equivalent_high"} <= set(v.table().columns)
    assert all(("uniform" in s or "natural" in s) and "seeds" in s for s in v.sentences())
    assert math.isinf(row.seeds_to_resolve) and "more than 10,000 seeds" in row.sentence  # a gain of exactly 0


def test_validation_runs_are_cached(validated):
    first, second, _ = validated
    assert first.n_trained == 6 and second.n_trained == 0
    pd.testing.assert_frame_equal(first.comparisons, second.comparisons)


def test_leaderboard_compute_and_figures(validated, token_data):
    v, _, store = validated
    board = v.leaderboard()
    assert [r["loss"] for r in board] == sorted(r["loss"] for r in board)
    assert {"gain_vs_uniform", "ci_low_vs_natural", "steps_equivalent_vs_uniform"} <= set(board[0])
    cost = proxy_compute(store, v.runs["run_id"], token_data.vocab_size)
    assert cost["runs"] == 6 and cost["flops"] > 6 * cost["train_tokens"] * 1000
    plot_gains(v)
    plot_steps_equivalent(v, "code only", "uniform")


def test_bad_arguments_fail_before_training(token_data, tmp_path):
    cfg = ProxyConfig.preset("smoke", **FAST)
    store = tmp_path / "store"
    with pytest.raises(ValueError, match="target"):
        validate({"a": {"code": 1.0}}, cfg, token_data, store, target="nope", progress=False)
    with pytest.raises(ValueError, match="baseline 'best'"):
        validate({"a": {"code": 1.0}}, cfg, token_data, store, baselines=["best"], progress=False)
    with pytest.raises(ValueError, match="also baseline names"):
        validate({"uniform": {"code": 1.0}}, cfg, token_data, store, progress=False)
    with pytest.raises(ValueError, match="seeds"):
        validate({"a": {"code": 1.0}}, cfg, token_data, store, seeds=0, progress=False)
    # natural() and uniform() return a list of one Mixture: named as such, not as a bad phase schedule
    with pytest.raises(ValueError, match=r"candidate 'u' is a list of 1 Mixture.*\[0\]"):
        validate({"u": uniform(token_data.domains)}, cfg, token_data, store, progress=False)
    # any mixture a run would refuse is refused here, named: an unknown domain, a schedule past the run
    with pytest.raises(ValueError, match=r"candidate 'web heavy'.*nope"):
        validate({"a": {"code": 1.0}, "web heavy": Mixture({"nope": 1.0})}, cfg, token_data, store, progress=False)
    with pytest.raises(ValueError, match=r"candidate 'typo'.*nope"):
        validate({"a": {"code": 1.0}, "typo": {"nope": 1.0}}, cfg, token_data, store, progress=False)
    with pytest.raises(ValueError, match=r"baseline 'late'"):
        validate({"a": {"code": 1.0}}, cfg, token_data, store, progress=False,
                 baselines={"late": Phased([(1e-3, {"code": 1.0}), (1.0, {"books": 1.0})], domains=token_data.domains)})
    assert not store.exists()


def test_a_remembered_recommendation_is_read_back_exactly_and_keyed_by_its_inputs(tmp_path):
    from mixkit.validate.bakeoff import remembered
    from mixkit.validate.methods import Recommendation

    calls = []

    def fit():
        calls.append(1)
        return Recommendation("law", Mixture({"a": 0.1 + 0.2, "b": 1 - (0.1 + 0.2)}), ["r1", "r2"], "note", math.nan)

    first = remembered(tmp_path, "law", {"runs": ["r1", "r2"], "seed": 0}, fit)
    again = remembered(tmp_path, "law", {"runs": ["r1", "r2"], "seed": 0}, fit)
    assert len(calls) == 1 and again.mixture.weights == first.mixture.weights and again.run_ids == ["r1", "r2"]
    assert math.isnan(again.predicted_loss) and again.note == "note"
    remembered(tmp_path, "law", {"runs": ["r1", "r2"], "seed": 1}, fit)  # another setting: fitted afresh
    remembered(tmp_path, "other law", {"runs": ["r1", "r2"], "seed": 0}, fit)
    assert len(calls) == 3
    from mixkit.runs import RunStore
    assert RunStore(tmp_path).finished() == []  # the store's run listing does not see the folder


@pytest.mark.slow
def test_bake_off_with_online_methods_names_a_winner(token_data, tmp_path, monkeypatch):
    # Every method, DoReMi and ODM included, on all seven domains (about 50 tiny runs: outside CI).
    from mixkit.validate.bakeoff import bake_off, report_text

    cfg = ProxyConfig.preset("smoke", steps=30, eval_every=10, eval_tokens=512)
    b = bake_off(cfg, cfg.replace(d_model=48, n_heads=4), token_data, tmp_path / "store", token_data.domains, n_runs=9,
                 seeds=2, workers=2, n_samples=5000, top_k=32, n_starts=4, online=True, progress=False)
    board = b.leaderboard()
    assert {"mixing law", "nested pipeline", "RegMix", "BiMix", "entropy", "DoReMi", "ODM", "uniform", "natural"} == {
        r["method"] for r in board}
    assert b.compute.set_index("method").loc["DoReMi", "proxy_runs"] == 2
    assert b.winner in report_text(b)
    # A second bake-off reads the fitted methods' answers back instead of refitting, so it trains nothing.
    import mixkit.validate.methods as methods

    def refit(*args, **kwargs):
        raise AssertionError("refitted a remembered recommendation")

    for name in ("mixing_law", "regmix", "bimix", "nested", "entropy"):
        monkeypatch.setattr(methods, name, refit)
    again = bake_off(cfg, cfg.replace(d_model=48, n_heads=4), token_data, tmp_path / "store", token_data.domains,
                     n_runs=9, seeds=2, workers=2, n_samples=5000, top_k=32, n_starts=4, online=True, progress=False)
    assert again.validation.n_trained == 0
    pd.testing.assert_frame_equal(again.weights().loc[b.weights().index, b.weights().columns], b.weights())
    with pytest.raises(ValueError, match="at least as large"):
        bake_off(cfg.replace(d_model=48, n_heads=4), cfg, token_data, tmp_path / "store", token_data.domains)


def test_run_flops_counts_every_evaluation_and_doremi_reference_forward():
    from mixkit.proxy import ProxyConfig, flops_per_token
    from mixkit.validate.compute import run_flops

    cfg = ProxyConfig.preset("smoke", steps=100, eval_every=30)
    per_token = float(flops_per_token(cfg.model_config(512)))
    record = {"run_id": "r", "config": cfg.to_dict(), "domains": ["a", "b"]}
    # Evaluations at steps 0, 30, 60, 90 and the last step 100: five.
    evals = 5 * cfg.eval_tokens * 2
    assert run_flops(record, 512) == pytest.approx(per_token * cfg.total_tokens + per_token / 3 * evals)
    doremi = {**record, "schedule": {"kind": "policy", "policy": "doremi"}}
    extra = run_flops(doremi, 512) - run_flops(record, 512)
    assert extra == pytest.approx(per_token / 3 * cfg.total_tokens)
