"""What the online baselines cost next to one fixed-mixture run of the same steps, on the CPU.

    python bench/online_cost.py [--preset tiny] [--steps 140] [--repeats 3] [--threads 1]

One process, rounds alternating (fixed run, ODM run, DoReMi reference + DRO run) so a shared
machine's load hits all three alike; each cost is the median over rounds of the CPU time of
`train_proxy` (setup, training and evaluation; CPU rather than wall seconds so that other work on a
shared machine counts less). DoReMi's cost counts its reference run (a fixed
uniform run that also saves its checkpoint) plus the DRO proxy, whose every step also runs the
reference model forward. Runs shorter than the preset keep its share of evaluation work: eight
evaluations a run, each on `eval_tokens * steps / preset steps` tokens a domain (evaluation is the
same for all three, so more of it would pull the ratios towards 1). The last line is
`doremi_cost_ratio=<x> odm_cost_ratio=<y> preset=<preset>` (goals: DoReMi <= 2.5, ODM <= 1.1).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def timed(fn) -> float:
    """CPU seconds of this process spent in fn: on a machine shared with other work, wall time
    measures the neighbours as much as the run (one-thread runs: equal to wall time when idle)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def one_round(cfg, data, uniform, ckpt: Path) -> tuple[float, float, float]:
    """(fixed, ODM, DoReMi reference + DRO) CPU seconds of one round."""
    from mixkit.proxy import EXP3, DoReMi, train_proxy

    fixed = timed(lambda: train_proxy(cfg, uniform, data, progress=False))
    odm = timed(lambda: train_proxy(cfg, EXP3(), data, progress=False))
    ref = timed(lambda: train_proxy(cfg, uniform, data, save_checkpoint=ckpt, progress=False))
    dro = timed(lambda: train_proxy(cfg, DoReMi(ckpt), data, progress=False))
    return fixed, odm, ref + dro


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=140, help="steps per run (the ratios are per run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    from mixkit import corpus, tokens
    from mixkit.mixture import Mixture
    from mixkit.proxy import ProxyConfig

    torch.set_num_threads(args.threads)
    data = tokens.prepare(corpus.builtin(data_dir=REPO / "data", progress=False), progress=False)
    base = ProxyConfig.preset(args.preset)
    scale = min(1.0, args.steps / base.steps)
    cfg = base.replace(steps=args.steps, eval_every=max(1, round(base.eval_every * scale)), device="cpu",
                       eval_tokens=max(base.context_length, int(base.eval_tokens * scale)), threads=args.threads)
    uniform = Mixture(dict.fromkeys(data.domains, 1.0 / len(data.domains)), domains=data.domains)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            rows.append(one_round(cfg, data, uniform, Path(tmp) / "reference.pt"))
            print(f"round {r + 1}: fixed {rows[-1][0]:.1f}s  odm {rows[-1][1]:.1f}s  doremi {rows[-1][2]:.1f}s",
                  flush=True)
    fixed, odm, dore = (statistics.median(col) for col in zip(*rows))
    print(f"{args.preset} x {args.steps} steps, {args.threads} thread(s), precision {cfg.precision}: "
          f"fixed {fixed:.1f}s, odm {odm:.1f}s, doremi (reference + DRO) {dore:.1f}s (median CPU seconds)")
    print(f"doremi_cost_ratio={dore / fixed:.2f} odm_cost_ratio={odm / fixed:.2f} preset={args.preset}")


if __name__ == "__main__":
    main()
