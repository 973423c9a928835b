"""Where and in which precision a proxy trains, and the process-wide settings that make it fast.

`resolve_device` and `resolve_precision` turn "auto" into what this machine runs ("cuda" when a GPU
is present; bf16 on a GPU or a CPU with bf16 matmuls, else fp32); run ids hash the resolved values,
so runs of different precisions never share a cache entry. The process-wide settings (glibc malloc
thresholds on a CPU, TF32 matmuls on CUDA) are set here, by `prepare_process`, once per training
process, never on import.
"""

from __future__ import annotations

import ctypes
import functools

import torch

from mixkit.proxy.config import ProxyConfig

# "auto" precision on a CPU with bf16 matmuls: bf16 from this width up. With the chunked head
# (mixkit.proxy.head.head_cross_entropy) and fp32 attention, bf16 measured 2x fp32 at d64 x 2 on an
# avx512_bf16 CPU without AMX (bench/proxy_throughput.py), and tests/test_speed_equivalence.py shows
# its final losses within seed noise of fp32. Before the chunked head, bf16 did not pay below d128.
_CPU_BF16_MIN_D_MODEL = 1


def resolve_device(config: ProxyConfig) -> str:
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"ProxyConfig.device={config.device!r} but CUDA is not available")
    return config.device


def resolve_precision(config: ProxyConfig, device: str) -> str:
    if config.precision != "auto":
        return config.precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device == "cpu" and config.d_model >= _CPU_BF16_MIN_D_MODEL and _cpu_has_bf16():
        return "bf16"
    return "fp32"


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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
