"""Run ids name the directories of existing run stores: they must not change when the code moves.

The ids below were computed before the proxy/runs restructuring, for one-thread CPU runs (the
default of sweeps on a CPU); a change here orphans every stored run (each would be trained again),
so it must be deliberate.
"""

from __future__ import annotations

import torch

from mixkit.mixture import Mixture
from mixkit.proxy import ProxyConfig, config_hash, run_id

MIXTURE = Mixture({"code": 0.25, "books": 0.75})


def test_pinned_run_ids_of_known_configs():
    smoke = ProxyConfig.preset("smoke", device="cpu", precision="fp32", threads=1)
    assert run_id(smoke, MIXTURE, 0, "0123456789abcdef") == "0702246711e857d2"
    assert run_id(smoke, MIXTURE, 3, "0123456789abcdef", "feedfacecafebeef") == "e8d16ca83bafa18f"
    assert config_hash(smoke) == "0de11db9880eee76"
    tiny = ProxyConfig.preset("tiny", device="cpu", precision="bf16", steps=123, threads=1)
    assert run_id(tiny, MIXTURE, 1, "fp") == "588933cbe12141fd"
    assert config_hash(tiny) == "3940439f8e6a61d3"


def test_run_id_ignores_labels_but_not_the_computation():
    smoke = ProxyConfig.preset("smoke", device="cpu", precision="fp32", threads=1)
    rid = run_id(smoke, MIXTURE, 0, "fp")
    assert run_id(smoke.replace(name="renamed"), MIXTURE, 0, "fp") == rid
    assert run_id(smoke.replace(lr=0.02), MIXTURE, 0, "fp") != rid
    assert run_id(smoke, Mixture({"code": 0.3, "books": 0.7}), 0, "fp") != rid


def test_cpu_thread_count_is_part_of_the_id():
    # Two threads split CPU reductions differently from one: a different curve, a different id.
    one = ProxyConfig.preset("smoke", device="cpu", precision="fp32", threads=1)
    assert run_id(one.replace(threads=2), MIXTURE, 0, "fp") != run_id(one, MIXTURE, 0, "fp")
    # Left open, the thread count is the one this process would train with.
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert run_id(one.replace(threads=None), MIXTURE, 0, "fp") == run_id(one, MIXTURE, 0, "fp")
    finally:
        torch.set_num_threads(before)


def test_gpu_ids_do_not_depend_on_cpu_threads():
    gpu = ProxyConfig.preset("smoke", device="cuda", precision="bf16")
    assert run_id(gpu.replace(threads=1), MIXTURE, 0, "fp") == run_id(gpu.replace(threads=8), MIXTURE, 0, "fp")


def test_pinned_ids_of_phased_and_policy_runs():
    # A phased schedule hashes its end fractions and mixtures, a policy its class and parameters;
    # pinned like the fixed ones, since stores of such runs are named by them too.
    from mixkit.mixture import Phased
    from mixkit.proxy import EXP3

    smoke = ProxyConfig.preset("smoke", device="cpu", precision="fp32", threads=1)
    phased = Phased([(0.5, MIXTURE), (1.0, Mixture({"code": 1.0}))])
    assert run_id(smoke, phased, 0, "0123456789abcdef") == "4c21d0ca90d72b7d"
    assert run_id(smoke, EXP3(), 0, "0123456789abcdef") == "268c659e4db812e6"
    assert run_id(smoke, Phased([(1.0, MIXTURE)]), 0, "fp") != run_id(smoke, MIXTURE, 0, "fp")
