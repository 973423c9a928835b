"""The laws against the papers' released runs (../shared/peer-data), each with a held-out protocol:
nothing is scored on points the law was fitted on. Skipped where the peer data is absent."""

from __future__ import annotations

import numpy as np
import pytest

from mixkit import published
from mixkit.laws import ChinchillaLaw, ContinualMixingLaw, MixingLaw, critical_proportion
from mixkit.laws.fitting import huber

# The SLD file's five losses are the 5Mix groups of Pile-valid subdomains (published.FIVE_MIX_GROUPS):
# regressing them on the 22 per-subdomain losses of the same 104 runs in mixinglaws/5Mix (step 30000)
# gives exactly those groups, each the valid_weight-weighted mean of its members (zero residual).
FIVE_MIX_GROUPS = published.FIVE_MIX_GROUPS
SLD_REFERENCE_MAE = {"70M": 0.0110, "160M": 0.0092, "305M": 0.0103, "410M": 0.0099}


@pytest.fixture(scope="module")
def valid_weights(peer_data):
    return published.load_valid_weights(peer_data / "mixinglaws" / "valid_weight.json")


def test_sld_explicit_mixing_law_held_out(peer_data, valid_weights):
    table = published.load_sld(peer_data / "sld" / "all_models_data.json")
    doms = list(published.SLD_DOMAINS)
    s = np.array([sum(valid_weights[d] for d in FIVE_MIX_GROUPS[g]) for g in doms])
    assert s.sum() == pytest.approx(1.0)
    for label in SLD_REFERENCE_MAE:
        part = table[table["size_label"] == label]
        split = part.groupby("run_id")["split"].first()
        W, L = published_pivot(part, doms)
        train, test = split[split == "train"].index, split[split == "eval"].index
        assert len(train) == 20 and len(test) == 6
        law = MixingLaw(n_starts=8, random_state=0, aggregate=s).fit(W.loc[train], L.loc[train])
        pred_total = law.predict_total(W.loc[test])
        obs_total = L.loc[test].to_numpy() @ s
        mae = float(np.mean(np.abs(pred_total - obs_total)))
        per_domain_rel = np.mean(np.abs(law.predict(W.loc[test]) - L.loc[test].to_numpy()) / L.loc[test].to_numpy(), axis=0)
        # Measured with the default Huber delta 1e-3: 0.0110 / 0.0100 / 0.0118 / 0.0116.
        assert mae <= 0.012, (label, mae)
        # Per-domain relative error averaged over the five domains: measured 0.9-1.4% (reference 0.9-1.4%).
        assert np.all(per_domain_rel < 0.025) and per_domain_rel.mean() < 0.015, (label, per_domain_rel)


def published_pivot(part, doms):
    from mixkit.table import pivot_losses

    W, L = pivot_losses(part, step="last", domains=doms)
    return W[doms], L


def test_continual_pretraining_critical_proportion(peer_data, valid_weights):
    ct = published.load_mixinglaws(peer_data / "mixinglaws" / "ct")
    at = ct[(ct["step"] == 10_000) & ~ct["is_base"] & ct["domain"].isin(valid_weights)]
    assert at.groupby("run_id")["domain"].nunique().eq(len(valid_weights)).all()
    pile = at.assign(wl=at["loss"] * at["domain"].map(valid_weights)).groupby("run_id").agg(r=("w:pile", "first"), loss=("wl", "sum"))
    base = ct[ct["is_base"] & ct["domain"].isin(valid_weights)]
    base_loss = float((base["loss"] * base["domain"].map(valid_weights)).sum())
    assert base_loss == pytest.approx(2.8734, abs=1e-4)

    fit_runs = pile[pile["r"].round(6).isin([0.125, 0.25, 0.375, 0.5])]
    check = pile[np.isclose(pile["r"], 0.28515625)]
    assert len(fit_runs) == 4 and len(check) == 1
    law = ContinualMixingLaw(random_state=0).fit(fit_runs["r"].to_numpy(), fit_runs["loss"].to_numpy())
    r_star = critical_proportion(law, base_loss)
    # Measured 0.2816 (reference about 0.286).
    assert r_star == pytest.approx(0.286, abs=0.02)
    # The held-out check run near the critical share: predicted within 0.002 of what it measured,
    # and it did keep the Pile loss within 0.0015 of the pre-CPT loss.
    obs = float(check["loss"].iloc[0])
    assert float(law.predict([[0.28515625]])[0]) == pytest.approx(obs, abs=0.002)
    assert obs == pytest.approx(base_loss, abs=0.0015)


def test_chinchilla_epoch_replication(peer_data):
    df = published.load_chinchilla(peer_data / "chinchilla" / "svg_extracted_data.csv")
    df = df.sort_values("loss").iloc[:-5]  # Epoch drops the five highest-loss points
    X, y = df[["N", "D"]].to_numpy(), df["loss"].to_numpy()
    law = ChinchillaLaw(n_starts=16, random_state=0).fit(X, y)
    ref = {"E": 1.817, "A": 482.0, "B": 2085.4, "a": 0.3478, "b": 0.3658}
    p = law.params_
    # Measured E 1.8172, A 477.8, B 2143.4, a 0.3473, b 0.3672: four within 1%; B is 2.8% off, along
    # the flat B-b valley. Our optimum has the lower objective (0.0010183 vs 0.0010228 at the
    # reference), and our emulation of Epoch's search (default L-BFGS-B from every point of their
    # 4500-point grid) lands on the same optimum, so the gap is in the reference, not in the search.
    for k in ("E", "A", "a", "b"):
        assert p[k] == pytest.approx(ref[k], rel=0.02), k
    assert p["B"] == pytest.approx(ref["B"], rel=0.03)
    theta_ref = np.array([ref[k] for k in ("E", "A", "B", "a", "b")])
    obj_ref = float(np.sum(huber(law._log_predict(theta_ref, X) - np.log(y), 1e-3)))
    assert law.result_.objective <= obj_ref
