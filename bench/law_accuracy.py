"""Held-out accuracy of every law on every published dataset: one table.

    python bench/law_accuracy.py [--peer-data ../shared/peer-data] [--quick]

Every score comes from predictions of points the law was not fitted on. Protocols (column `protocol`):

- sld/<size> (the 5Mix runs at step 30k, 5 group losses): the paper's 20 train / 6 eval split.
  Target `overall` = sum_g S_g L_g with S_g the groups' total Pile valid weight
  (published.five_mix_group_shares of valid_weight.json; the SLD groups are exactly valid-weight
  means of their Pile subdomains, see tests/test_peer_laws.py). Per-domain laws (explicit mixing law, log-linear, LightGBM, linear)
  predict the five group losses and are aggregated (LogLinearLaw is left out here: on the simplex it
  is the explicit law's form and predicts the same); the implicit mixing law is fitted on the
  overall loss directly. BiMix (power form, one law per group over its own proportion) cannot
  predict a group whose proportion is 0, so it is scored per domain on the (mixture, group) pairs
  with r_g > 0, next to the explicit mixing law on the same pairs.
- mixinglaws/5Mix/<size>: the 26 runs at step 30000, 5-fold cross-validation over mixtures
  (compare_laws), same per-domain laws and overall target (the implicit law only on sld: its
  15-parameter start grid makes 20 CV fits per size cost minutes).
- mixinglaws/5Mix cross-scale (nested_prediction, Ye et al.): step-30000 losses of 70M/160M/305M ->
  size law per mixture -> mixing law, scored on the real 410M runs; step-20000 losses of
  70M..410M -> 1B, scored on the six 1B runs (two of them, ids 998/999, are mixtures no proxy ran).
  `size law only` scores the stage-2 predictions without the mixing law (fit mixtures only).
- mixinglaws/5Mix/1B, 70M-410M at all steps fitted, every released 1B (run, step) point predicted
  (19 points: six runs at 20k, two of them to 100k): the joint laws of Shukor et al. 2025
  (JointLaw, additive and joint form, one fit on (N non-embedding, D = step, h) rows) beside the
  nested pipeline (one per 1B step, target "1B" = Pythia-1B's non-embedding N); overall Pile loss.
- mixinglaws/5Mix BiMix step extrapolation: BiMix full form per group over (steps, own proportion)
  fitted on every run's checkpoints <= 15000 steps, scored on all later checkpoints (to 30k, and to
  100k for the few long runs); reference: one step law per (run, group) on the same early points.
- mixinglaws/ct: ContinualMixingLaw L(r) = c + exp(k r + b) at step 10000, leave one r out over the
  five CPT runs; then fitted on the four grid runs: critical share and the check run (printed below).
- regmix: fitted on the first 64 or all 512 1M training runs (target Pile-CC), scored on the 256
  test mixtures at 1M and at 60M (60M: ranks matter; the level is 1M's).
- chinchilla: 5 highest-loss points dropped (Epoch); a seeded 80/20 split, and cross-scale with
  compare_laws (fit on N < 2.5B, score on the larger models). The fit on all points is printed
  against Epoch's reference parameters.

`noise` is the seed-noise floor (mean absolute deviation across seeds of one mixture): none of the
releases repeats a mixture, so it is n/a everywhere (checked with seed_noise_floor on 5Mix).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from mixkit import published, reference
from mixkit.laws import (BiMixLaw, ChinchillaLaw, ContinualMixingLaw, ImplicitMixingLaw, JointLaw, LightGBMLaw,
                         LinearRegressionLaw, LogLinearLaw, MixingLaw, SizeLaw, StepLaw, compare_laws,
                         critical_proportion, nested_prediction, seed_noise_floor)
from mixkit.laws.joint import joint_inputs
from mixkit.table import pivot_losses, weight_column

REPO = Path(__file__).resolve().parents[1]
DOMS = list(published.SLD_DOMAINS)
NOISE = "n/a"


def metrics(y_true, y_pred) -> dict:
    y_true, y_pred = np.asarray(y_true, float).ravel(), np.asarray(y_pred, float).ravel()
    err = y_pred - y_true
    out = {"MAE": np.mean(np.abs(err)), "rel_err_%": 100 * np.mean(np.abs(err) / y_true), "R2": np.nan, "Spearman": np.nan}
    if len(y_true) > 2:
        ss = np.sum((y_true - y_true.mean()) ** 2)
        out["R2"] = 1 - np.sum(err**2) / ss if ss > 0 else np.nan
        out["Spearman"] = spearmanr(y_true, y_pred).statistic
    return out


def row(dataset, protocol, law, target, n_train, y_true, y_pred, fit_s, note="") -> dict:
    return {"dataset": dataset, "protocol": protocol, "law": law, "target": target, "n_train": n_train,
            "n_test": int(np.size(y_true)), **metrics(y_true, y_pred), "fit_s": fit_s, "noise": NOISE, "note": note}


def quiet_fit(law, X, y):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law.fit(X, y)
    return time.perf_counter() - t0


def per_domain_laws() -> dict:
    # No LogLinearLaw here: on the simplex exp(c) + exp(t . r) is the explicit mixing law's form
    # (k e^{t.r} = e^{t'.r}) and it gave the same predictions to 4 decimals on sld; it runs on regmix.
    return {"mixing_law": MixingLaw(n_starts=8, random_state=0), "lightgbm": LightGBMLaw(), "linear": LinearRegressionLaw()}


# --- sld ----------------------------------------------------------------------------------------------
def bench_sld(rows, peer: Path, S: np.ndarray) -> None:
    table = published.load_sld(peer / "sld" / "all_models_data.json")
    for size in sorted(table["size_label"].unique(), key=published.parse_size):
        (W_tr, L_tr), (W_te, L_te) = published.sld_split(table, size)
        n_tr = len(W_tr)
        ds, proto = f"sld/{size}", f"paper split {n_tr}/{len(W_te)}"
        obs_total = L_te.to_numpy() @ S
        for name, law in per_domain_laws().items():
            fit_s = quiet_fit(law, W_tr, L_tr)
            pred = np.asarray(law.predict(W_te))
            rows.append(row(ds, proto, name, "overall", n_tr, obs_total, pred @ S, fit_s))
            if name == "mixing_law":
                mix_pred = pred
        law = ImplicitMixingLaw(n_latent=2, n_starts=8, random_state=0)
        fit_s = quiet_fit(law, W_tr, L_tr.to_numpy() @ S)
        rows.append(row(ds, proto, "implicit_mixing(K=2)", "overall", n_tr, obs_total, law.predict(W_te), fit_s))
        # BiMix power form: one law per group over its own proportion; r_g = 0 is outside its domain.
        obs, pb, pm, t_fit = [], [], [], 0.0
        for j, g in enumerate(DOMS):
            mtr, mte = W_tr[g] > 0, W_te[g] > 0
            law = BiMixLaw(form="power", random_state=0)
            t_fit += quiet_fit(law, W_tr[[g]][mtr], L_tr[g][mtr])
            obs.append(L_te[g][mte].to_numpy())
            pb.append(np.ravel(law.predict(W_te[[g]][mte])))
            pm.append(mix_pred[mte.to_numpy(), j])
        obs, pb, pm = map(np.concatenate, (obs, pb, pm))
        rows.append(row(ds, proto, "bimix(power)", "per-domain, r_g>0", n_tr, obs, pb, t_fit,
                        "R2/Spearman pooled over groups"))
        rows.append(row(ds, proto, "mixing_law", "per-domain, r_g>0", n_tr, obs, pm, np.nan, "same pairs as bimix"))


# --- 5Mix ---------------------------------------------------------------------------------------------
def bench_5mix_cv(rows, g5: pd.DataFrame, S: np.ndarray, quick: bool) -> None:
    sizes = ("70M",) if quick else ("70M", "160M", "305M", "410M")
    for size in sizes:
        part = g5[(g5["size_label"] == size) & ~g5["holdout"]]
        W, L = pivot_losses(part, step=30000, domains=DOMS)
        W, L = W[DOMS], L[DOMS]
        ds, proto = f"mixinglaws/5Mix/{size}", "5-fold CV over 26 mixtures @30k"
        for name, law in per_domain_laws().items():
            t0 = time.perf_counter()
            res = compare_laws((W, L), {name: law}, cv=5, aggregate=S, random_state=0, progress=False)
            fit_s = time.perf_counter() - t0
            r = res[res["target"] == "overall"].iloc[0]
            rows.append(_from_compare(ds, proto, name, "overall", len(W), r, fit_s))


def _from_compare(ds, proto, law, target, n, r, fit_s) -> dict:
    n_train = int(round(n * 4 / 5))  # per fold, about
    return {"dataset": ds, "protocol": proto, "law": law, "target": target, "n_train": n_train,
            "n_test": int(r["n_test"]), "MAE": r["mae"], "rel_err_%": 100 * r["rel_err"], "R2": r["r2"],
            "Spearman": r["spearman"], "fit_s": fit_s, "noise": NOISE, "note": "all folds, total time"}


def bench_5mix_nested(rows, g5: pd.DataFrame, S: np.ndarray, quick: bool) -> None:
    cases = [("410M", 30000, ("70M", "160M", "305M"))]
    if not quick:
        cases.append(("1B", 20000, ("70M", "160M", "305M", "410M")))
    for target, step, small in cases:
        fit_tab = g5[g5["size_label"].isin(small) & ~g5["holdout"] & (g5["step"] == step)]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nested = nested_prediction(fit_tab, target_step=None, target_size=target,
                                       mixing_law=MixingLaw(n_starts=8, random_state=0),
                                       size_law=SizeLaw(n_starts=4, random_state=0), domains=DOMS, progress=False)
        fit_s = time.perf_counter() - t0
        big = g5[(g5["size_label"] == target) & (g5["step"] == step)]
        W, L = pivot_losses(big, step=step, domains=DOMS)
        W, L = W[DOMS], L[DOMS]
        obs = L.to_numpy() @ S
        ds = f"mixinglaws/5Mix/{target}"
        proto = f"cross-scale {'+'.join(small)} -> {target} @{step // 1000}k"
        pred = np.asarray(nested.predict(W)) @ S
        n_fit = len(nested.mixtures)
        rows.append(row(ds, proto, "nested(step->size->mixing)", "overall", n_fit, obs, pred, fit_s,
                        f"{len(W)} real {target} runs; law saw none"))
        # The size law alone predicts only mixtures the proxies ran.
        keys = np.array(["-".join(f"{w:g}" for w in r) for r in W.to_numpy().round(6)])
        seen = np.isin(keys, nested.predictions.index)
        size_only = nested.predictions.loc[keys[seen], DOMS].to_numpy() @ S
        rows.append(row(ds, proto, "size law only", "overall", n_fit, obs[seen], size_only, np.nan,
                        "no mixing law: proxy mixtures only"))
        if (~seen).any():
            rows.append(row(ds, proto, "nested(step->size->mixing)", "overall, new mixtures", n_fit, obs[~seen], pred[~seen],
                            np.nan, "mixtures no proxy ran"))


def bench_5mix_1b(rows, g5: pd.DataFrame, S: np.ndarray, quick: bool, extra: list) -> None:
    """70M-410M at every step fitted, every released 1B (run, step) point predicted: the joint laws
    (one fit) beside the nested pipeline (one fit per target step), overall Pile loss."""
    fit_tab = g5[g5["size_label"].isin(["70M", "160M", "305M", "410M"]) & ~g5["holdout"]]
    big = g5[g5["size_label"] == "1B"]
    weights = dict(zip(DOMS, S))
    X, y = joint_inputs(fit_tab, weights)  # N non-embedding; D = step (the release has no batch size)
    Xt, yt = joint_inputs(big, weights)
    ds, proto = "mixinglaws/5Mix/1B", "70M-410M all steps -> every 1B point"
    for form in ("additive", "joint"):
        law = JointLaw(form=form, random_state=0)
        fit_s = quiet_fit(law, X, y)
        note = "converged" if law.result_.converged else "stopped on its iteration cap"
        rows.append(row(ds, proto, f"joint law ({form})", "overall", len(X), yt, law.predict(Xt), fit_s, note))
    steps = sorted(big["step"].unique()) if not quick else [20_000, 100_000]
    pred, obs, t0 = [], [], time.perf_counter()
    for step in steps:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nested = nested_prediction(fit_tab, target_step=int(step), target_size="1B", domains=DOMS, progress=False)
        at = big[big["step"] == step]
        W, L = pivot_losses(at, step=int(step), domains=DOMS)
        pred.append(np.asarray(nested.predict(W[DOMS], warn=False)) @ S)
        obs.append(L[DOMS].to_numpy() @ S)
    wall = time.perf_counter() - t0
    obs, pred = np.concatenate(obs), np.concatenate(pred)
    rows.append(row(ds, proto, "nested(step->size->mixing)", "overall", len(fit_tab["run_id"].unique()), obs, pred,
                    wall, f"{len(steps)} pipelines, one per 1B step"))
    extra.append(f"5Mix 1B: nested pipeline wall time {wall:.1f} s for {len(steps)} target steps "
                 f"({wall / len(steps):.1f} s each; N = Pythia non-embedding sizes {nested.sizes['N'].astype(int).tolist()})")


def bench_bimix_steps(rows, g5: pd.DataFrame, quick: bool, cut: int = 15000) -> None:
    sizes = ("70M",) if quick else ("70M", "160M", "305M", "410M")
    for size in sizes:
        part = g5[(g5["size_label"] == size) & ~g5["holdout"]]
        ds, proto = f"mixinglaws/5Mix/{size}", f"steps <= {cut // 1000}k -> later"
        obs_b, pred_b, obs_s, pred_s, t_b, t_s, n_tr = [], [], [], [], 0.0, 0.0, 0
        for g in DOMS:
            d = part[(part["domain"] == g) & (part[weight_column(g)] > 0)]
            X = d[["step", weight_column(g)]].to_numpy(float)
            y = d["loss"].to_numpy(float)
            early = d["step"].to_numpy() <= cut
            law = BiMixLaw(form="full", random_state=0)
            t_b += quiet_fit(law, X[early], y[early])
            n_tr += int(early.sum())
            obs_b.append(y[~early])
            pred_b.append(np.ravel(law.predict(X[~early])))
            # Reference: each run's own step law (no sharing across mixtures).
            for _, run in d.groupby("run_id"):
                e = run["step"].to_numpy() <= cut
                if e.sum() < 3 or e.all():
                    continue
                sl = StepLaw(n_starts=2, max_iter=500, random_state=0)
                t_s += quiet_fit(sl, run["step"].to_numpy(float)[e], run["loss"].to_numpy(float)[e])
                obs_s.append(run["loss"].to_numpy(float)[~e])
                pred_s.append(np.ravel(sl.predict(run["step"].to_numpy(float)[~e])))
        rows.append(row(ds, proto, "bimix(full)", "per-domain, r_g>0", n_tr, np.concatenate(obs_b), np.concatenate(pred_b),
                        t_b, "one law per group across runs"))
        rows.append(row(ds, proto, "step law per run", "per-domain, r_g>0", n_tr, np.concatenate(obs_s), np.concatenate(pred_s),
                        t_s, "reference: 1 fit per (run, group)"))


# --- ct -------------------------------------------------------------------------------------------------
def bench_ct(rows, peer: Path, s: dict, extra: list) -> None:
    ref = reference.CONTINUAL
    ct = published.load_mixinglaws(peer / "mixinglaws" / "ct")
    base_loss, pile = published.continual_pile_losses(ct, s, step=ref.step)
    t0 = time.perf_counter()
    res, preds = compare_laws((pile[["r"]], pile["loss"]), {"continual": ContinualMixingLaw(random_state=0)}, cv="loo",
                              return_predictions=True, progress=False)
    r = res.iloc[0]
    rows.append({"dataset": "mixinglaws/ct", "protocol": "leave one r out (5 runs) @10k", "law": "continual",
                 "target": "Pile loss", "n_train": 4, "n_test": int(r["n_test"]), "MAE": r["mae"],
                 "rel_err_%": 100 * r["rel_err"], "R2": r["r2"], "Spearman": r["spearman"],
                 "fit_s": time.perf_counter() - t0, "noise": NOISE, "note": "all folds, total time"})
    check = np.isclose(pile["r"], ref.check_share)
    law = ContinualMixingLaw(random_state=0)
    fit_s = quiet_fit(law, pile.loc[~check, ["r"]], pile.loc[~check, "loss"])
    obs = pile.loc[check, "loss"].to_numpy()
    pred = np.ravel(law.predict(pile.loc[check, ["r"]]))
    rows.append(row("mixinglaws/ct", "fit r in {1,2,3,4}/8, check r=.285", "continual", "Pile loss", 4, obs, pred, fit_s))
    r_star = critical_proportion(law, base_loss)
    extra.append(f"ct: pre-CPT Pile loss {base_loss:.4f} (reference {ref.base_loss}); critical Pile share "
                 f"r* = {r_star:.4f} (reference ~{ref.critical_share}); check run r={ref.check_share}: observed {obs[0]:.4f} "
                 f"({obs[0] - base_loss:+.4f} vs pre-CPT), predicted {pred[0]:.4f}")


# --- regmix -----------------------------------------------------------------------------------------------
def bench_regmix(rows, peer: Path, quick: bool) -> None:
    folder = peer / "regmix"
    X, y = published.regmix_xy(folder, "1m", "train")
    tests = {"1m": published.regmix_xy(folder, "1m", "test"), "60m": published.regmix_xy(folder, "60m", "test")}
    for n in (64, 512):
        laws = {"linear": LinearRegressionLaw(), "lightgbm": LightGBMLaw(), "loglinear": LogLinearLaw(random_state=0)}
        if quick and n == 512:
            del laws["loglinear"]
        for name, law in laws.items():
            fit_s = quiet_fit(law, X.iloc[:n], y.iloc[:n])
            for which, (Xt, yt) in tests.items():
                note = "rank only: 1M-level predictions of 60M losses" if which == "60m" else ""
                rows.append(row(f"regmix/{which}", f"fit first {n} 1M runs -> 256 test", f"{name}@{n}", "Pile-CC", n,
                                yt, law.predict(Xt), fit_s, note))


# --- chinchilla ---------------------------------------------------------------------------------------------
def bench_chinchilla(rows, peer: Path, extra: list, n_cut: float = 2.5e9) -> None:
    df = published.load_chinchilla(peer / "chinchilla" / "svg_extracted_data.csv")
    ref = reference.CHINCHILLA
    df = df.sort_values("loss").iloc[:-ref.dropped_highest_loss].reset_index(drop=True)  # as Epoch
    X, y = df[["N", "D"]], df["loss"]
    perm = np.random.default_rng(0).permutation(len(df))
    cut = int(0.8 * len(df))
    tr, te = perm[:cut], perm[cut:]
    law = ChinchillaLaw(random_state=0)
    fit_s = quiet_fit(law, X.iloc[tr], y.iloc[tr])
    rows.append(row("chinchilla", "random 80/20", "chinchilla", "loss", len(tr), y.iloc[te], law.predict(X.iloc[te]), fit_s))
    big = (df["N"] >= n_cut).to_numpy()
    t0 = time.perf_counter()
    res = compare_laws((X, y), {"chinchilla": ChinchillaLaw(random_state=0)}, cv="cross_scale",
                       sizes=big.astype(float), progress=False)
    r = res.iloc[0]
    rows.append({"dataset": "chinchilla", "protocol": f"cross-scale N<{n_cut:.1e} -> larger", "law": "chinchilla",
                 "target": "loss", "n_train": int((~big).sum()), "n_test": int(r["n_test"]), "MAE": r["mae"],
                 "rel_err_%": 100 * r["rel_err"], "R2": r["r2"], "Spearman": r["spearman"],
                 "fit_s": time.perf_counter() - t0, "noise": NOISE, "note": ""})
    full = ChinchillaLaw(n_starts=16, huber_delta=ref.huber_delta, random_state=0)
    quiet_fit(full, X, y)
    p, epoch = full.params_.iloc[0], ref.params
    extra.append(f"chinchilla, all {len(df)} points (Epoch protocol), fitted vs Epoch reference: " + ", ".join(
        f"{k} {p[k]:.4g} vs {epoch[k]:.4g} ({100 * (p[k] / epoch[k] - 1):+.1f}%)" for k in epoch))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-data", type=Path, default=REPO.parent / "shared" / "peer-data")
    ap.add_argument("--quick", action="store_true",
                    help="70M only for the 5Mix CV and BiMix step blocks, no 1B nested case, "
                         "no 512-run log-linear fit")
    args = ap.parse_args(argv)
    peer = args.peer_data
    if not peer.is_dir():
        raise SystemExit(f"peer data not found at {peer}")
    t_start = time.perf_counter()
    s = published.load_valid_weights(peer / "mixinglaws" / "valid_weight.json")
    S = np.array(list(published.five_mix_group_shares(s).values()))  # in the order of DOMS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mix5 = published.load_mixinglaws(peer / "mixinglaws" / "5Mix")
    if len(seed_noise_floor(mix5)):
        raise SystemExit("5Mix now repeats a mixture: report its seed-noise floor instead of n/a")
    g5 = published.five_mix_group_losses(mix5, s)
    rows: list[dict] = []
    extra: list[str] = []
    timings = {}
    for name, fn in (("sld", lambda: bench_sld(rows, peer, S)),
                     ("5mix-cv", lambda: bench_5mix_cv(rows, g5, S, args.quick)),
                     ("5mix-nested", lambda: bench_5mix_nested(rows, g5, S, args.quick)),
                     ("5mix-1b", lambda: bench_5mix_1b(rows, g5, S, args.quick, extra)),
                     ("5mix-bimix", lambda: bench_bimix_steps(rows, g5, args.quick)),
                     ("ct", lambda: bench_ct(rows, peer, s, extra)),
                     ("regmix", lambda: bench_regmix(rows, peer, args.quick)),
                     ("chinchilla", lambda: bench_chinchilla(rows, peer, extra))):
        t0 = time.perf_counter()
        fn()
        timings[name] = time.perf_counter() - t0
    table = pd.DataFrame(rows)
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 48, "display.width", 250,
                           "display.float_format", "{:.4f}".format):
        print(table.to_string(index=False, na_rep=""))
    print()
    for line in extra:
        print(line)
    print("noise: seed-noise floor n/a for every dataset (no release repeats a mixture or seed).")
    print("not benchmarked: MixingLaw on regmix (17 domains): fitting._grid builds the full 3^17-point start grid "
          "before subsampling (out of memory); log-linear is the same form on the simplex.")
    print("time per block (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
          + f"; total {time.perf_counter() - t_start:.1f}")


if __name__ == "__main__":
    main()
