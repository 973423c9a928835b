"""The trainer's CUDA path end to end, on a machine with a GPU: `device="auto"` resolves to cuda.

    python bench/cuda_path.py [--tokens <token folder>]

1. `train_proxy` of the full preset's validation proxy (tiny d96 x 1400, uniform mixture) for seeds 0
   and 1: the resolved device and precision, the final mean validation loss (compare it with the
   same CPU run in the store) and the wall time (the first includes CUDA start-up);
2. a sweep of 3 seeds (350 steps) through a run store in a temporary folder, then the same sweep
   again, which must train nothing (cached by run id; a cuda run's id hashes device and precision).
Figures, not pass/fail; it stops with a clear error where no GPU is present.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from mixkit import tokens
from mixkit.mixture import uniform
from mixkit.paths import data_dir
from mixkit.proxy import ProxyConfig, train_proxy
from mixkit.proxy.identity import config_hash
from mixkit.runs import sweep


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", help="token-shard folder (default: <data dir>/tokens/builtin-v4096)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench/cuda_path.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    data = tokens.load(args.tokens or data_dir() / "tokens" / "builtin-v4096")
    u = uniform(data.domains)[0]
    cfg = ProxyConfig.preset("tiny", d_model=96, steps=1400, eval_every=175, eval_tokens=32768)
    print("torch", torch.__version__, torch.cuda.get_device_name(0), "config hash", config_hash(cfg))
    for s in (0, 1):
        t = time.time()
        r = train_proxy(cfg.replace(seed=s), u, data)
        final = r.curve[r.curve.step == r.curve.step.max()]["loss"].mean()
        print(f"train_proxy tiny-d96x1400 seed {s}: device={r.device} precision={r.precision} "
              f"final mean val loss={final:.4f} {time.time() - t:.1f}s", flush=True)
    with tempfile.TemporaryDirectory() as store:
        short = cfg.replace(steps=350, eval_every=175)
        t = time.time()
        first = sweep(short, [u], data, store, seeds=[0, 1, 2], progress=False)
        print(f"sweep on cuda: {len(first)} runs, failed {len(first.failed)}, {time.time() - t:.1f}s", flush=True)
        t = time.time()
        again = sweep(short, [u], data, store, seeds=[0, 1, 2], progress=False)
        print(f"the same sweep again: {len(again.trained)} trained, {time.time() - t:.1f}s")


if __name__ == "__main__":
    main()
