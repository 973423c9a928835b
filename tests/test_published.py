"""Loaders of the papers' released runs: shapes as documented, quirks resolved, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixkit import published, reference
from mixkit.table import pivot_losses, training_domains, validate_table


def test_parse_size():
    assert published.parse_size("70M") == 70_000_000
    assert published.parse_size("1B") == 1_000_000_000
    assert published.parse_size("1.4B") == 1_400_000_000
    with pytest.raises(ValueError, match="model size"):
        published.parse_size("big")


def test_mixinglaws_5mix(peer_data):
    df = published.load_mixinglaws(peer_data / "mixinglaws" / "5Mix")
    validate_table(df)
    assert training_domains(df) == ["academic", "prose", "dialogue", "symbolic", "internet"]
    runs = df.groupby("size_label")["run_id"].nunique().to_dict()
    assert runs == {"70M": 26, "160M": 26, "305M": 26, "410M": 26, "1B": 6}
    assert df["domain"].nunique() == 22
    held = sorted(df.loc[df.holdout, "mix_id"].unique())
    assert held == [998, 999]
    assert df.loc[df.holdout, "size_label"].unique().tolist() == ["1B"]
    assert not df.duplicated(["run_id", "step", "domain"]).any()
    # The 26 fitting mixtures are the ones listed in proportions.txt.
    props = published.load_proportions(peer_data / "mixinglaws" / "5Mix" / "proportions.txt")
    W, _ = pivot_losses(df[~df.holdout], model_size=70_000_000)
    listed = {tuple(np.round(r, 6)) for r in props.to_numpy()}
    assert {tuple(np.round(r, 6)) for r in W.to_numpy()} == listed
    assert df["model_size"].min() == 70_000_000 and df["step"].max() == 100_000
    # validate_table's dtypes: integer steps and sizes, tokens unknown (NaN) in this release.
    assert df["step"].dtype == np.int64 and df["model_size"].dtype == np.int64 and df["tokens"].isna().all()


def test_mixinglaws_3mix_last_and_duplicates(peer_data):
    folder = peer_data / "mixinglaws" / "3Mix"
    n_lines = sum(len(p.read_text().splitlines()) for p in folder.glob("*.txt"))
    df = published.load_mixinglaws(folder)
    assert training_domains(df) == ["github", "books3", "pile_cc"]
    assert df.groupby("size_label")["run_id"].nunique().to_dict() == {"70M": 3, "160M": 6, "410M": 32}
    # 27 'last' lines repeat a numbered step and 6 lines are exact repeats.
    assert n_lines - len(df) == 33
    assert not df.duplicated(["run_id", "step", "domain"]).any()
    # One run's 'last' is its step 34500, not its final step: the loader must not put it at 60000.
    run = df[(df.run_id == "3Mix/70M/70M_14-0.25-0.25-0.5") & (df.domain == "Github")].set_index("step")["loss"]
    assert run.loc[60000] == pytest.approx(1.5740408337550607)
    assert run.loc[34500] == pytest.approx(1.6336190536437247)


def test_mixinglaws_2mix_order(peer_data):
    df = published.load_mixinglaws(peer_data / "mixinglaws" / "2Mix")
    assert df["run_id"].nunique() == 10 and set(df["size_label"]) == {"70M", "160M"}
    W, L = pivot_losses(df, model_size=70_000_000)
    # The first ratio is GitHub's share: more of it lowers the GitHub loss.
    assert np.corrcoef(W["github"], L["Github"])[0, 1] < -0.9


def test_mixinglaws_ct(peer_data):
    ct_ref = reference.CONTINUAL
    df = published.load_mixinglaws(peer_data / "mixinglaws" / "ct")
    assert training_domains(df) == ["pile", "python"]
    base = df[df.is_base]
    assert base["run_id"].unique().tolist() == ["ct/70M/base"] and len(base) == 23
    assert "Python" in set(df["domain"])
    s = published.load_valid_weights(peer_data / "mixinglaws" / "valid_weight.json")
    assert len(s) == 22 and sum(s.values()) == pytest.approx(1.0)
    pile = base[base.domain.isin(s)]
    assert sum(s[d] * l for d, l in zip(pile.domain, pile.loss)) == pytest.approx(ct_ref.base_loss, abs=1e-4)
    shares = sorted(df.loc[~df.is_base, "w:pile"].unique())
    assert shares == sorted([*ct_ref.fit_shares, ct_ref.check_share])
    # The duplicated check-run line is gone, so its weighted loss stays near the base loss.
    check = df[(df["w:pile"] == ct_ref.check_share) & (df.step == ct_ref.step) & df.domain.isin(s)]
    assert len(check) == 22
    assert abs(sum(s[d] * l for d, l in zip(check.domain, check.loss)) - ct_ref.base_loss) < 0.0025


def test_continual_pile_losses(peer_data):
    ct_ref = reference.CONTINUAL
    df = published.load_mixinglaws(peer_data / "mixinglaws" / "ct")
    s = published.load_valid_weights(peer_data / "mixinglaws" / "valid_weight.json")
    base_loss, runs = published.continual_pile_losses(df, s, step=ct_ref.step)
    assert base_loss == pytest.approx(ct_ref.base_loss, abs=1e-4)
    assert runs["r"].tolist() == sorted([*ct_ref.fit_shares, ct_ref.check_share])
    # Each run's loss is the valid-weight sum of its 22 Pile-valid losses at that step.
    at = df[(df.run_id == runs.index[0]) & (df.step == ct_ref.step) & df.domain.isin(s)]
    assert runs["loss"].iloc[0] == pytest.approx(sum(s[d] * l for d, l in zip(at.domain, at.loss)))
    with pytest.raises(ValueError, match="step 123"):
        published.continual_pile_losses(df, s, step=123)
    one_missing = df.drop(index=at.index[:1])
    with pytest.raises(ValueError, match="lack some of the 22"):
        published.continual_pile_losses(one_missing, s, step=ct_ref.step)


def test_five_mix_groups(peer_data):
    s = published.load_valid_weights(peer_data / "mixinglaws" / "valid_weight.json")
    shares = published.five_mix_group_shares(s)
    assert list(shares) == list(published.SLD_DOMAINS) and sum(shares.values()) == pytest.approx(1.0)
    assert shares["symbolic"] == pytest.approx(s["DM_Mathematics"] + s["Github"])
    with pytest.raises(ValueError, match="Github"):
        published.five_mix_group_shares({k: v for k, v in s.items() if k != "Github"})


def test_sld(peer_data):
    df = published.load_sld(peer_data / "sld" / "all_models_data.json")
    counts = df.groupby(["size_label", "split"])["run_id"].nunique()
    for size in ("70M", "160M", "305M", "410M"):
        assert counts[(size, "train")] == 20 and counts[(size, "eval")] == 6
    assert set(df["domain"]) == set(published.SLD_DOMAINS)
    assert len(df) == 4 * 26 * 5
    (W_train, L_train), (W_eval, L_eval) = published.sld_split(df, "160M")
    assert (len(W_train), len(W_eval)) == (reference.SLD.n_train, reference.SLD.n_eval)
    assert list(W_train.columns) == list(L_eval.columns) == list(published.SLD_DOMAINS)
    assert (W_train.index == L_train.index).all() and not set(W_train.index) & set(W_eval.index)
    np.testing.assert_allclose(W_eval.sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="no SLD runs of size '1B'"):
        published.sld_split(df, "1B")


@pytest.mark.parametrize("which,split,n", [("1m", "train", 512), ("1m", "test", 256), ("60m", "test", 256)])
def test_regmix(peer_data, which, split, n):
    df = published.load_regmix(peer_data / "regmix", which, split)
    assert df["run_id"].nunique() == n
    assert len(training_domains(df)) == 17 and df["domain"].nunique() == 13
    assert set(df["model_size"]) == {published.REGMIX_SIZES[which]}
    X, y = published.regmix_xy(peer_data / "regmix", which, split, target="metric/the_pile_pile_cc_val_loss")
    assert X.shape == (n, 17) and y.shape == (n,)
    # The run table and the arrays hold the same Pile-CC losses.
    tab = df[df.domain == "pile_cc"].set_index("index")["loss"].sort_index()
    np.testing.assert_allclose(tab.to_numpy(), y.sort_index().to_numpy())


def test_regmix_missing_split(peer_data):
    with pytest.raises(FileNotFoundError, match="60M runs only"):
        published.load_regmix(peer_data / "regmix", "60m", "train")
    with pytest.raises(ValueError, match="which must be"):
        published.load_regmix(peer_data / "regmix", "7b", "test")


def test_chinchilla(peer_data):
    df = published.load_chinchilla(peer_data / "chinchilla" / "svg_extracted_data.csv")
    assert df.shape == (245, 4)
    np.testing.assert_allclose(df["D"], df["C"] / (6 * df["N"]))
    assert (df["loss"] > 1.5).all()


def test_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError):
        published.load_mixinglaws(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        published.load_chinchilla(tmp_path / "nope.csv")
    folder = tmp_path / "2Mix"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="size"):
        published.load_mixinglaws(folder)
    (folder / "70M.txt").write_text("/x/70M_base2_1-0.25-0.75/1000\t/v/pythia-pile.valid.Github.bin\tnot-a-number\n")
    with pytest.raises(ValueError, match=r"70M.txt:1: loss"):
        published.load_mixinglaws(folder)
    (folder / "70M.txt").write_text("/x/70M_base2_1-0.25-0.75/1000\t1.5\n")
    with pytest.raises(ValueError, match="3 tab-separated"):
        published.load_mixinglaws(folder)
    (folder / "70M.txt").write_text("/x/weird-run/1000\t/v/pythia-pile.valid.Github.bin\t1.5\n")
    with pytest.raises(ValueError, match="does not match"):
        published.load_mixinglaws(folder)
    bad = tmp_path / "w.json"
    bad.write_text('{"a": 0.5, "b": 0.2}')
    with pytest.raises(ValueError, match="sum to"):
        published.load_valid_weights(bad)


def test_synthetic_mixinglaws_quirks(tmp_path):
    folder = tmp_path / "2Mix"
    folder.mkdir()
    lines = []
    for step, loss in ((1000, 2.0), (2000, 1.8)):
        lines.append(f"/c/70M_base2_3-0.25-0.75/{step}\t/v/pythia-pile.valid.Github.bin\t{loss}")
    lines.append("/c/70M_base2_3-0.25-0.75/last\t/v/pythia-pile.valid.Github.bin\t1.8")
    lines.append(lines[0])  # exact duplicate
    lines.append("/c/70M_base2_999-0.5-0.5/2000\t/v/pythia-pile.valid.Github.bin\t1.7")
    (folder / "70M.txt").write_text("\n".join(lines) + "\n")
    df = published.load_mixinglaws(folder)
    assert len(df) == 3
    assert df.groupby("run_id")["holdout"].first().to_dict() == {
        "2Mix/70M/70M_base2_3-0.25-0.75": False, "2Mix/70M/70M_base2_999-0.5-0.5": True}
    assert len(published.load_mixinglaws(folder, include_holdout=False)) == 2
