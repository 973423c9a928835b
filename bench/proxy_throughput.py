"""Proxy training throughput against the machine's fp32 matmul peak.

    python bench/proxy_throughput.py                 # every CPU preset
    python bench/proxy_throughput.py --preset tiny   # one preset
    python bench/proxy_throughput.py --precision bf16 --threads 1

Measures the fp32 GEMM peak (a large square matmul), then trains each preset for a fixed number of
steps on the built-in token shards (random tokens when they are not built: throughput does not
depend on the text) and prints tokens/s, model FLOP/s (6 * matmul params * tokens plus the
attention term, see mixkit.proxy.model.flops_per_token) and their ratio to the fp32 peak.
The last line is `ratio_vs_fp32_peak=<x> tokens_per_s=<y> preset=<p>` for the default preset
("tiny", or the one given). Figures, not pass/fail: other processes on the machine move them.
"""

from __future__ import annotations

import argparse
import time
import types
from pathlib import Path

import numpy as np
import torch

from mixkit.mixture import Mixture
from mixkit.paths import data_dir
from mixkit.proxy.model import flops_per_token
from mixkit.proxy.train import ProxyConfig, resolve_precision, train_proxy

CPU_PRESETS = ("smoke", "tiny", "small", "base")
DEFAULT_PRESET = "tiny"


def gemm_gflops(n: int = 2048, dtype=torch.float32, repeats: int = 10) -> float:
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(CPU_PRESETS) + ["gpu-small", "gpu-100m"],
                        help="run only this preset (default: every CPU preset)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per preset")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: leave)")
    parser.add_argument("--tokens", help="token-shard folder (default: <data dir>/tokens/builtin-v4096)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    data, source = load_data(args.tokens)
    peak = gemm_gflops()
    peak_bf16 = gemm_gflops(dtype=torch.bfloat16)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), data: {source}")
    print(f"fp32 GEMM peak: {peak:,.0f} GFLOP/s   (bf16 GEMM: {peak_bf16:,.0f} GFLOP/s)")

    presets = [args.preset] if args.preset else list(CPU_PRESETS)
    mix = Mixture({d: 1 / len(data.domains) for d in data.domains}, domains=data.domains)
    print(f"{'preset':<10}{'N (non-emb)':>12}{'precision':>10}{'tokens/s':>11}{'GFLOP/s':>9}{'vs fp32 peak':>14}")
    results = {}
    for name in presets:
        # One short warm-up run, then the timed run; evaluation is kept to one batch per domain.
        base = ProxyConfig.preset(name, precision=args.precision)
        cfg = base.replace(steps=args.steps, eval_every=args.steps, eval_tokens=base.context_length * base.batch_size,
                           warmup=0.0)
        train_proxy(cfg.replace(steps=3, eval_every=3), mix, data, progress=False)
        res = train_proxy(cfg, mix, data, progress=False)
        fpt = flops_per_token(cfg.model_config(data.vocab_size))
        gflops = res.tokens_per_s * fpt / 1e9
        results[name] = (gflops / peak, res.tokens_per_s)
        print(f"{name:<10}{res.n_non_embedding:>12,}{resolve_precision(cfg, res.device):>10}"
              f"{res.tokens_per_s:>11,.0f}{gflops:>9.1f}{gflops / peak:>14.3f}", flush=True)
    last = args.preset or DEFAULT_PRESET
    ratio, tps = results[last]
    print(f"ratio_vs_fp32_peak={ratio:.4f} tokens_per_s={tps:.0f} preset={last}")


if __name__ == "__main__":
    main()
