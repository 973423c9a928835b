"""Run ids name the directories of existing run stores: they must not change when the code moves.

The ids below were computed before the proxy/runs restructuring; a change here orphans every stored
run (each would be trained again), so it must be deliberate.
"""

from __future__ import annotations

from mixkit.mixture import Mixture
from mixkit.proxy import ProxyConfig, config_hash, run_id


def test_pinned_run_ids_of_known_configs():
    mixture = Mixture({"code": 0.25, "books": 0.75})
    smoke = ProxyConfig.preset("smoke", device="cpu", precision="fp32")
    assert run_id(smoke, mixture, 0, "0123456789abcdef") == "0702246711e857d2"
    assert run_id(smoke, mixture, 3, "0123456789abcdef", "feedfacecafebeef") == "e8d16ca83bafa18f"
    assert config_hash(smoke) == "0de11db9880eee76"
    tiny = ProxyConfig.preset("tiny", device="cpu", precision="bf16", steps=123)
    assert run_id(tiny, mixture, 1, "fp") == "588933cbe12141fd"
    assert config_hash(tiny) == "3940439f8e6a61d3"


def test_run_id_ignores_labels_and_threads_but_not_the_computation():
    mixture = Mixture({"code": 0.25, "books": 0.75})
    smoke = ProxyConfig.preset("smoke", device="cpu", precision="fp32")
    rid = run_id(smoke, mixture, 0, "fp")
    assert run_id(smoke.replace(name="renamed", threads=1), mixture, 0, "fp") == rid
    assert run_id(smoke.replace(lr=0.02), mixture, 0, "fp") != rid
    assert run_id(smoke, Mixture({"code": 0.3, "books": 0.7}), 0, "fp") != rid
