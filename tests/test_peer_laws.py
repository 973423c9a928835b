"""The laws against the papers' released runs (../shared/peer-data), each with a held-out protocol:
nothing is scored on points the law was fitted on. Skipped where the peer data is absent."""

from __future__ import annotations

import numpy as np
import pytest

from mixkit import published, reference
from mixkit.laws import ChinchillaLaw, ContinualMixingLaw, MixingLaw, critical_proportion
from mixkit.laws.fitting import huber
from mixkit.table import pivot_losses


@pytest.fixture(scope="module")
def valid_weights(peer_data):
    return published.load_valid_weights(peer_data / "mixinglaws" / "valid_weight.json")


def test_sld_explicit_mixing_law_held_out(peer_data, valid_weights):
    table = published.load_sld(peer_data / "sld" / "all_models_data.json")
    # The SLD file's five losses are the 5Mix groups of Pile-valid subdomains (published.FIVE_MIX_GROUPS):
    # regressing them on the 22 per-subdomain losses of the same 104 runs in mixinglaws/5Mix (step
    # 30000) gives exactly those groups, each the valid_weight-weighted mean of its members.
    shares = published.five_mix_group_shares(valid_weights)
    assert list(shares) == list(published.SLD_DOMAINS)
    s = np.array(list(shares.values()))
    assert s.sum() == pytest.approx(1.0)
    for label in reference.SLD.overall_mae:
        (W_train, L_train), (W_test, L_test) = published.sld_split(table, label)
        assert (len(W_train), len(W_test)) == (reference.SLD.n_train, reference.SLD.n_eval)
        law = MixingLaw(n_starts=8, random_state=0, aggregate=s).fit(W_train, L_train)
        pred_total = law.predict_total(W_test)
        obs_total = L_test.to_numpy() @ s
        mae = float(np.mean(np.abs(pred_total - obs_total)))
        per_domain_rel = np.mean(np.abs(law.predict(W_test) - L_test.to_numpy()) / L_test.to_numpy(), axis=0)
        # Measured with the default Huber delta 1e-3: 0.0110 / 0.0100 / 0.0118 / 0.0116, under the
        # worst published size (reference.SLD.overall_mae) plus 0.001.
        assert mae <= max(reference.SLD.overall_mae.values()) + 0.001, (label, mae)
        # Per-domain relative error averaged over the five domains: measured 0.9-1.4% (reference 0.9-1.4%).
        assert np.all(per_domain_rel < 0.025), (label, per_domain_rel)
        assert per_domain_rel.mean() < reference.SLD.rel_error_range[1] + 0.001, (label, per_domain_rel)


def test_five_mix_group_losses_are_the_sld_losses(peer_data, valid_weights):
    """The SLD file's losses are the valid-weight means of the 5Mix subdomains at step 30000."""
    doms = list(published.SLD_DOMAINS)
    mix5 = published.load_mixinglaws(peer_data / "mixinglaws" / "5Mix", sizes=["70M"])
    groups = published.five_mix_group_losses(mix5, valid_weights)
    W, L = pivot_losses(groups, step=30_000, domains=doms)
    # SLD names runs by their ratios, mixinglaws by its run directory: match them by mixture.
    by_mix = {tuple(np.round(w, 6)): run for run, w in zip(W.index, W[doms].to_numpy())}
    sld = published.load_sld(peer_data / "sld" / "all_models_data.json")
    for W_sld, L_sld in published.sld_split(sld, "70M"):
        runs = [by_mix[tuple(np.round(w, 6))] for w in W_sld.to_numpy()]
        np.testing.assert_allclose(L.loc[runs].to_numpy(), L_sld.to_numpy(), rtol=1e-6)


def test_continual_pretraining_critical_proportion(peer_data, valid_weights):
    ct_ref = reference.CONTINUAL
    ct = published.load_mixinglaws(peer_data / "mixinglaws" / "ct")
    base_loss, pile = published.continual_pile_losses(ct, valid_weights, step=ct_ref.step)
    assert base_loss == pytest.approx(ct_ref.base_loss, abs=1e-4)

    fit_runs = pile[pile["r"].round(6).isin(ct_ref.fit_shares)]
    check = pile[np.isclose(pile["r"], ct_ref.check_share)]
    assert len(fit_runs) == 4 and len(check) == 1
    law = ContinualMixingLaw(random_state=0).fit(fit_runs["r"].to_numpy(), fit_runs["loss"].to_numpy())
    r_star = critical_proportion(law, base_loss)
    # Measured 0.2832 (reference about 0.286).
    assert r_star == pytest.approx(ct_ref.critical_share, abs=0.02)
    # The held-out check run near the critical share: predicted within 0.002 of what it measured,
    # and it did keep the Pile loss within 0.0015 of the pre-CPT loss (published gap 0.0013).
    obs = float(check["loss"].iloc[0])
    assert float(law.predict([[ct_ref.check_share]])[0]) == pytest.approx(obs, abs=0.002)
    assert obs == pytest.approx(base_loss, abs=0.0015)


def test_chinchilla_epoch_replication(peer_data):
    ref = reference.CHINCHILLA
    df = published.load_chinchilla(peer_data / "chinchilla" / "svg_extracted_data.csv")
    df = df.sort_values("loss").iloc[:-ref.dropped_highest_loss]  # Epoch drops the highest-loss points
    X, y = df[["N", "D"]].to_numpy(), df["loss"].to_numpy()
    law = ChinchillaLaw(n_starts=16, huber_delta=ref.huber_delta, random_state=0).fit(X, y)
    p = law.params_.iloc[0]
    # Measured E 1.8172, A 477.8, B 2143.4, a 0.3473, b 0.3672: four within 1%; B is 2.8% off, along
    # the flat B-b valley. Our optimum has the lower objective (0.0010183 vs 0.0010228 at the
    # reference), and our emulation of Epoch's search (default L-BFGS-B from every point of their
    # 4500-point grid) lands on the same optimum, so the gap is in the reference, not in the search.
    for k in ("E", "A", "a", "b"):
        assert p[k] == pytest.approx(ref.params[k], rel=0.02), k
    assert p["B"] == pytest.approx(ref.params["B"], rel=0.03)
    theta_ref = np.array([ref.params[k] for k in ("E", "A", "B", "a", "b")])
    obj_ref = float(np.sum(huber(law._log_predict(theta_ref, X) - np.log(y), ref.huber_delta)))
    assert law.result_.objective <= obj_ref
