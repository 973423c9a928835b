"""Loaders for any run set in the published formats: folder names, domain lists, rounded ratios,
proportions of any width, every RegMix scale, non-embedding sizes, and errors naming file and line."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mixkit import published, reference
from mixkit.table import NON_EMBEDDING_COLUMN, training_domains, validate_table

VAL = "/v/pythia-pile.valid.{}.bin"


def write_runs(folder, size, runs, domains=("Github", "ArXiv"), steps=(1000, 2000, 3000)):
    """A <size>.txt in the mixinglaws format: runs is {run directory: base loss}."""
    folder.mkdir(exist_ok=True)
    lines = [f"/ckpt/{run}/{step}\t{VAL.format(d)}\t{base + 1000 / step + 0.1 * j}"
             for run, base in runs.items() for step in steps for j, d in enumerate(domains)]
    (folder / f"{size}.txt").write_text("\n".join(lines) + "\n")


def seven(ratios):
    return "-".join(f"{r:g}" for r in ratios)


def test_any_folder_name_infers_seven_domains_and_renormalises_rounded_ratios(tmp_path):
    folder = tmp_path / "my_release"
    good = [0.25, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125]
    off = [0.3, 0.12, 0.12, 0.12, 0.12, 0.12, 0.12]  # sums to 1.02, the case
    write_runs(folder, "70M", {f"70M_1-{seven(good)}": 2.0, f"70M_RPX_2-{seven(off)}": 2.1})
    with pytest.warns(UserWarning) as record:
        df = published.load_mixinglaws(folder)
    text = " ".join(str(w.message) for w in record)
    assert "d1" in text and "0.02" in text and "renormalised" in text
    assert training_domains(df) == [f"d{j}" for j in range(1, 8)]
    W = df.groupby("run_id")[[f"w:d{j}" for j in range(1, 8)]].first()
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    np.testing.assert_allclose(W.loc["my_release/70M/70M_RPX_2-" + seven(off)].iloc[0], 0.3 / 1.02)
    assert df[NON_EMBEDDING_COLUMN].unique().tolist() == [reference.PYTHIA.non_embedding["70M"]]
    with pytest.raises(ValueError, match=r"70M\.txt:\d+: .*off 1 by 0\.02 > ratio_tol=0\.01"):
        published.load_mixinglaws(folder, ratio_tol=0.01)


def test_given_domains_and_size_map(tmp_path):
    folder = tmp_path / "3Mix"
    write_runs(folder, "70M", {"70M_1-0.5-0.25-0.25": 2.0})
    write_runs(folder, "9M", {"9M_1-0.5-0.25-0.25": 2.5})
    names = ["code", "books", "web"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known domains given: nothing to warn about
        df = published.load_mixinglaws(folder, domains=names, size_map={"70M": 19_000_000, "9M": 3_000_000})
    assert training_domains(df) == names
    assert dict(df.groupby("size_label")[NON_EMBEDDING_COLUMN].first()) == {"70M": 19_000_000, "9M": 3_000_000}
    df = published.load_mixinglaws(folder, domains=names)
    assert df.loc[df.size_label == "9M", NON_EMBEDDING_COLUMN].isna().all()  # not a Pythia size
    with pytest.raises(ValueError, match=r"70M\.txt:1: run .* has 3 ratios but 3Mix has 2 training domains"):
        published.load_mixinglaws(folder, domains=["a", "b"])


def test_bad_lines_name_file_and_line(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "70M.txt").write_text(f"/c/70M_1-0.5-0.5/1000\t{VAL.format('A')}\t2.0\n"
                                    f"/c/70M_2-0.5-0.5-0.1/1000\t{VAL.format('A')}\t2.0\n")
    with pytest.warns(UserWarning, match="d1"), pytest.raises(ValueError, match=r"70M\.txt:2: run .* has 3 ratios but x has 2"):
        published.load_mixinglaws(folder)
    (folder / "70M.txt").write_text(f"/c/70M_1-0.5-0.5/1000\t{VAL.format('A')}\t-2.0\n")
    with pytest.raises(ValueError, match=r"70M\.txt:1: loss"):
        published.load_mixinglaws(folder)


def test_proportions_of_any_width(tmp_path):
    p = tmp_path / "proportions.txt"
    p.write_text("0.5-0.25-0.25\n\n0.2-0.2-0.61\n")
    with pytest.warns(UserWarning, match="0.01"):
        props = published.load_proportions(p, domains=None)
    assert list(props.columns) == ["d1", "d2", "d3"] and len(props) == 2
    np.testing.assert_allclose(props.sum(axis=1), 1.0)
    p.write_text("0.5-0.5\n0.2-0.2-0.6\n")
    with pytest.raises(ValueError, match=r"proportions\.txt:2: 3 ratios for 2 domains"):
        published.load_proportions(p, domains=None)
    p.write_text("0.5-0.5\n0.2-0.2\n")
    with pytest.raises(ValueError, match=r"proportions\.txt:2: .*sum to 0\.4"):
        published.load_proportions(p, domains=["a", "b"])


def write_regmix(folder, which, n=4, bad=None):
    doms = ["arxiv", "pile_cc", "github"]
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(3), n).round(3)
    mix = ["index," + ",".join(f"train_the_pile_{d}" for d in doms)]
    mix += [f"{i}," + ",".join(f"{w:g}" for w in row) for i, row in enumerate(W)]
    loss = ["index," + ",".join(f"metric/the_pile_{d}_val_loss" for d in doms[:2])]
    loss += [f"{i},{2 + i * 0.1},{3 + i * 0.1}" for i in range(n)]
    if bad is not None:
        loss[bad] = loss[bad].rsplit(",", 1)[0] + ",oops"
    (folder / f"test_mixture_{which}.csv").write_text("\n".join(mix) + "\n")
    (folder / f"test_pile_loss_{which}.csv").write_text("\n".join(loss) + "\n")


def test_regmix_every_scale_including_1b(tmp_path):
    write_regmix(tmp_path, "1B")  # the release spells the 1B files with a capital B
    df = published.load_regmix(tmp_path, "1b", "test")
    validate_table(df)
    assert set(df["model_size"]) == {1_000_000_000} and df["run_id"].nunique() == 4
    assert set(df["domain"]) == {"arxiv", "pile_cc"}
    X, y = published.regmix_xy(tmp_path, "1B", "test")
    assert X.shape == (4, 3) and len(y) == 4
    with pytest.raises(FileNotFoundError, match="only for its test mixtures"):
        published.load_regmix(tmp_path, "1b", "train")
    write_regmix(tmp_path, "1B", bad=3)
    with pytest.raises(ValueError, match=r"test_pile_loss_1B\.csv:4: column 'pile_cc' \(index 2\) holds 'oops'"):
        published.load_regmix(tmp_path, "1b", "test")


def test_released_5mix_carries_pythia_non_embedding_sizes(peer_data):
    df = published.load_mixinglaws(peer_data / "mixinglaws" / "5Mix", sizes=["70M", "305M", "1B"])
    sizes = df.groupby("size_label")[NON_EMBEDDING_COLUMN].first().to_dict()
    assert sizes == {k: reference.PYTHIA.non_embedding[k] for k in ("70M", "305M", "1B")}
    assert df["model_size"].min() == 70_000_000  # the nominal size stays where it was
