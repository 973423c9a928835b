"""Prove a recommendation: candidates against baselines on paired seeds, with intervals and compute.

stats (paired t intervals, verdicts, steps-equivalent from a curve and a step law) -> protocol
(`validate`: train through the run store, compare) -> compute (runs and FLOPs a method spent) ->
methods (each method's recommendation from shared runs) -> bakeoff (all of them on one budget) ->
figures (losses with intervals; curves with the steps-equivalent marked; compute against gain).
"""

from mixkit.validate.compute import proxy_compute, run_flops
from mixkit.validate.figures import plot_compute_vs_gain, plot_gains, plot_steps_equivalent
from mixkit.validate.protocol import DEFAULT_BASELINES, Validation, describe_target, validate
from mixkit.validate.stats import (BETTER, TIE, WORSE, PairedInterval, StepsMatch, paired_interval, seeds_to_resolve,
                                   steps_phrase, steps_to_reach, verdict)

__all__ = ["BETTER", "DEFAULT_BASELINES", "TIE", "WORSE", "PairedInterval", "StepsMatch", "Validation",
           "describe_target", "paired_interval", "plot_compute_vs_gain", "plot_gains", "plot_steps_equivalent",
           "proxy_compute", "run_flops", "seeds_to_resolve", "steps_phrase", "steps_to_reach", "validate", "verdict"]
