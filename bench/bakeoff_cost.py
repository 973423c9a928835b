"""What a preset's bake-off (notebook 00) costs on this machine, before anyone spends it.

    python bench/bakeoff_cost.py [--preset full] [--fraction 0.1] [--cores 2] [--emulate-avx2]

Reads the preset's `00_bakeoff` parameters (notebooks/presets/<preset>.yaml over the notebook's
defaults), counts the proxy runs the bake-off trains (design, the nested pipeline's smaller widths,
DoReMi's two proxies, every recommendation and baseline at the validation proxy for every seed),
times one single-threaded run of each distinct config on `--fraction` of its steps and on twice that
(evaluations included at their usual interval) and extrapolates to the whole run. The run count times the seconds is
the core time; divided by `--cores` (one run per core, as the sweeps train) it is the wall time with
nothing else running. DoReMi's Group-DRO proxy also runs its reference model forward; it is counted
as one plain run, so the figure is a slight underestimate. The last line is
`preset=<p> runs=<n> core_minutes=<c> wall_minutes_on_<k>_cores=<w> cpu=<kind>`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bakeoff_params(preset: str) -> dict:
    """The notebook's parameter defaults with the preset's overrides (as `mixkit report` runs it)."""
    from mixkit.report import load_preset, notebook_defaults, notebook_parameters

    defaults = notebook_defaults("00_bakeoff")
    return {**defaults, **notebook_parameters(load_preset(preset), "00_bakeoff", REPO / "reports", REPO / "data")}


def run_counts(p: dict) -> list[tuple[str, dict, int]]:
    """(role, config fields, runs) for every config the bake-off trains."""
    design = dict(preset=p["proxy"], d_model=p["d_model"], steps=p["steps"], eval_every=p["eval_every"],
                  eval_tokens=p["eval_tokens"])
    widths = [int(d) for d in str(p["nested_d_models"]).split(",") if d.strip()]
    n_candidates = 5 + (2 if p["online"] else 0)  # mixing law, nested, RegMix, BiMix, entropy (+ DoReMi, ODM)
    val = dict(preset=p["val_proxy"], d_model=p["val_d_model"], steps=p["val_steps"],
               eval_every=max(1, p["val_steps"] // 8), eval_tokens=p["eval_tokens"])
    rows = [("design", design, p["n_runs"])]
    # the nested pipeline trains every design mixture at each smaller width
    rows += [(f"nested d{w}", {**design, "d_model": w}, p["n_runs"]) for w in widths]
    if p["online"]:
        rows.append(("DoReMi (reference + DRO)", design, 2))
    rows.append((f"validation ({n_candidates} + 2 baselines) x {p['seeds']} seeds", val,
                 (n_candidates + 2) * p["seeds"]))
    return rows


def time_run(fields: dict, fraction: float) -> float:
    """Seconds of one single-threaded run of `fields`: after an untimed warm-up, timed at `fraction`
    of its steps and at twice that, and extrapolated along the line through the two (the setup and the
    step-0 evaluation are paid once, not per step)."""
    from mixkit import corpus, tokens
    from mixkit.mixture import uniform
    from mixkit.proxy import ProxyConfig, train_proxy

    data = tokens.prepare(corpus.builtin(data_dir=REPO / "data", progress=False), progress=False)
    full = ProxyConfig.preset(fields["preset"], **{k: v for k, v in fields.items() if k != "preset"}, threads=1)
    short = max(full.eval_every, round(full.steps * fraction))
    train_proxy(full.replace(steps=short), uniform(data.domains)[0], data, progress=False)  # warm-up, untimed
    seconds = []
    for steps in (short, 2 * short):
        start = time.perf_counter()
        train_proxy(full.replace(steps=steps), uniform(data.domains)[0], data, progress=False)
        seconds.append(time.perf_counter() - start)
    per_step = (seconds[1] - seconds[0]) / short
    return seconds[0] + per_step * (full.steps - short)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="full")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of each config's steps timed (and twice it)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--emulate-avx2", action="store_true", help="re-run under the AVX2-only kernel settings")
    args = parser.parse_args(argv)
    if not 0 < args.fraction <= 0.5:
        parser.error(f"--fraction must be in (0, 0.5], got {args.fraction}")
    if args.cores < 1:
        parser.error(f"--cores must be at least 1, got {args.cores}")
    from mixkit.proxy.device import AVX2_ONLY_ENV, cpu_kind

    if args.emulate_avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != AVX2_ONLY_ENV["ATEN_CPU_CAPABILITY"]:
        argv = sys.argv[1:] if argv is None else list(argv)
        sys.exit(subprocess.call([sys.executable, __file__, *argv], env={**os.environ, **AVX2_ONLY_ENV}))
    if args.emulate_avx2 and cpu_kind() != "AVX2":
        parser.error(f"--emulate-avx2: torch still sees {cpu_kind()!r}; this torch build ignores {AVX2_ONLY_ENV}")

    rows = run_counts(bakeoff_params(args.preset))
    seconds: dict[str, float] = {}
    total_runs, core_s = 0, 0.0
    print(f"{'role':<44} {'config':<26} {'runs':>5} {'s/run':>8} {'core-min':>9}")
    for role, fields, n in rows:
        key = json.dumps(fields, sort_keys=True)
        if key not in seconds:
            seconds[key] = time_run(fields, args.fraction)
        label = f"{fields['preset']} d{fields['d_model']} x {fields['steps']}"
        print(f"{role:<44} {label:<26} {n:>5} {seconds[key]:>8.1f} {n * seconds[key] / 60:>9.1f}", flush=True)
        total_runs += n
        core_s += n * seconds[key]
    wall = core_s / 60 / args.cores
    print(f"{args.preset} bake-off: {total_runs} proxy runs, {core_s / 60:.0f} core-minutes, about {wall:.0f} minutes "
          f"on {args.cores} cores with nothing else running (fits and figures not counted)")
    print(f"preset={args.preset} runs={total_runs} core_minutes={core_s / 60:.1f} "
          f"wall_minutes_on_{args.cores}_cores={wall:.1f} cpu={cpu_kind()}")


if __name__ == "__main__":
    main()
