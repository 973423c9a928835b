"""Sweep throughput (runs per hour) for different workers x threads-per-worker layouts, per CPU kind.

    python bench/sweep_throughput.py                         # 16 smoke runs, every layout filling the cores
    python bench/sweep_throughput.py --runs 8 --layouts 1x2 2x1 1x1 --preset smoke --steps 60
    python bench/sweep_throughput.py --emulate-avx2          # as an AVX2-only CPU (AMD EPYC Zen 3) runs it

Each layout trains the same `--runs` mixtures (Dirichlet draws) through `mixkit.runs.sweep` into a
fresh temporary store, and the runs per hour are timed from the call to its return (process start,
data loading, evaluation and store writes included: what a user waits for). Layouts alternate
`--repeats` times so that load from other processes hits them alike. `--layouts auto` (the default)
measures every WxT with W*T = the core count. Prints the CPU kind (mixkit.proxy.device.cpu_kind)
and the layout mixkit.runs.layout.choose_layout picks for it, and last
`best=<workers>x<threads> runs_per_hour=<r> cpu_kind=<k> chosen=<w>x<t>`: when best and chosen
differ across repeated measurements, update mixkit.runs.layout.MEASURED for that kind. Needs the
built-in token shards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from mixkit import mixture as mx
from mixkit.paths import data_dir
from mixkit.proxy import ProxyConfig
from mixkit.proxy.device import AVX2_ONLY_ENV, cpu_kind
from mixkit.runs import sweep
from mixkit.runs.layout import choose_layout


def runs_per_hour(config, mixtures, data_root, workers: int, threads: int) -> float:
    with tempfile.TemporaryDirectory(prefix="mixkit-sweep-bench-") as store:
        t = time.perf_counter()
        sweep(config, mixtures, data_root, store, workers=workers, threads_per_worker=threads, progress=False)
        return len(mixtures) * 3600 / (time.perf_counter() - t)


def all_layouts(cores: int) -> list[tuple[int, int]]:
    """Every workers x threads that fills the cores exactly, most workers first."""
    return [(cores // t, t) for t in range(1, cores + 1) if cores % t == 0]


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    parser.add_argument("--layouts", nargs="+", default=["auto"], help="WORKERSxTHREADS ... or auto")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--emulate-avx2", action="store_true",
                        help="measure in a child process (and workers) taking an AVX2-only CPU's code paths")
    parser.add_argument("--tokens", help="token-shard folder (default: <data dir>/tokens/builtin-v4096)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parse(argv)
    if args.emulate_avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != AVX2_ONLY_ENV["ATEN_CPU_CAPABILITY"]:
        # The libraries read these when they load: a fresh process, whose workers inherit them.
        sys.exit(subprocess.run([sys.executable, __file__, *argv], env={**os.environ, **AVX2_ONLY_ENV}).returncode)
    from mixkit import tokens

    root = args.tokens or str(data_dir() / "tokens" / "builtin-v4096")
    data = tokens.load(root)
    overrides = {"steps": args.steps} if args.steps else {}
    config = ProxyConfig.preset(args.preset, device="cpu", **overrides)
    mixtures = mx.dirichlet(data.domains, args.runs, rng=0)
    cores, kind, chosen = os.cpu_count() or 1, cpu_kind(), choose_layout()
    layouts = all_layouts(cores) if args.layouts == ["auto"] else [
        tuple(int(v) for v in s.split("x")) for s in args.layouts]
    print(f"CPU kind {kind}{' (emulated)' if args.emulate_avx2 else ''}, {cores} cores, chosen layout "
          f"{chosen[0]}x{chosen[1]}; {args.runs} runs of preset {args.preset} ({config.steps} steps), layouts "
          f"{' '.join(f'{w}x{t}' for w, t in layouts)}, {args.repeats} alternation(s)", flush=True)
    rates: dict[tuple[int, int], list[float]] = {lay: [] for lay in layouts}
    for _ in range(args.repeats):
        for w, t in layouts:
            rates[(w, t)].append(runs_per_hour(config, mixtures, root, w, t))
            print(f"  {w} worker(s) x {t} thread(s): {rates[(w, t)][-1]:,.0f} runs/hour", flush=True)
    med = {lay: statistics.median(r) for lay, r in rates.items()}
    best = max(med, key=med.get)
    for (w, t), r in med.items():
        print(f"{w}x{t}: median {r:,.0f} runs/hour ({r / med[best]:.2f} of best)")
    print(f"best={best[0]}x{best[1]} runs_per_hour={med[best]:.0f} cpu_kind={kind} chosen={chosen[0]}x{chosen[1]}")


if __name__ == "__main__":
    main()
