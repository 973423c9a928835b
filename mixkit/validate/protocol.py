"""The validation protocol: train candidates and baselines on paired seeds, compare them with intervals.

`validate` trains every candidate mixture and every baseline (uniform and natural over the
candidates' domains by default) with one proxy config for k seeds, all through the run store: the
runs are cached and resumable, and a second call with the same arguments trains nothing. A seed
fixes the initialisation and the data order, so the runs of one seed are paired. The result
(`Validation`) holds the tidy losses, the per-mixture summary with seed spreads, and for every
mixture against every baseline the paired gain, its t interval, a verdict and the steps-equivalent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mixkit import runs
from mixkit.mixture import Mixture, natural, uniform
from mixkit.proxy import ProxyConfig, resolve_mixing
from mixkit.runs.store import as_store
from mixkit.table import target_loss
from mixkit.tokens import as_token_data
from mixkit.validate.stats import (TIE, StepsMatch, paired_interval, resolve_phrase, seeds_to_resolve, steps_phrase,
                                   steps_to_reach)

DEFAULT_BASELINES = ("uniform", "natural")


@dataclass
class Validation:
    """What `validate` measured. Losses in nats; `target` names what "loss" means (see `describe_target`).

    - ``runs``: one row per (mixture, seed): name, role ("candidate"/"baseline"), seed, run_id;
    - ``curves``: the target loss at every evaluated step of every run (name, seed, step, loss);
    - ``final``: each run's final losses: name, role, seed, loss (the target) and one column per domain;
    - ``summary``: per mixture, mean target loss and its seed spread (sd), per-domain means and sds;
    - ``comparisons``: per (mixture, baseline), the paired gain (baseline - mixture, positive = the
      mixture is better), its t interval, verdict, and steps-equivalent (see `mixkit.validate.stats`) with
      `steps_equivalent_low/high` read at the two ends of the gain's interval.
    """

    config: ProxyConfig
    seeds: list[int]
    target: object
    level: float
    domains: list[str]
    mixtures: dict[str, object]
    runs: pd.DataFrame
    curves: pd.DataFrame
    final: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    n_trained: int
    matches: dict[tuple[str, str], StepsMatch] = field(default_factory=dict, repr=False)

    @property
    def baselines(self) -> list[str]:
        return self.runs.loc[self.runs["role"] == "baseline", "name"].drop_duplicates().tolist()

    @property
    def candidates(self) -> list[str]:
        return self.runs.loc[self.runs["role"] == "candidate", "name"].drop_duplicates().tolist()

    def table(self) -> pd.DataFrame:
        """One tidy row per (mixture, baseline): the summary columns joined to the comparison."""
        return self.comparisons.merge(self.summary, on="name", how="left")

    def sentences(self) -> list[str]:
        """The verdicts in words, with their numbers (one line per mixture and baseline)."""
        return self.comparisons["sentence"].tolist()

    def markdown(self) -> str:
        """The verdicts as a Markdown list under the protocol's description (for a notebook's text)."""
        return f"Validation ({self.describe()}):\n\n" + "\n".join(f"- {line}" for line in self.sentences())

    def describe(self) -> str:
        text = (f"{len(self.seeds)} paired seeds {self.seeds}, {self.level:.0%} Student-t intervals over seeds, "
                f"target: {describe_target(self.target)}, proxy {self.config.name} "
                f"(d_model {self.config.d_model}, {self.config.steps} steps)")
        if self.config.schedule != "constant":
            # A mid-run point of a decaying learning rate is not the final loss of a shorter run.
            text += (f"; steps-equivalents are read from the baseline's own {self.config.schedule}-schedule curve, "
                     "so they approximate what a shorter run with its own decay would need")
        return text

    def leaderboard(self, extra: Mapping[str, Mapping] | None = None) -> list[dict]:
        """Flat rows, best loss first: method, loss, loss_sd, n_seeds, and per baseline B gain_vs_B,
        ci_low_vs_B, ci_high_vs_B, verdict_vs_B, steps_equivalent_vs_B (+ extrapolated flag);
        `extra` adds columns per mixture (e.g. its proxy compute). A baseline's gain over itself is 0."""
        rows = []
        for rec in self.summary.sort_values("loss").itertuples(index=False):
            row = {"method": rec.name, "loss": float(rec.loss), "loss_sd": float(rec.loss_sd),
                   "n_seeds": int(rec.n_seeds), "role": rec.role}
            for base in self.baselines:
                row.update(self._versus(rec.name, base))
            row.update(dict((extra or {}).get(rec.name, {})))
            rows.append(row)
        return rows

    def _versus(self, name: str, base: str) -> dict:
        if name == base:
            return {f"gain_vs_{base}": 0.0, f"ci_low_vs_{base}": 0.0, f"ci_high_vs_{base}": 0.0,
                    f"verdict_vs_{base}": "baseline", f"steps_equivalent_vs_{base}": 0.0,
                    f"steps_equivalent_low_vs_{base}": 0.0, f"steps_equivalent_high_vs_{base}": 0.0,
                    f"steps_extrapolated_vs_{base}": False, f"seeds_to_resolve_vs_{base}": math.nan}
        r = self.row(name, base)
        return {f"gain_vs_{base}": float(r.gain), f"ci_low_vs_{base}": float(r.ci_low),
                f"ci_high_vs_{base}": float(r.ci_high), f"verdict_vs_{base}": r.verdict,
                f"steps_equivalent_vs_{base}": float(r.steps_equivalent),
                f"steps_equivalent_low_vs_{base}": float(r.steps_equivalent_low),
                f"steps_equivalent_high_vs_{base}": float(r.steps_equivalent_high),
                f"steps_extrapolated_vs_{base}": bool(r.steps_extrapolated),
                f"seeds_to_resolve_vs_{base}": float(r.seeds_to_resolve)}

    def metrics(self, name: str, prefix: str = "") -> dict[str, float]:
        """Scalar metrics of one mixture for metrics.json: loss, loss_sd, n_seeds and, per baseline,
        gain_vs_B, ci_low_vs_B, ci_high_vs_B, steps_equivalent_vs_B (keys prefixed with `prefix`)."""
        rows = [r for r in self.leaderboard() if r["method"] == name]
        if not rows:
            raise KeyError(f"no mixture named {name!r}; validated: {list(self.mixtures)}")
        return {f"{prefix}{k}": int(v) if isinstance(v, bool) else v for k, v in rows[0].items()
                if isinstance(v, (int, float))}

    def row(self, name: str, baseline: str) -> pd.Series:
        hit = self.comparisons[(self.comparisons["name"] == name) & (self.comparisons["baseline"] == baseline)]
        if hit.empty:
            raise KeyError(f"no comparison of {name!r} with baseline {baseline!r}; have {self.baselines} as baselines")
        return hit.iloc[0]


def describe_target(target) -> str:
    if isinstance(target, Mapping):
        return "weighted validation loss " + ", ".join(f"{d} {w:g}" for d, w in target.items())
    if target == "mean":
        return "mean validation loss over the domains"
    return f"validation loss on {target}"


def validate(candidates, config: ProxyConfig, data, store, *, baselines=DEFAULT_BASELINES,
             seeds: int | Sequence[int] = 3, domains: Sequence[str] | None = None, target="mean",
             level: float = 0.95, workers: int | None = None, init_checkpoint=None,
             progress: bool = True) -> Validation:
    """Train `candidates` and `baselines` for every seed through the run store and compare them.

    candidates: {name: mixture} (a Mixture, a {domain: weight} dict, or anything `mixkit.runs.plan`
        accepts as a mixture) or a list of Mixtures (named by their `.name`).
    baselines: names "uniform" and/or "natural" (built over `domains`, natural from the corpus's token
        counts) and/or a {name: mixture} mapping; the default is both named ones.
    seeds: k (seeds 0..k-1) or the seeds themselves; the same seed pairs runs across mixtures.
    domains: the training domains of the baselines and the validation domains of the target;
        default: the domains the candidates put weight on, in corpus order.
    target: "mean" (mean validation loss over `domains`), one validation domain, or {domain: weight}.
    init_checkpoint: every run starts from this saved model (continual pretraining).
    """
    data = as_token_data(data)
    seed_list = _seed_list(seeds)
    cands = _named(candidates, data, "candidates", config.steps)
    doms = _domains(domains, cands, data)
    bases = _baselines(baselines, doms, data, config.steps)
    clash = sorted(set(cands) & set(bases))
    if clash:
        raise ValueError(f"candidate name(s) {clash} are also baseline names; rename them")
    _check_target(target, doms, data.domains)
    mixtures = {**cands, **bases}
    opts = dict(workers=workers, seeds=seed_list, init_checkpoint=init_checkpoint)
    trained = runs.sweep(config, _unique(mixtures.values()), data, store, progress=progress, **opts)
    if trained.failed:
        rid, err = next(iter(trained.failed.items()))
        raise RuntimeError(f"{len(trained.failed)} validation run(s) failed in {as_store(store).root}; first {rid}: {err}")
    table = _run_table(mixtures, set(cands), config, data, store, seed_list, opts)
    curves = _curves(table, store, target, doms)
    final = _final(curves, table, doms)
    comparisons, matches = _compare(final, curves, list(mixtures), list(bases), config, level)
    return Validation(config, seed_list, target, level, doms, mixtures, table, curves, final, _summary(final, doms),
                      comparisons, len(trained.trained), matches)


def _seed_list(seeds) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (or a list of seeds), got {seeds}")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    return out


def _named(mixtures, data, what: str, steps: int) -> dict[str, object]:
    """{name: mixture}; dicts of weights become Mixtures over the corpus domains. Each is checked as a
    run of `steps` steps would check it (unknown domains, schedules, policies), its name in the error."""
    if isinstance(mixtures, Mapping) and all(isinstance(v, (int, float)) for v in mixtures.values()):
        raise ValueError(f"{what} must map names to mixtures, got one mixture's weights {dict(mixtures)}; "
                         f"wrap it: {{'name': weights}}")
    if isinstance(mixtures, Mapping):
        items = list(mixtures.items())
    else:
        items = [(getattr(m, "name", None) or f"mixture {i}", m) for i, m in enumerate(mixtures)]
    if not items:
        raise ValueError(f"{what} is empty: give at least one mixture")
    out = {}
    for name, mix in items:
        if name in out:
            raise ValueError(f"{what}: two mixtures are named {name!r}; name them apart")
        if isinstance(mix, (list, tuple)) and mix and all(isinstance(m, Mixture) for m in mix):
            # natural(...) and uniform(...) return designs (lists); a phase schedule is (end, Mixture) pairs
            raise ValueError(f"{what[:-1]} {name!r} is a list of {len(mix)} Mixture(s), not a mixture: "
                             f"designs such as natural(...) and uniform(...) return lists; take one, e.g. [0]")
        try:
            mix = Mixture(mix, domains=data.domains, name=str(name)) if isinstance(mix, dict) else mix
            resolve_mixing(mix, data.domains, steps)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{what[:-1]} {name!r}: {exc}") from exc
        out[str(name)] = mix
    return out


def _domains(domains, cands: dict, data) -> list[str]:
    if domains is not None:
        doms = [domains] if isinstance(domains, str) else list(domains)
        unknown = [d for d in doms if d not in data.domains]
        if unknown or not doms:
            raise ValueError(f"domains {unknown or doms} are not domains of the corpus {data.domains}")
        return doms
    used = set()
    for mix in cands.values():
        weights = getattr(mix, "weights", None)
        used |= {d for d, w in weights.items() if w > 0} if isinstance(weights, Mapping) else set(data.domains)
    return [d for d in data.domains if d in used]


def _baselines(baselines, doms: list[str], data, steps: int) -> dict[str, object]:
    if isinstance(baselines, str):
        baselines = [baselines]
    if isinstance(baselines, Mapping):
        return _named(baselines, data, "baselines", steps)
    out = {}
    for b in baselines:
        if b == "uniform":
            out[b] = uniform(doms)[0]
        elif b == "natural":
            out[b] = natural({d: data.token_counts[d] for d in doms})[0]
        else:
            raise ValueError(f"baseline {b!r} is not 'uniform' or 'natural'; pass other baselines as {{name: mixture}}")
    if not out:
        raise ValueError("baselines is empty: a validation compares against at least one baseline")
    return out


def _check_target(target, doms: list[str], all_domains: list[str]) -> None:
    frame = pd.DataFrame([[1.0] * len(all_domains)], columns=all_domains)
    target_loss(frame[doms] if _is_mean(target) else frame, target)  # raises naming an unknown domain, before training


def _is_mean(target) -> bool:
    return isinstance(target, str) and target == "mean"


def _unique(mixtures) -> list:
    out, seen = [], []
    for m in mixtures:
        if not any(m is s for s in seen):
            seen.append(m)
            out.append(m)
    return out


def _run_table(mixtures: dict, cand_names: set, config, data, store, seeds, opts: dict) -> pd.DataFrame:
    """(name, role, seed, run_id) of every run; the ids come from the store (all finished: nothing trains)."""
    rows = []
    for name, mix in mixtures.items():
        ids = runs.sweep(config, mix, data, store, progress=False, **opts)
        role = "candidate" if name in cand_names else "baseline"
        rows += [{"name": name, "role": role, "seed": s, "run_id": rid} for s, rid in zip(seeds, ids)]
    return pd.DataFrame(rows)


def _curves(table: pd.DataFrame, store, target, doms: list[str]) -> pd.DataFrame:
    """Every run's evaluated curve: one row per (run, step) with each domain's loss and the target
    ("mean" is over `doms`; a named domain or a weighting may use any validation domain)."""
    store = as_store(store)
    frames = []
    for rec in table.itertuples(index=False):
        curve = store.read_curve(rec.run_id)
        wide = curve.pivot_table(index="step", columns="domain", values="loss", aggfunc="mean")
        wide.columns.name = None
        wide["loss"] = target_loss(wide[doms] if _is_mean(target) else wide, target).to_numpy()
        frames.append(wide.reset_index().assign(name=rec.name, role=rec.role, seed=rec.seed, run_id=rec.run_id))
    return pd.concat(frames, ignore_index=True)


def _final(curves: pd.DataFrame, table: pd.DataFrame, doms: list[str]) -> pd.DataFrame:
    last = curves[curves["step"] == curves.groupby("run_id")["step"].transform("max")]
    cols = ["name", "role", "seed", "run_id", "step", "loss"] + [d for d in doms if d in curves.columns]
    return last[cols].reset_index(drop=True)


def _summary(final: pd.DataFrame, doms: list[str]) -> pd.DataFrame:
    cols = ["loss"] + [d for d in doms if d in final.columns]
    g = final.groupby("name", sort=False)
    out = g[cols].mean().add_suffix("_mean").join(g[cols].std(ddof=1).add_suffix("_sd"))
    out = out.rename(columns={"loss_mean": "loss", "loss_sd": "loss_sd"})
    out.insert(0, "role", g["role"].first())
    out.insert(1, "n_seeds", g["seed"].nunique())
    return out.reset_index()


def _compare(final, curves, names: list[str], bases: list[str], config, level: float):
    """Every mixture against every other baseline: paired interval, verdict, steps-equivalent."""
    losses = final.pivot_table(index="seed", columns="name", values="loss")
    missing = [(n, int(seed)) for n in names for seed in losses.index if pd.isna(losses.at[seed, n])] \
        if set(names) <= set(losses.columns) else [(n, None) for n in names if n not in losses.columns]
    if missing:
        raise ValueError(f"no final loss for (mixture, seed) {missing}: every mixture needs a finished run per seed "
                         "to be paired")
    mean_curves = curves.groupby(["name", "step"])["loss"].mean()
    rows, matches = [], {}
    for base in bases:
        base_curve = mean_curves.loc[base]
        for name in names:
            if name == base:
                continue
            iv = paired_interval(losses[name].to_numpy(), losses[base].to_numpy(), level)
            match = _match(base_curve, float(losses[name].mean()))
            matches[(name, base)] = match
            row = _comparison_row(name, base, iv, match, config.steps)
            row.update(_steps_interval(base_curve, float(losses[base].mean()), iv, config.steps))
            rows.append(row)
    return pd.DataFrame(rows), matches


def _steps_interval(curve: pd.Series, base_loss: float, iv, steps: int) -> dict:
    """The steps-equivalent at the two ends of the gain's interval (the losses base - high and base - low)."""
    out = {}
    for key, gain in (("steps_equivalent_low", iv.low), ("steps_equivalent_high", iv.high)):
        s = _match(curve, base_loss - gain).steps if math.isfinite(gain) else math.nan
        out[key] = s / steps - 1.0 if math.isfinite(s) else s
    return out


def _match(curve: pd.Series, loss: float) -> StepsMatch:
    """Steps-equivalent from a baseline's mean curve; undetermined (NaN) when it was evaluated at
    fewer than 3 steps after step 0 (a config with eval_every = steps)."""
    if int((curve.index > 0).sum()) < 3:
        return StepsMatch(math.nan, False)
    return steps_to_reach(curve.index.to_numpy(), curve.to_numpy(), loss)


def _comparison_row(name: str, base: str, iv, match: StepsMatch, steps: int) -> dict:
    frac = match.steps / steps - 1.0 if math.isfinite(match.steps) else match.steps
    ci = "no interval" if iv.n < 2 else f"{iv.level:.0%} CI [{iv.low:+.4f}, {iv.high:+.4f}]"
    need = seeds_to_resolve(iv.gain, iv.sd, iv.level)
    sentence = (f"{name} vs {base}: {iv.verdict} (gain {iv.gain:+.4f} nats, {ci}, {iv.n} seeds"
                f"{resolve_phrase(need) if iv.verdict == TIE else ''}); "
                f"{steps_phrase(base, frac, match.extrapolated)}")
    return {"name": name, "baseline": base, "gain": iv.gain, "ci_low": iv.low, "ci_high": iv.high,
            "gain_sd": iv.sd, "n_seeds": iv.n, "verdict": iv.verdict, "seeds_to_resolve": need,
            "steps_needed": match.steps, "steps_equivalent": frac, "steps_extrapolated": match.extrapolated,
            "sentence": sentence}
