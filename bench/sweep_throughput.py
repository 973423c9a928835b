"""Sweep throughput (runs per hour) for different workers x threads-per-worker layouts.

    python bench/sweep_throughput.py                         # 16 smoke runs, layouts 1x2 and 2x1
    python bench/sweep_throughput.py --runs 8 --layouts 1x2 2x1 1x1 --preset smoke --steps 60

Each layout trains the same `--runs` mixtures (Dirichlet draws) through `mixkit.runs.sweep` into a
fresh temporary store, and the runs per hour are timed from the call to its return (process start,
data loading, evaluation and store writes included: what a user waits for). Layouts alternate
`--repeats` times so that load from other processes hits them alike. Prints the best layout last:
`best=<workers>x<threads> runs_per_hour=<r>`. Needs the built-in token shards.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from mixkit import mixture as mx
from mixkit.paths import data_dir
from mixkit.proxy import ProxyConfig
from mixkit.runs import sweep


def runs_per_hour(config, mixtures, data_root, workers: int, threads: int) -> float:
    with tempfile.TemporaryDirectory(prefix="mixkit-sweep-bench-") as store:
        t = time.perf_counter()
        sweep(config, mixtures, data_root, store, workers=workers, threads_per_worker=threads, progress=False)
        return len(mixtures) * 3600 / (time.perf_counter() - t)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    parser.add_argument("--layouts", nargs="+", default=["1x2", "2x1"], help="WORKERSxTHREADS")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tokens", help="token-shard folder (default: <data dir>/tokens/builtin-v4096)")
    args = parser.parse_args(argv)

    from mixkit import tokens

    root = args.tokens or str(data_dir() / "tokens" / "builtin-v4096")
    data = tokens.load(root)
    overrides = {"steps": args.steps} if args.steps else {}
    config = ProxyConfig.preset(args.preset, device="cpu", **overrides)
    mixtures = mx.dirichlet(data.domains, args.runs, rng=0)
    layouts = [tuple(int(v) for v in s.split("x")) for s in args.layouts]
    print(f"{args.runs} runs of preset {args.preset} ({config.steps} steps), layouts {args.layouts}, "
          f"{args.repeats} alternation(s)")
    rates: dict[tuple[int, int], list[float]] = {lay: [] for lay in layouts}
    for _ in range(args.repeats):
        for w, t in layouts:
            rates[(w, t)].append(runs_per_hour(config, mixtures, root, w, t))
            print(f"  {w} worker(s) x {t} thread(s): {rates[(w, t)][-1]:,.0f} runs/hour", flush=True)
    med = {lay: statistics.median(r) for lay, r in rates.items()}
    best = max(med, key=med.get)
    for (w, t), r in med.items():
        print(f"{w}x{t}: median {r:,.0f} runs/hour ({r / med[best]:.2f} of best)")
    print(f"best={best[0]}x{best[1]} runs_per_hour={med[best]:.0f}")


if __name__ == "__main__":
    main()
