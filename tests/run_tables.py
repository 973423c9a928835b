"""A synthetic run table (mixkit.table schema) for the tests of the table contract and of bad input."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def synthetic_run_table(n_runs: int = 6, train_domains: Sequence[str] = ("code", "docs", "math"),
                        val_domains: Sequence[str] = ("code", "docs"),
                        steps: Sequence[int] = (100, 200, 400, 800)) -> pd.DataFrame:
    """`n_runs` runs on Dirichlet(1) mixtures (seed 0) over `train_domains`, each recording every step
    for every validation domain; rows in (run, step, domain) order with index 0..n-1.

    loss = 2 + 5 / sqrt(step) + 0.3 * (weight of the first training domain) + 0.1 * (validation domain's
    position): a step law per run, a mixture effect, and a gap between domains.
    """
    rng = np.random.default_rng(0)
    rows = []
    for r in range(n_runs):
        w = rng.dirichlet(np.ones(len(train_domains)))
        for step in steps:
            for j, dom in enumerate(val_domains):
                rows.append({"run_id": f"run{r}", "model_size": 1_000_000, "step": step, "tokens": step * 4096,
                             "domain": dom, "loss": 2.0 + 5.0 / step ** 0.5 + 0.3 * w[0] + 0.1 * j,
                             "seed": 0, "config_hash": "abc",
                             **{f"w:{d}": w[i] for i, d in enumerate(train_domains)}})
    return pd.DataFrame(rows)
