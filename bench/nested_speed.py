"""Wall time of the nested pipeline on a run set of the issue's shape: 80 runs x 11 steps x 22
validation domains (20 mixtures x 4 sizes of the released 5Mix runs), predicting 1B at step 100k.

    python bench/nested_speed.py [--peer-data ../shared/peer-data] [--bootstrap 50] [--sample 40]

Prints the pipeline's wall time (step and size laws fitted as arrays, mixing law with 256 batched
starts), the same with a chained bootstrap, and, measured in the same process, the cost of the
former one-fit-per-curve step and size stages (multi-start L-BFGS-B StepLaw/SizeLaw with
n_starts=4/8 on `--sample` curves, scaled to all 1,760 + 440 curves), so the ratio does not depend
on how loaded the machine is.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from mixkit import published
from mixkit.laws import SizeLaw, StepLaw, nested_prediction

REPO = Path(__file__).resolve().parents[1]


def run_set(peer: Path, n_mix: int = 20, n_steps: int = 11):
    """20 mixtures x 4 sizes (70M-410M), 11 steps each (evenly spread over the run's steps >= 3000)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mix5 = published.load_mixinglaws(peer / "mixinglaws" / "5Mix", sizes=["70M", "160M", "305M", "410M"],
                                         include_holdout=False)
    mixes = sorted(mix5["mix_id"].unique())[:n_mix]
    part = mix5[mix5["mix_id"].isin(mixes)]
    keep = []
    for _, run in part.groupby("run_id"):
        steps = np.sort(run["step"].unique())
        pick = steps[np.unique(np.linspace(0, len(steps) - 1, n_steps).round().astype(int))]
        keep.append(run[run["step"].isin(pick)])
    import pandas as pd
    return pd.concat(keep, ignore_index=True)


def old_stage_cost(table, n_sample: int) -> float:
    """Seconds the former per-curve fits would take for every step and size curve of `table`."""
    curves = list(table.groupby(["run_id", "domain"]))
    rng = np.random.default_rng(0)
    picks = rng.choice(len(curves), size=min(n_sample, len(curves)), replace=False)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in picks:
            g = curves[i][1].sort_values("step")
            StepLaw(n_starts=4, random_state=0).fit(g["step"].to_numpy(float), g["loss"].to_numpy(float))
        per_step = (time.perf_counter() - t0) / len(picks)
        x = np.array([18.9e6, 85.1e6, 201.5e6, 302.3e6])
        t1 = time.perf_counter()
        for i in range(10):
            SizeLaw(n_starts=8, random_state=0).fit(x, 2.5 + 30 * x ** -0.3 * (1 + 0.001 * i))
        per_size = (time.perf_counter() - t1) / 10
    n_mix = table["mix_id"].nunique() * table["domain"].nunique()
    return per_step * len(curves) + per_size * n_mix


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-data", type=Path, default=REPO.parent / "shared" / "peer-data")
    ap.add_argument("--bootstrap", type=int, default=50)
    ap.add_argument("--sample", type=int, default=40, help="curves timed with the former per-curve fits")
    args = ap.parse_args(argv)
    table = run_set(args.peer_data)
    shape = (table["run_id"].nunique(), int(table.groupby("run_id")["step"].nunique().median()), table["domain"].nunique())
    print(f"run set: {shape[0]} runs x {shape[1]} steps x {shape[2]} validation domains, target 1B at step 100,000")
    timings = {}
    for boot in (0, args.bootstrap):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = nested_prediction(table, target_step=100_000, target_size="1B", bootstrap=boot, progress=False)
        timings[boot] = time.perf_counter() - t0
        print(f"nested_prediction (bootstrap={boot}): {timings[boot]:.1f} s wall; "
              f"{len(res.step_fits)} step fits, {len(res.size_fits)} size fits, {len(res.domains)} mixing-law domains")
    old = old_stage_cost(table, args.sample)
    print(f"former per-curve step+size stages (estimated from {args.sample} timed curves): {old:.0f} s; "
          f"whole new pipeline is {old / timings[0]:.0f}x faster than those stages alone")
    print("N used:\n" + res.sizes.to_string(index=False))


if __name__ == "__main__":
    main()
