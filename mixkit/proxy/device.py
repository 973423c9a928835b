"""Where and in which precision a proxy trains, and the process-wide settings that make it fast.

`resolve_device` and `resolve_precision` turn "auto" into what this machine runs ("cuda" when a GPU
is present; bf16 on a GPU or a CPU with bf16 matmuls, else fp32); run ids hash the resolved values,
so runs of different precisions never share a cache entry. An explicit bf16 on a CPU without bf16
matmuls warns (SlowPrecisionWarning): it runs, but about 50x slower. `cpu_kind()` names the CPU
class the speed tuning depends on (AVX2, AVX512+bf16, AVX512+AMX). The process-wide settings (glibc malloc
thresholds on a CPU, TF32 matmuls on CUDA) are set here, by `prepare_process`, once per training
process, never on import.
"""

from __future__ import annotations

import ctypes
import functools
import warnings
from pathlib import Path

import torch

from mixkit.proxy.config import ProxyConfig

# "auto" precision on a CPU: bf16 only where the CPU has AMX tiles, fp32 everywhere else. On AMX
# Intels bf16 measured 2x fp32 at the tiny preset with the chunked head (bench/proxy_throughput.py),
# and tests/test_speed_equivalence.py shows its final losses within seed noise of fp32. Without AMX,
# bf16 runs on avx512_bf16 dot-product instructions only, and on 2026-11-30 (torch 2.13, a 2-core
# avx512_bf16 Xeon VM that exposes no AMX, idle, one process, alternated, 30 steps x 3 rounds) a bf16
# run took 1.56x the time of fp32 at tiny and 1.77x at smoke (bf16 GEMM 85 against 147 GFLOP/s in
# fp32). An earlier note measured bf16 2x faster on such a CPU; the flag check below follows today's
# measurement. The precision is part of a run id, so cached "auto" runs of such CPUs train again once.


def resolve_device(config: ProxyConfig) -> str:
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"ProxyConfig.device={config.device!r} but CUDA is not available")
    return config.device


# Environment under which torch, MKL and oneDNN take an AVX2-only CPU's code paths (AMD EPYC Zen 3) on
# a newer x86 CPU: ATen's AVX2 kernels, MKL's AVX2 GEMMs (about half the AVX-512 fp32 peak) and no
# native bf16 (oneDNN then reports none, so precision "auto" resolves to fp32 as it does there). All
# three are read when the libraries load, so it applies to a fresh process only; the benches'
# --emulate-avx2 starts one. Verified with torch 2.13: cpu_kind() then says "AVX2", a bf16 matmul
# drops to ~2 GFLOP/s and fp32 GEMMs to ~80 GFLOP/s per core (from ~150).
AVX2_ONLY_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


class SlowPrecisionWarning(UserWarning):
    """precision="bf16" asked for on a CPU that has no bf16 matmuls (it emulates them, ~50x slower)."""


def resolve_precision(config: ProxyConfig, device: str) -> str:
    if config.precision != "auto":
        if config.precision == "bf16" and device == "cpu" and not cpu_has_bf16():
            warnings.warn(
                f"ProxyConfig.precision='bf16' on a CPU without bf16 matmuls ({cpu_kind()}): torch emulates "
                "them there, about 50x slower than fp32 (0.8 against 46 GFLOP/s measured on an AVX2-only "
                "AMD EPYC). Use precision='auto' or 'fp32' on this machine.", SlowPrecisionWarning, stacklevel=2)
        return config.precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device == "cpu" and cpu_has_amx():
        return "bf16"
    return "fp32"


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (oneDNN's own probe: avx512_bf16, AMX or similar).

    The probe honours ONEDNN_MAX_CPU_ISA, so an AVX2-only CPU can be emulated on a newer one.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_amx() -> bool:
    """Whether this CPU runs bf16 matmuls on AMX tiles (where "auto" precision picks bf16)."""
    return cpu_has_bf16() and "amx_bf16" in _cpu_flags()


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    return set(line.partition(":")[2].split())


def cpu_kind() -> str:
    """The kind of CPU the proxy's speed depends on: torch's vector capability plus bf16 matmuls.

    "AVX2" (e.g. AMD EPYC Zen 3: fp32 only), "AVX512", "AVX512+bf16" (avx512_bf16, no AMX),
    "AVX512+AMX" (amx_bf16 tiles); other architectures give torch's own name ("DEFAULT", "SVE256", ...).
    Follows ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA, which bench/proxy_throughput.py --emulate-avx2 sets.
    """
    capability = torch.backends.cpu.get_cpu_capability()
    if not cpu_has_bf16():
        return capability
    return f"{capability}+AMX" if cpu_has_amx() else f"{capability}+bf16"


@functools.cache
def keep_freed_memory_mapped() -> bool:
    """Ask glibc to keep freed multi-MB blocks in the process instead of unmapping them.

    A training step allocates and frees the same large activations every step (a tiny proxy's MLP
    hidden state alone is 4 MB). Above glibc's mmap threshold each of them is a fresh mapping whose
    pages the kernel zero-fills on first touch: measured 3,600-5,500 page faults and about 8 ms of
    system time per tiny-preset step, against about 0 with these settings. PyTorch has no caching
    allocator on the CPU, so this is the allocator-level fix (what LD_PRELOADing jemalloc or
    tcmalloc would do), applied once per process that trains on a CPU. Returns whether it applied
    (False off glibc).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    mb = 1 << 20
    # 32 MB is glibc's largest allowed mmap threshold on 64-bit; blocks above it still map and unmap.
    return all(mallopt(opt, value) == 1 for opt, value in
               ((M_MMAP_THRESHOLD, 32 * mb), (M_TRIM_THRESHOLD, 256 * mb), (M_TOP_PAD, 64 * mb)))


def prepare_process(device: str) -> None:
    """Process-wide settings for training on `device` (see the module docstring and
    `keep_freed_memory_mapped`); TF32 on CUDA trades the last mantissa bits of fp32 matmuls for speed,
    which the seed noise of a proxy run dwarfs."""
    if device == "cpu":
        keep_freed_memory_mapped()
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast(device: str, precision: str):
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16")


def head_dtype(precision: str) -> torch.dtype:
    return torch.bfloat16 if precision == "bf16" else torch.float32
