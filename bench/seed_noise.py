"""How noisy a proxy's final loss is from seed to seed, and how many seeds a comparison therefore needs.

    python bench/seed_noise.py [--preset smoke] [--d-model 48] [--steps 600] [--seeds 4] [--store DIR]

Trains the uniform and the natural mixture for k seeds with one proxy config (through a run store, so
a second call with the same arguments trains nothing) and prints, for the mean validation loss:
each mixture's seed-to-seed standard deviation, the standard deviation of the paired difference
(same seed = same initialisation and data order), and with that paired spread the seeds a
validation needs to resolve a true gain of 0.02, 0.05 and 0.1 nats with 80% power
(`mixkit.validate.seeds_to_resolve`). This is the figure to plan a validation by: a gain below the
paired spread needs tens of seeds whatever the proxy's size. The last line is
`seed_sd_uniform=<x> seed_sd_natural=<y> paired_sd=<z> seeds_for_0.05=<n> config=<preset>-d<d>x<steps>`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--d-model", type=int, default=48)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--store", default="", help="run store to train into and reuse (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error(f"--seeds must be at least 2 to measure a spread, got {args.seeds}")

    from mixkit import corpus, tokens
    from mixkit.mixture import natural
    from mixkit.proxy import ProxyConfig
    from mixkit.validate import seeds_to_resolve, validate

    data = tokens.prepare(corpus.builtin(data_dir=REPO / "data", progress=False), progress=False)
    cfg = ProxyConfig.preset(args.preset, d_model=args.d_model, steps=args.steps,
                             eval_every=max(1, args.steps // 8))
    with tempfile.TemporaryDirectory() as tmp:
        v = validate({"natural": natural(data.token_counts)[0]}, cfg, data, args.store or tmp, baselines=("uniform",),
                     seeds=args.seeds, domains=data.domains, workers=args.workers, progress=True)
    losses = v.final.pivot_table(index="seed", columns="name", values="loss")
    paired = float(v.row("natural", "uniform").gain_sd)
    print(losses.round(4).to_string())
    sd = losses.std(ddof=1)
    print(f"{cfg.name} d{cfg.d_model} x {cfg.steps} steps, {args.seeds} seeds: seed sd uniform {sd['uniform']:.4f}, "
          f"natural {sd['natural']:.4f}; paired-difference sd {paired:.4f}")
    for gain in (0.02, 0.05, 0.1):
        print(f"  seeds to resolve a gain of {gain} nats (95% interval, 80% power): "
              f"{seeds_to_resolve(gain, paired):.0f}")
    print(f"seed_sd_uniform={sd['uniform']:.4f} seed_sd_natural={sd['natural']:.4f} paired_sd={paired:.4f} "
          f"seeds_for_0.05={seeds_to_resolve(0.05, paired):.0f} config={cfg.name}-d{cfg.d_model}x{cfg.steps}")


if __name__ == "__main__":
    main()
