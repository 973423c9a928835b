"""Fault drill: kill a proxy sweep at random moments, resume it, and count lost or repeated runs.

    python bench/fault_drill.py [--kills N] [--runs R] [--seed S] [--store DIR]

Each round starts the sweep in a fresh process group, waits a random time, and SIGKILLs either the
whole sweep (driver and workers) or one worker process mid-run. The next round resumes. After the
kills a final uninterrupted sweep finishes the plan. Then:

- lost: planned runs that are not finished in the store;
- duplicated: a run trained to completion more than once (its DONE marker replaced after it was
  first written), a (run, step, domain) row loaded twice, or a finished run outside the plan.

The last line is `runs=<n> lost=<l> duplicated=<d> kills=<k>`.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SWEEP = """
import sys
from mixkit import mixture, runs, tokens
from mixkit.proxy import ProxyConfig

if __name__ == "__main__":
    data = tokens.load(sys.argv[1])
    mixes = mixture.dirichlet(data.domains, n=int(sys.argv[3]), prior=data.token_share, rng=int(sys.argv[4]))
    cfg = ProxyConfig.preset("smoke", steps=40, eval_every=20, eval_tokens=2048, threads=1)
    runs.sweep(cfg, mixes, data, sys.argv[2], workers=2, progress=False)
"""


def children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


def planned_ids(token_root: str, n: int, seed: int) -> list[str]:
    from mixkit import mixture, runs, tokens
    from mixkit.proxy import ProxyConfig

    data = tokens.load(token_root)
    mixes = mixture.dirichlet(data.domains, n=n, prior=data.token_share, rng=seed)
    cfg = ProxyConfig.preset("smoke", steps=40, eval_every=20, eval_tokens=2048, threads=1)
    return [rid for rid, _, _ in runs.plan(cfg, mixes, data)]


def done_stamps(store: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in store.glob("*/DONE")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", help="run store (default: a fresh temporary folder)")
    args = parser.parse_args()

    from mixkit import corpus, runs, tokens

    data = tokens.prepare(corpus.builtin(data_dir=REPO / "data", progress=False), progress=False)
    store = Path(args.store or tempfile.mkdtemp(prefix="mixkit-drill-")) / "runs"
    script = store.parent / "sweep.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(SWEEP)
    cmd = [sys.executable, str(script), str(data.root), str(store), str(args.runs), str(args.seed)]
    plan = planned_ids(str(data.root), args.runs, args.seed)
    rng = random.Random(args.seed)
    first_done: dict[str, int] = {}
    replaced = set()

    def observe() -> None:
        for rid, stamp in done_stamps(store).items():
            if rid in first_done and first_done[rid] != stamp:
                replaced.add(rid)
            first_done.setdefault(rid, stamp)

    kills = 0
    t0 = time.perf_counter()
    while kills < args.kills:
        observe()
        if len(first_done) >= len(plan):
            break  # nothing left to interrupt
        proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # Kill at a random moment after this round has made some progress (a run finished), so
        # every round interrupts runs in flight instead of the interpreter start-up.
        before = runs.store_summary(store)["runs"]
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline and runs.store_summary(store)["runs"] == before:
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 4.0))
        if proc.poll() is None:
            workers = children(proc.pid)
            if workers and rng.random() < 0.4:
                os.kill(rng.choice(workers), signal.SIGKILL)  # one worker dies mid-run
                time.sleep(1.0)
            os.killpg(proc.pid, signal.SIGKILL)  # then the whole sweep
            kills += 1
        proc.wait()
        print(f"round {kills}: finished {runs.store_summary(store)['runs']}/{len(plan)}", flush=True)
    observe()
    final = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if final.returncode != 0:
        print(final.stdout[-2000:], final.stderr[-2000:], file=sys.stderr)
    observe()

    finished = set(runs.RunStore(store).finished())
    table = runs.load_runs(store)
    lost = len(set(plan) - finished)
    duplicated = (len(replaced) + int(table.duplicated(["run_id", "step", "domain"]).sum())
                  + len(finished - set(plan)))
    print(f"wall {time.perf_counter() - t0:.0f} s, store {store}")
    print(f"runs={len(finished & set(plan))} lost={lost} duplicated={duplicated} kills={kills}")


if __name__ == "__main__":
    main()
