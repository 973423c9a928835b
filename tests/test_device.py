"""Precision resolution per CPU kind: bf16 only where the CPU multiplies bf16 natively, and a loud
warning when bf16 is forced on a CPU that would emulate it."""

import warnings

import pytest

from mixkit.proxy import ProxyConfig
from mixkit.proxy import device


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(device.torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")


def test_explicit_bf16_without_native_bf16_warns(no_bf16):
    with pytest.warns(device.SlowPrecisionWarning, match=r"precision='bf16'.*AVX2.*50x slower"):
        assert device.resolve_precision(ProxyConfig(precision="bf16"), "cpu") == "bf16"


def test_auto_and_fp32_without_native_bf16_are_fp32_and_silent(no_bf16):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert device.resolve_precision(ProxyConfig(precision="auto"), "cpu") == "fp32"
        assert device.resolve_precision(ProxyConfig(precision="fp32"), "cpu") == "fp32"
    assert device.cpu_kind() == "AVX2"


def test_explicit_bf16_with_native_bf16_is_silent(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert device.resolve_precision(ProxyConfig(precision="bf16"), "cpu") == "bf16"


@pytest.mark.parametrize("flags,auto", [({"avx512_bf16", "amx_bf16", "amx_tile"}, "bf16"),
                                        ({"avx512_bf16", "avx2"}, "fp32")])
def test_auto_precision_is_bf16_only_with_amx(monkeypatch, flags, auto):
    # Without AMX a bf16 run measured 1.56-1.77x the time of fp32 (see mixkit/proxy/device.py).
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(device, "_cpu_flags", lambda: flags)
    assert device.resolve_precision(ProxyConfig(precision="auto"), "cpu") == auto


@pytest.mark.parametrize("flags,kind", [({"avx512_bf16", "amx_bf16", "amx_tile"}, "AVX512+AMX"),
                                        ({"avx512_bf16", "avx2"}, "AVX512+bf16")])
def test_cpu_kind_names_the_bf16_unit(monkeypatch, flags, kind):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(device, "_cpu_flags", lambda: flags)
    monkeypatch.setattr(device.torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert device.cpu_kind() == kind
