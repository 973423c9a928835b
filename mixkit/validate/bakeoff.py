"""The bake-off: every method's recommendation from one budget of proxy runs, validated together.

One design (uniform, natural and Dirichlet mixtures around the corpus's token shares) is trained
once at the methods' proxy; the mixing law, RegMix and BiMix all fit on those runs, the nested
pipeline adds the same mixtures at smaller widths, the entropy mixture needs no runs, and any
other recommendation (DoReMi, ODM) can be added. Then every recommendation is trained with the
uniform and natural baselines at a validation proxy at least as large, on paired seeds
(`mixkit.validate.protocol`), and each method's proxy compute is counted from the store.

The fitted methods' answers are remembered in the store (`.recommendations/`, keyed by the design
runs and every setting): a fit is reproducible only up to floating-point summation order (numpy's
reductions depend on memory alignment), and a last-bit change moves a flat optimum by about 1e-5,
which is a new mixture and so a new set of validation runs. With the answers remembered, a second
bake-off trains nothing. Delete that folder to refit (after changing a method's code, say).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pandas as pd

from mixkit import runs
from mixkit.mixture import Mixture, dirichlet, natural, uniform
from mixkit.proxy import ProxyConfig, param_counts
from mixkit.paths import json_digest, write_json
from mixkit.runs.store import as_store
from mixkit.table import select_runs, validate_table
from mixkit.tokens import as_token_data
from mixkit.validate import methods
from mixkit.validate.compute import proxy_compute
from mixkit.validate.protocol import Validation, validate
from mixkit.validate.stats import resolve_phrase


@dataclass
class BakeOff:
    """Recommendations (method -> `methods.Recommendation`), their validation, and their compute."""

    recommendations: dict[str, methods.Recommendation]
    validation: Validation
    compute: pd.DataFrame  # method, proxy_runs, proxy_flops, note
    averaged: dict[str, dict[str, float]] = field(default_factory=dict)  # a policy's weights, averaged over its runs

    def leaderboard(self) -> list[dict]:
        """Flat rows, best loss first: the validation's columns plus proxy_runs, proxy_flops, note."""
        extra = self.compute.set_index("method")[["proxy_runs", "proxy_flops", "note"]].to_dict("index")
        for base in self.validation.baselines:
            extra.setdefault(base, {"proxy_runs": 0, "proxy_flops": 0.0, "note": "baseline"})
        return self.validation.leaderboard(extra)

    @property
    def winner(self) -> str:
        """The method with the lowest mean validated loss (baselines are not methods)."""
        rows = [r for r in self.leaderboard() if r["role"] == "candidate"]
        return rows[0]["method"]

    def weights(self) -> pd.DataFrame:
        """Each recommendation's mixture weights (methods x domains; dynamic ones as their averages)."""
        out = {m: self.averaged.get(m) or getattr(r.mixture, "weights", {}) for m, r in self.recommendations.items()}
        return pd.DataFrame(out).T.fillna(0.0)

    def metrics(self) -> dict:
        """metrics.json: per method `<slug>_gain_vs_uniform`, `_ci_low_vs_uniform`, ... and the leaderboard."""
        out: dict = {"leaderboard": self.leaderboard(), "winner": self.winner,
                     "n_seeds": len(self.validation.seeds), "methods": {}}
        for row in out["leaderboard"]:
            flat = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            out["methods"][row["method"]] = flat
            out.update({f"{slug(row['method'])}_{k}": v for k, v in flat.items()})
        return out


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def design(doms: Sequence[str], data, n_runs: int, seed: int = 0) -> list[Mixture]:
    """Uniform, natural, and n_runs - 2 Dirichlet mixtures around the token shares of `doms`."""
    if n_runs < 3:
        raise ValueError(f"n_runs must be at least 3 (uniform, natural and one Dirichlet mixture), got {n_runs}")
    counts = {d: data.token_counts[d] for d in doms}
    return [uniform(doms)[0], natural(counts)[0]] + dirichlet(list(doms), n_runs - 2, prior=counts, rng=seed)


def check_validation_proxy(config: ProxyConfig, val_config: ProxyConfig) -> None:
    """The validation proxy must be at least as large and as long as the methods' proxy."""
    small = [f for f in ("d_model", "n_layers", "steps") if getattr(val_config, f) < getattr(config, f)]
    if small:
        raise ValueError(f"the validation proxy must be at least as large as the methods' proxy; its {small} are "
                         f"smaller ({[getattr(val_config, f) for f in small]} < {[getattr(config, f) for f in small]})")


def bake_off(config: ProxyConfig, val_config: ProxyConfig, data, store, doms: Sequence[str], *, n_runs: int = 8,
             nested_d_models: Sequence[int] = (16, 24), nested_mixtures: int = 0, seeds=3,
             extra: Mapping[str, methods.Recommendation] | None = None, workers: int | None = None, seed: int = 0,
             n_samples: int = 100_000, top_k: int = 128, cv_folds: int = 4, min_weight: float = 0.02,
             n_starts: int = 16, online: bool = True, progress: bool = True) -> BakeOff:
    """Every method's recommendation from one design at `config`, validated at `val_config` (see the module).
    `online` adds DoReMi and ODM, which mix over every corpus domain (so `doms` must be all of them)."""
    data, doms = as_token_data(data), list(doms)
    check_validation_proxy(config, val_config)
    if online and sorted(doms) != sorted(data.domains):
        raise ValueError(f"online=True (DoReMi, ODM) mixes every corpus domain {data.domains}; domains {doms} are a "
                         "subset: pass them all, or online=False")
    if any(int(d) >= config.d_model for d in nested_d_models) or len(nested_d_models) < 2:
        raise ValueError(f"nested_d_models {list(nested_d_models)} must be at least two widths below the proxy's "
                         f"d_model {config.d_model} (the proxy itself is the third size)")
    need = len(doms) + 2  # parameters of a mixing law per validation domain
    if n_runs < need or 0 < nested_mixtures < need:
        raise ValueError(f"a mixing law over {len(doms)} domains has {need} parameters per domain: n_runs ({n_runs}) and "
                         f"nested_mixtures ({nested_mixtures}, 0 = all) must be at least {need}")
    mixes = design(doms, data, n_runs, seed)
    ids = _finished(runs.sweep(config, mixes, data, store, workers=workers, progress=progress), store)
    table = _table(store, ids, doms)
    key = dict(data=data.fingerprint, runs=sorted(ids), domains=doms, val_config=val_config.to_dict(), seed=seed,
               nested_d_models=[int(d) for d in nested_d_models], nested_mixtures=nested_mixtures, n_starts=n_starts,
               cv_folds=cv_folds, n_samples=n_samples, top_k=top_k, min_weight=min_weight)
    recs = [remembered(store, "mixing law", key, lambda: methods.mixing_law(table, doms, n_starts, seed)),
            remembered(store, "nested pipeline", key, lambda: _nested(
                config, val_config, mixes, ids, data, store, doms, nested_d_models, nested_mixtures, workers, n_starts,
                seed, progress)),
            remembered(store, "RegMix", key, lambda: methods.regmix(
                table, doms, {d: data.token_counts[d] for d in doms}, cv_folds, seed, n_samples, top_k)),
            remembered(store, "BiMix", key, lambda: methods.bimix(table, doms, min_weight, max(4, n_starts // 2),
                                                                  seed=seed)),
            remembered(store, "entropy", key, lambda: methods.entropy(data, doms, seed))]
    if online:
        recs += [methods.doremi(config, data, store, workers=workers, progress=progress), methods.odm()]
    recs = {r.method: r for r in recs} | dict(extra or {})
    v = validate({m: r.mixture for m, r in recs.items()}, val_config, data, store, seeds=seeds, domains=doms,
                 workers=workers, progress=progress)
    return BakeOff(recs, v, _compute(recs, store, data.vocab_size), _averaged(v, recs, store))


def remembered(store, method: str, key: Mapping, compute) -> methods.Recommendation:
    """`compute()`'s recommendation for `method`, or the one an earlier call with the same `key` saved
    in the store's `.recommendations/` (see the module docstring for why)."""
    path = as_store(store).root / ".recommendations" / f"{json_digest({'method': method, **key})[:16]}.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        return methods.Recommendation(saved["method"], Mixture(saved["weights"], name=saved["method"]),
                                      saved["run_ids"], saved["note"], saved["predicted_loss"])
    rec = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"method": rec.method, "weights": rec.mixture.weights, "run_ids": list(rec.run_ids),
                      "note": rec.note, "predicted_loss": rec.predicted_loss, "key": {"method": method, **key}},
               nan=float("nan"))
    return rec


def _finished(result, store) -> list[str]:
    """A sweep's run ids, all finished: a method cannot be fitted on runs that failed."""
    if result.failed:
        rid, err = next(iter(result.failed.items()))
        raise RuntimeError(f"{len(result.failed)} design run(s) failed in {as_store(store).root}; first {rid}: {err}")
    return list(result)


def _table(store, ids: Sequence[str], doms: Sequence[str]) -> pd.DataFrame:
    """The run table of these runs only (a store may hold thousands of others), restricted to `doms`
    (their training weights and validation losses)."""
    store = as_store(store)
    ids = list(dict.fromkeys(ids))
    table = validate_table(pd.concat([store.read_curve(rid) for rid in ids], ignore_index=True))
    return select_runs(table, ids, domains=list(doms))


def _nested(config, val_config, mixes, ids, data, store, doms, d_models, n_mixtures, workers, n_starts, seed,
            progress) -> methods.Recommendation:
    """The most mixed design mixtures at the smaller widths, with their runs at the proxy's width."""
    order = sorted(range(len(mixes)), key=lambda i: max(mixes[i].weights.values()))[:n_mixtures or None]
    small = [config.replace(d_model=int(d)) for d in d_models]
    small_ids = _finished(runs.sweep(small, [mixes[i] for i in order], data, store, workers=workers, progress=progress),
                          store)
    table = _table(store, list(small_ids) + [ids[i] for i in order], doms)
    size = param_counts(val_config.model_config(data.vocab_size))["non_embedding"]
    return methods.nested(table, doms, val_config.steps, size, config.eval_every, n_starts, seed)


def _averaged(v: Validation, recs: dict, store) -> dict[str, dict[str, float]]:
    """The weights a dynamic recommendation (a policy) actually used, averaged over its validation runs."""
    store = as_store(store)
    out = {}
    for m, r in recs.items():
        if isinstance(getattr(r.mixture, "weights", None), Mapping):
            continue
        ids = v.runs.loc[v.runs["name"] == m, "run_id"]
        steps = pd.concat([store.read_weights(rid) for rid in ids], ignore_index=True)
        out[m] = steps.groupby("domain")["weight"].mean().to_dict()
    return out


def _compute(recs: dict, store, vocab_size: int) -> pd.DataFrame:
    rows = []
    for m, r in recs.items():
        cost = proxy_compute(store, r.run_ids, vocab_size)
        rows.append({"method": m, "proxy_runs": cost["runs"], "proxy_flops": cost["flops"], "note": r.note,
                     "predicted_loss": r.predicted_loss})
    return pd.DataFrame(rows)


def report_text(b: BakeOff, baselines: Sequence[str] = ("uniform", "natural")) -> str:
    """The bake-off's result in words (Markdown), generated from its numbers, whatever they are."""
    v = b.validation
    rows = b.leaderboard()
    lines = [f"**Winner: {b.winner}** (lowest mean validated loss; {v.describe()})."]
    top = next(r for r in rows if r["method"] == b.winner)
    beaten = [x for x in baselines if top.get(f"verdict_vs_{x}") == "better"]
    lines[0] += (f" It beats {' and '.join(beaten)} with the interval excluding zero." if beaten else
                 " It is not detectably better than any baseline: at this budget the ranking is within the noise.")
    for r in rows:
        if r["role"] == "baseline":
            continue
        parts = [f"{r[f'verdict_vs_{x}']} than {x} by {abs(r[f'gain_vs_{x}']):.4f} nats "
                 f"(CI [{r[f'ci_low_vs_{x}']:+.4f}, {r[f'ci_high_vs_{x}']:+.4f}])"
                 if r[f"verdict_vs_{x}"] in ("better", "worse") else
                 f"no detectable difference from {x} ({r[f'gain_vs_{x}']:+.4f} nats, "
                 f"CI [{r[f'ci_low_vs_{x}']:+.4f}, {r[f'ci_high_vs_{x}']:+.4f}]"
                 f"{resolve_phrase(r.get(f'seeds_to_resolve_vs_{x}', math.nan))})"
                 for x in baselines if f"verdict_vs_{x}" in r]
        lines.append(f"- **{r['method']}** ({int(r['proxy_runs'])} proxy runs, {r['proxy_flops']:.2e} FLOPs): "
                     f"loss {r['loss']:.4f} ± {r['loss_sd']:.4f}; " + "; ".join(parts) + ".")
    return "\n".join(lines)
