"""Proxy training throughput against the machine's matmul peak and against a plain PyTorch GPT.

    python bench/proxy_throughput.py                  # every CPU preset
    python bench/proxy_throughput.py --preset tiny    # one preset
    python bench/proxy_throughput.py --precision fp32 --threads 1
    python bench/proxy_throughput.py --emulate-avx2 --preset tiny     # an AVX2-only CPU's code paths
    python bench/proxy_throughput.py --device cuda --preset gpu-100m   # MFU on a GPU

All figures come from one process, and each comparison is alternated so that whatever else loads
the machine (it is a shared VM whose speed drifts by 20-30% from minute to minute) hits both sides:
1. a plain nn.Module tiny GPT (d128 x 2 layers, vocab 4096, tied head, batch 32 x 128; fp32,
   F.cross_entropy on full logits, torch.optim.AdamW) against mixkit's trainer on the same shape,
   alternated `--repeats` times; the speed-up is the ratio of their median tokens/s;
2. each preset in `--repeats` rounds; a round measures the fp32 and bf16 GEMM peaks (a 2048^2
   square matmul, best of 5; the bf16 one only where the CPU has native bf16) and right after them trains the preset for `--steps` timed steps (after
   a short warm-up run). A round's ratio is the model FLOP/s (6 * matmul params * tokens plus the
   attention term, mixkit.proxy.model.flops_per_token) over that round's peak; the table gives the
   median over rounds and the range.
The last line is `ratio_vs_fp32_peak=<x> tokens_per_s=<y> preset=<p> cpu_kind=<k> precision=<q>`
(medians over rounds) for the default preset ("tiny", or the one given); cpu_kind is
mixkit.proxy.device.cpu_kind() (AVX2, AVX512+bf16, AVX512+AMX), "emulated" follows it under
`--emulate-avx2`, which re-runs the bench in a child process whose torch, MKL and oneDNN take an
AVX2-only CPU's code paths (ATen AVX2 kernels, AVX2 GEMMs, no bf16: what an AMD EPYC Zen 3 runs). Data: the built-in token shards, or random tokens when
they are not built (throughput does not depend on the text). Figures, not pass/fail.

`--device cuda` trains on the GPU instead and times the GEMM peaks there (8192^2, synchronised). It
skips the plain CPU baseline, and its last line is
`mfu_vs_bf16_peak=<x> tokens_per_s=<y> preset=<p> device=cuda`: the model FLOP/s over the measured
bf16 GEMM peak. The default preset there is gpu-100m.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mixkit.mixture import Mixture
from mixkit.paths import data_dir
from mixkit.proxy import ProxyConfig, train_proxy
from mixkit.proxy.device import AVX2_ONLY_ENV, cpu_has_bf16, cpu_kind
from mixkit.proxy.model import flops_per_token
from mixkit.proxy.sampler import MixtureSampler

CPU_PRESETS = ("smoke", "tiny", "small", "base")
DEFAULT_PRESET = "tiny"
BASELINE_SHAPE = dict(d_model=128, n_layers=2, n_heads=4, context_length=128, batch_size=32)


def gemm_gflops(n: int = 2048, dtype=torch.float32, repeats: int = 5, device: str = "cpu") -> float:
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def synthetic_data(vocab_size: int = 4096, n_domains: int = 4, tokens: int = 400_000):
    """A TokenData stand-in with random tokens: same shapes and costs, no corpus needed."""
    rng = np.random.default_rng(0)
    doms = [f"d{i}" for i in range(n_domains)]
    return types.SimpleNamespace(
        root=None, domains=doms, vocab_size=vocab_size, eot_id=vocab_size - 1, fingerprint="synthetic",
        train={d: rng.integers(0, vocab_size, tokens, dtype=np.uint16) for d in doms},
        val={d: rng.integers(0, vocab_size, 20_000, dtype=np.uint16) for d in doms},
    )


def load_data(path: str | None):
    root = Path(path) if path else data_dir() / "tokens" / "builtin-v4096"
    if (root / "manifest.json").is_file():
        from mixkit import tokens

        return tokens.load(root), str(root)
    return synthetic_data(), "synthetic random tokens"


# ---------------------------------------------------------------------------- the plain baseline


class PlainGPT(nn.Module):
    """The straightforward fp32 GPT anyone would write first: the reference the trainer must beat."""

    def __init__(self, vocab: int, d: int, layers: int, heads: int, context: int):
        super().__init__()
        self.heads = heads
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(nn.ModuleDict(dict(
            ln1=nn.LayerNorm(d), qkv=nn.Linear(d, 3 * d), proj=nn.Linear(d, d),
            ln2=nn.LayerNorm(d), fc=nn.Linear(d, 4 * d), out=nn.Linear(4 * d, d))) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(T))
        for b in self.blocks:
            q, k, v = b["qkv"](b["ln1"](x)).view(B, T, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + b["proj"](y.transpose(1, 2).reshape(B, T, -1))
            x = x + b["out"](F.gelu(b["fc"](b["ln2"](x))))
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def plain_tokens_per_s(data, mixture, steps: int, seed: int = 0) -> float:
    s = BASELINE_SHAPE
    torch.manual_seed(seed)
    model = PlainGPT(data.vocab_size, s["d_model"], s["n_layers"], s["n_heads"], s["context_length"])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sampler = MixtureSampler(data, mixture, s["batch_size"], s["context_length"], seed=seed)
    elapsed = 0.0
    for step in range(steps + 2):  # two untimed warm-up steps
        t = time.perf_counter()
        x, y = sampler.next_batch()
        loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step >= 2:
            elapsed += time.perf_counter() - t
    return steps * s["batch_size"] * s["context_length"] / elapsed


def mixkit_result(data, mixture, steps: int, precision: str, device: str = "cpu", **shape):
    base = ProxyConfig(**shape, precision=precision, device=device)
    cfg = base.replace(steps=steps, eval_every=steps, eval_tokens=base.context_length * base.batch_size,
                       warmup=0.0)
    train_proxy(cfg.replace(steps=2, eval_every=2), mixture, data, progress=False)  # warm-up
    return train_proxy(cfg, mixture, data, progress=False)


def rerun_as_avx2(argv) -> int:
    """Run this bench again in a child process that sees the CPU as AVX2-only; returns its exit code."""
    env = {**os.environ, **AVX2_ONLY_ENV}
    return subprocess.run([sys.executable, __file__, *argv], env=env).returncode


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(CPU_PRESETS) + ["gpu-small", "gpu-100m"],
                        help="run only this preset (default: every CPU preset)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--repeats", type=int, default=5,
                        help="alternations of plain vs mixkit, and peak-then-preset rounds per preset")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: leave)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="train on the CPU (default) or the GPU (MFU against its bf16 GEMM peak)")
    parser.add_argument("--emulate-avx2", action="store_true",
                        help="measure in a child process that takes an AVX2-only CPU's code paths "
                             f"({' '.join(f'{k}={v}' for k, v in AVX2_ONLY_ENV.items())})")
    parser.add_argument("--tokens", help="token-shard folder (default: <data dir>/tokens/builtin-v4096)")
    return parser, parser.parse_args(argv)


def plain_vs_mixkit(data, mix, steps: int, repeats: int, precision: str) -> float:
    """Alternate the plain baseline and the trainer on the same shape; print and return the speed-up."""
    plain, fast = [], []
    for _ in range(repeats):
        plain.append(plain_tokens_per_s(data, mix, steps))
        res = mixkit_result(data, mix, steps, precision, **BASELINE_SHAPE)
        fast.append(res.tokens_per_s)
    p, f = statistics.median(plain), statistics.median(fast)
    print(f"plain fp32 GPT d128x2 (batch 32x128): {p:,.0f} tokens/s   mixkit trainer, same shape "
          f"({res.precision}): {f:,.0f} tokens/s   speed-up {f / p:.2f}x  (median of {repeats} alternations)")
    return f / p


def preset_row(name: str, data, mix, args, with_bf16_peak: bool) -> tuple[float, float, float, str]:
    """`--repeats` rounds of (GEMM peaks, then the preset); prints the row and returns the medians
    (ratio vs fp32 peak, ratio vs bf16 peak or nan, tokens/s) and the precision used."""
    base = ProxyConfig.preset(name, precision=args.precision)
    shape = {k: getattr(base, k) for k in ("d_model", "n_layers", "n_heads", "context_length", "batch_size")}
    fpt = flops_per_token(base.model_config(data.vocab_size))
    n = 8192 if args.device == "cuda" else 2048  # GEMM size of the peak measurement
    rounds = []  # (fp32 peak, bf16 peak, tokens/s), peaks measured right before the run they divide
    for _ in range(args.repeats):
        bf16 = gemm_gflops(n, torch.bfloat16, device=args.device) if with_bf16_peak else float("nan")
        peaks = (gemm_gflops(n, device=args.device), bf16)
        res = mixkit_result(data, mix, args.steps, args.precision, args.device, **shape)
        rounds.append((*peaks, res.tokens_per_s))
    ratios = [tps * fpt / 1e9 / peak for peak, _, tps in rounds]
    ratio_bf16 = statistics.median(tps * fpt / 1e9 / peak for _, peak, tps in rounds)
    tps = statistics.median(r[2] for r in rounds)
    ratio = statistics.median(ratios)
    print(f"{name:<8}{res.n_non_embedding:>12,}{res.precision:>10}{tps:>10,.0f}"
          f"{tps * fpt / 1e9:>9.1f}{statistics.median(r[0] for r in rounds):>10.0f}"
          f"{f'{ratio:.3f} ({min(ratios):.2f}-{max(ratios):.2f})':>23}{ratio_bf16:>13.3f}", flush=True)
    return ratio, ratio_bf16, tps, res.precision


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, args = _parse(argv)
    if args.emulate_avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != AVX2_ONLY_ENV["ATEN_CPU_CAPABILITY"]:
        sys.exit(rerun_as_avx2(argv))
    on_gpu = args.device == "cuda"
    if on_gpu and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    kind = torch.cuda.get_device_name() if on_gpu else cpu_kind()
    if args.emulate_avx2 and kind != "AVX2":
        parser.error(f"--emulate-avx2: torch still sees {kind!r}; this torch build ignores {AVX2_ONLY_ENV}")
    if args.threads:
        torch.set_num_threads(args.threads)
    data, source = load_data(args.tokens)
    # A CPU without native bf16 emulates bf16 GEMMs at ~1/50 of fp32: its peak is not worth timing.
    with_bf16_peak = on_gpu or cpu_has_bf16()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), data: {source}; "
          f"{'GPU' if on_gpu else 'CPU kind'}: {kind}{'' if with_bf16_peak else ' (no native bf16: bf16 peak skipped)'}")
    mix = Mixture({d: 1 / len(data.domains) for d in data.domains}, domains=data.domains)
    speedup = None if on_gpu else plain_vs_mixkit(data, mix, args.steps, args.repeats, args.precision)
    presets = [args.preset] if args.preset else (["gpu-100m"] if on_gpu else list(CPU_PRESETS))
    print(f"{'preset':<8}{'N (non-emb)':>12}{'precision':>10}{'tokens/s':>10}{'GFLOP/s':>9}"
          f"{'fp32 peak':>10}{'vs fp32 peak (range)':>23}{'vs bf16 peak':>13}")
    results = {name: preset_row(name, data, mix, args, with_bf16_peak) for name in presets}
    last = args.preset or ("gpu-100m" if on_gpu else DEFAULT_PRESET)
    ratio, ratio_bf16, tps, precision = results[last]
    if on_gpu:
        print(f"mfu_vs_bf16_peak={ratio_bf16:.4f} tokens_per_s={tps:.0f} preset={last} device=cuda "
              f"precision={precision}")
        return
    print(f"speedup_vs_plain={speedup:.2f} ratio_vs_bf16_peak={ratio_bf16:.4f}")
    print(f"ratio_vs_fp32_peak={ratio:.4f} tokens_per_s={tps:.0f} preset={last} cpu_kind={kind} "
          f"precision={precision}{' emulated' if args.emulate_avx2 else ''}")


if __name__ == "__main__":
    main()
