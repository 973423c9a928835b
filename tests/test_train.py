"""Proxy training on the real built-in corpus shards, with the smoke preset shrunk to seconds."""

import math

import numpy as np
import pytest
import torch

from mixkit.mixture import Mixture
from mixkit.proxy import PRESETS, ProxyConfig, train_proxy
from mixkit.proxy.checkpoint import load_checkpoint
from mixkit.proxy.schedule import lr_at
from mixkit.runs import result_rows
from mixkit.proxy.model import param_counts
from mixkit.table import validate_table, weight_columns

# Small enough for CI: 64-token windows, 2k validation tokens per domain, one thread (two torch threads
# slow down sharply when anything else holds the other core of a 2-core box).
FAST = dict(context_length=64, batch_size=32, eval_tokens=2048, precision="fp32", device="cpu", threads=1)


def cfg(**kw) -> ProxyConfig:
    return ProxyConfig.preset("smoke", **{**FAST, **kw})


def heavy(data, domain: str, share: float = 0.7) -> Mixture:
    rest = (1 - share) / (len(data.domains) - 1)
    return Mixture({d: (share if d == domain else rest) for d in data.domains}, domains=data.domains)


@pytest.fixture(scope="module")
def uniform_run(token_data):
    mix = Mixture({d: 1 / len(token_data.domains) for d in token_data.domains}, domains=token_data.domains)
    return train_proxy(cfg(steps=60, eval_every=20), mix, token_data, progress=False)


def test_presets_span_thirty_x_in_size():
    sizes = {}
    for name in ("smoke", "tiny", "small", "base", "gpu-small", "gpu-100m"):
        c = ProxyConfig.preset(name)
        sizes[name] = param_counts(c.model_config(4096))["non_embedding"]
    assert 80_000 < sizes["tiny"] < 120_000
    assert 25 <= sizes["base"] / sizes["tiny"] <= 40
    assert sizes["tiny"] < sizes["small"] < sizes["base"]
    assert 20e6 < sizes["gpu-small"] < 30e6 and 90e6 < sizes["gpu-100m"] < 110e6
    tiny = ProxyConfig.preset("tiny")
    assert (tiny.d_model, tiny.n_layers, tiny.context_length, tiny.batch_size, tiny.lr, tiny.steps) == (64, 2, 128, 32, 1e-2, 700)
    assert ProxyConfig.preset("tiny", lr=3e-3).lr == 3e-3
    assert ProxyConfig.preset("tiny", tokens=1e6).steps == math.ceil(1e6 / 4096)
    assert set(PRESETS) >= {"smoke", "tiny", "small", "base", "gpu-small", "gpu-100m"}


def test_bad_config_raises():
    with pytest.raises(ValueError, match="unknown proxy preset"):
        ProxyConfig.preset("huge")
    with pytest.raises(ValueError, match="schedule"):
        ProxyConfig(schedule="linear")
    with pytest.raises(ValueError, match="unknown ProxyConfig field"):
        ProxyConfig.preset("tiny", learning_rate=1.0)
    with pytest.raises(ValueError, match="precision"):
        ProxyConfig(precision="fp16")


def test_lr_schedules():
    c = ProxyConfig(steps=100, lr=1.0, warmup=0.1, min_lr_ratio=0.1)
    lrs = [lr_at(c, s) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])), "cosine must not increase after warmup"
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)
    const = [lr_at(c.replace(schedule="constant"), s) for s in range(10, 100)]
    assert const == [1.0] * 90
    wsd = [lr_at(c.replace(schedule="wsd", decay=0.2), s) for s in range(100)]
    assert wsd[10:80] == [1.0] * 70 and wsd[-1] == pytest.approx(0.1) and wsd[85] < 1.0


def test_loss_falls_and_curve_is_complete(uniform_run, token_data):
    curve = uniform_run.curve
    assert sorted(curve["step"].unique()) == [0, 20, 40, 60]
    assert set(curve["domain"]) == set(token_data.domains)
    first = curve[curve["step"] == 0].set_index("domain")["loss"]
    last = curve[curve["step"] == 60].set_index("domain")["loss"]
    # Starts near ln(V) and drops well below it on every domain within 60 steps.
    assert abs(first.mean() - math.log(token_data.vocab_size)) < 0.3
    assert (first - last).min() > 1.0, (first - last)
    assert uniform_run.tokens_per_s > 0 and uniform_run.flops > 0
    seen = uniform_run.tokens_seen
    assert sum(seen.values()) == 60 * 32 * 64
    assert max(seen.values()) - min(seen.values()) <= 64  # uniform: within one row per domain


def test_run_table_rows(uniform_run, token_data):
    table = validate_table(result_rows(uniform_run))
    assert len(table) == 4 * len(token_data.domains)
    assert sorted(weight_columns(table)) == [f"w:{d}" for d in sorted(token_data.domains)]
    assert (table["model_size"] == uniform_run.n_non_embedding).all()
    assert set(table["tokens"]) == {0.0, 20 * 2048.0, 40 * 2048.0, 60 * 2048.0}
    assert table["run_id"].nunique() == 1 and len(uniform_run.run_id) == 16


def test_same_seed_same_curve_other_seed_differs(token_data):
    mix = heavy(token_data, "code")
    c = cfg(steps=20, eval_every=10)
    a = train_proxy(c, mix, token_data, progress=False)
    b = train_proxy(c, mix, token_data, progress=False)
    other = train_proxy(c.replace(seed=1), mix, token_data, progress=False)
    np.testing.assert_array_equal(a.curve["loss"].to_numpy(), b.curve["loss"].to_numpy())
    assert a.run_id == b.run_id != other.run_id
    assert not np.array_equal(a.curve["loss"].to_numpy(), other.curve["loss"].to_numpy())


def test_more_weight_on_a_domain_lowers_its_loss(token_data):
    c = cfg(steps=40, eval_every=40)
    code = train_proxy(c, heavy(token_data, "code"), token_data, progress=False).final_losses
    legal = train_proxy(c, heavy(token_data, "legal"), token_data, progress=False).final_losses
    assert code["code"] < legal["code"] - 0.3, (code, legal)
    assert legal["legal"] < code["legal"] - 0.3, (code, legal)


def test_continual_training_forgets_less_with_replay(token_data, tmp_path):
    domains = token_data.domains
    base = cfg(steps=50, eval_every=50)
    ckpt = tmp_path / "books.pt"
    pre = train_proxy(base, Mixture({"books": 1.0}, domains=domains), token_data, save_checkpoint=ckpt, progress=False)
    assert ckpt.is_file() and load_checkpoint(ckpt)["run_id"] == pre.run_id

    cont = base.replace(steps=40, eval_every=40)
    runs = {}
    for r in (0.0, 0.5):
        mix = Mixture({"code": 1 - r, "books": r}, domains=domains)
        runs[r] = train_proxy(cont, mix, token_data, init_checkpoint=ckpt, progress=False)
    # The starting losses are the pretrained model's final losses (same weights, same fixed tokens).
    for d, v in pre.final_losses.items():
        assert runs[0.0].init_losses[d] == pytest.approx(v, rel=1e-5)
    assert runs[0.0].init_checkpoint_id == pre.run_id
    assert runs[0.0].run_id != train_proxy(cont.replace(steps=1, eval_every=1), Mixture({"code": 1.0}, domains=domains),
                                           token_data, progress=False).run_id
    forgot = {r: res.final_losses["books"] - res.init_losses["books"] for r, res in runs.items()}
    assert forgot[0.0] > forgot[0.5] + 0.5, forgot
    assert forgot[0.0] > 0.5, forgot  # pure new-domain training does raise the old domain's loss


def test_checkpoint_with_other_architecture_is_refused(token_data, tmp_path):
    mix = Mixture({"code": 1.0}, domains=token_data.domains)
    ckpt = tmp_path / "m.pt"
    train_proxy(cfg(steps=2, eval_every=2), mix, token_data, save_checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="different architecture.*d_model"):
        train_proxy(cfg(steps=2, eval_every=2, d_model=64), mix, token_data, init_checkpoint=ckpt, progress=False)
    with pytest.raises(FileNotFoundError):
        train_proxy(cfg(steps=2), mix, token_data, init_checkpoint=tmp_path / "missing.pt", progress=False)


def test_mixture_with_unknown_domain_raises(token_data):
    with pytest.raises(ValueError, match="klingon"):
        train_proxy(cfg(steps=2), Mixture({"klingon": 1.0}), token_data, progress=False)


def test_bf16_autocast_runs_on_cpu(token_data):
    mix = Mixture({"math": 1.0}, domains=token_data.domains)
    res = train_proxy(cfg(steps=5, eval_every=5, precision="bf16"), mix, token_data, progress=False)
    assert res.precision == "bf16" and np.isfinite(res.curve["loss"]).all()
    assert torch.get_default_dtype() == torch.float32
