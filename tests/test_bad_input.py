"""Bad input gets a clear error that names the problem, and writes nothing.

Each case snapshots the folder the call could write to (data dir, run store, report output) and
checks it is byte-for-byte unchanged after the error.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mixkit import corpus
from mixkit.mixture import Mixture
from mixkit.table import pivot_losses, validate_table

from run_tables import synthetic_run_table

DOMAINS = ["code", "docs", "math"]


def snapshot(root: Path) -> dict[str, str] | None:
    """Every file and folder under root (hidden ones included) with a content hash; None if absent."""
    if not root.exists():
        return None
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "dir"
        for f in filenames:
            p = Path(dirpath, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ---------------------------------------------------------------------- mixtures


@pytest.mark.parametrize("weights, problem", [
    ({"code": -0.2, "docs": 0.7, "math": 0.5}, r"'code'.*negative"),
    ({"code": math.nan, "docs": 0.5, "math": 0.5}, r"'code'.*not finite"),
    ({"code": math.inf, "docs": 0.5, "math": 0.5}, r"'code'.*not finite"),
    ({"code": "lots", "docs": 0.5, "math": 0.5}, r"'code'.*not a number"),
    ({"code": 0.5, "docs": 0.2, "math": 0.2}, r"sum to 0\.9.*not 1"),
    ({"code": 0.7, "docs": 0.7}, r"sum to 1\.4.*not 1"),
    ({"code": 0.5, "web": 0.5}, r"unknown domain 'web'"),
    ({"code": 0.5}, r"sum to 0\.5.*not 1"),  # a missing domain gets 0, so the rest must sum to 1
    ({}, r"empty"),
])
def test_bad_mixtures_name_the_problem(weights, problem):
    with pytest.raises(ValueError, match=problem):
        Mixture(weights, domains=DOMAINS)


def test_mixture_array_and_domain_mismatches():
    with pytest.raises(ValueError, match=r"3 weights but 2 domains"):
        Mixture.from_array([0.2, 0.3, 0.5], ["code", "docs"])
    with pytest.raises(ValueError, match=r"'code' is listed twice"):
        Mixture({"code": 1.0}, domains=["code", "code"])
    m = Mixture({"code": 0.5, "math": 0.5}, domains=DOMAINS)
    # Dropping a domain that carries weight would silently renormalize; it must raise instead.
    with pytest.raises(ValueError, match=r"\['math'\].*positive weight"):
        m.as_array(["code", "docs"])
    np.testing.assert_allclose(m.as_array(["math", "code"]), [0.5, 0.5])  # a zero-weight domain may go


# ---------------------------------------------------------------------- run tables and laws


def good_table(n_runs: int = 6, steps=(100, 200, 400, 800)) -> pd.DataFrame:
    return synthetic_run_table(n_runs, train_domains=DOMAINS, val_domains=("code", "docs"), steps=steps)


def test_good_table_is_valid():
    out = validate_table(good_table())
    assert len(out) == 6 * 4 * 2
    W, L = pivot_losses(good_table())
    assert W.shape == (6, 3) and L.shape == (6, 2)


@pytest.mark.parametrize("column", ["run_id", "model_size", "step", "tokens", "domain", "loss"])
def test_table_missing_column(column):
    df = good_table().drop(columns=[column])
    before = df.copy()
    with pytest.raises(ValueError, match=rf"missing required column\(s\) \['{column}'\]"):
        validate_table(df)
    with pytest.raises(ValueError, match=rf"missing required column\(s\) \['{column}'\]"):
        pivot_losses(df)
    pd.testing.assert_frame_equal(df, before)  # the caller's table is not touched


def test_table_without_weight_columns():
    df = good_table().drop(columns=[f"w:{d}" for d in DOMAINS])
    with pytest.raises(ValueError, match=r"no training-domain weight columns.*'w:<domain>'"):
        validate_table(df)


@pytest.mark.parametrize("bad, problem", [
    (math.nan, r"1 NaN/infinite loss"),
    (math.inf, r"1 NaN/infinite loss"),
    (0.0, r"1 non-positive loss"),
    (-1.5, r"1 non-positive loss"),
    ("n/a", r"1 NaN/infinite loss"),
])
def test_table_bad_losses(bad, problem):
    df = good_table()
    df["loss"] = df["loss"].astype(object)
    df.loc[5, "loss"] = bad
    before = df.copy()
    with pytest.raises(ValueError, match=problem) as err:
        validate_table(df)
    assert "run0" in str(err.value)  # names the offending run
    pd.testing.assert_frame_equal(df, before)


def test_table_bad_weights():
    df = good_table()
    df["w:code"] = df["w:code"] + 0.5
    with pytest.raises(ValueError, match=r"sum to 1 per row.*1\.5"):
        validate_table(df)
    df = good_table()
    df.loc[0, "w:docs"] = math.nan
    with pytest.raises(ValueError, match=r"NaN/infinite mixture weights"):
        validate_table(df)


def test_empty_table():
    with pytest.raises(ValueError, match=r"empty"):
        validate_table(good_table().iloc[:0])
    with pytest.raises(ValueError, match=r"must be a pandas DataFrame"):
        validate_table({"loss": [1.0]})


def _quiet_fit(law, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return law.fit(X, y)


def test_laws_reject_bad_losses():
    from mixkit.laws import MixingLaw, SizeLaw, StepLaw

    S = np.array([100.0, 200.0, 400.0, 800.0])
    y = 2.0 + 5.0 / S ** 0.5
    for bad, problem in ((math.nan, "NaN"), (math.inf, "infinite"), (0.0, "positive"), (-1.0, "positive")):
        yb = y.copy()
        yb[2] = bad
        with pytest.raises(ValueError, match=problem):
            StepLaw(n_starts=2).fit(S, yb)
    with pytest.raises(ValueError, match=r"steps must be finite and positive"):
        StepLaw(n_starts=2).fit(np.array([0.0, 200.0, 400.0, 800.0]), y)
    with pytest.raises(ValueError, match=r"model sizes must be finite and positive"):
        SizeLaw(n_starts=2).fit(np.array([-1.0, 2e6, 4e6, 8e6]), y)
    with pytest.raises(ValueError, match=r"X has 4 rows but y has 3"):
        StepLaw(n_starts=2).fit(S, y[:3])
    W, L = pivot_losses(good_table())
    L = L.copy()
    L.iloc[1, 0] = math.nan
    with pytest.raises(ValueError, match=r"NaN"):
        MixingLaw(n_starts=2).fit(W, L)


def test_laws_reject_fewer_points_than_parameters():
    from mixkit.laws import MixingLaw, SizeLaw, StepLaw

    with pytest.raises(ValueError, match=r"fewer data points \(2\) than law parameters \(3\)"):
        StepLaw(n_starts=2).fit(np.array([100.0, 200.0]), np.array([3.0, 2.9]))
    with pytest.raises(ValueError, match=r"fewer data points \(2\) than law parameters \(3\)"):
        SizeLaw(n_starts=2).fit(np.array([1e6, 1e7]), np.array([3.0, 2.9]))
    # A mixing law over 3 training domains has c, k and 3 t's: 4 runs cannot pin 5 parameters.
    W, L = pivot_losses(good_table(n_runs=4))
    with pytest.raises(ValueError, match=r"fewer data points \(4\) than law parameters \(5\)"):
        MixingLaw(n_starts=2).fit(W, L)
    _quiet_fit(MixingLaw(n_starts=2, random_state=0), *pivot_losses(good_table(n_runs=6)))  # 6 runs do


def test_nested_prediction_rejects_bad_tables():
    from mixkit.laws import nested_prediction

    with pytest.raises(ValueError, match=r"missing required column\(s\) \['loss'\]"):
        nested_prediction(good_table().drop(columns=["loss"]), target_step=1600, target_size=None, progress=False)
    df = good_table()
    df.loc[3, "loss"] = -2.0
    with pytest.raises(ValueError, match=r"non-positive loss"):
        nested_prediction(df, target_step=1600, target_size=None, progress=False)
    with pytest.raises(ValueError, match=r"has 2 step\(s\).*at least 3"):
        nested_prediction(good_table(steps=(100, 200)), target_step=1600, target_size=None, progress=False)
    with pytest.raises(ValueError, match=r"validation domain\(s\) \['legal'\] not in the table"):
        nested_prediction(good_table(), target_step=1600, target_size=None, domains=["legal"], progress=False)


# ---------------------------------------------------------------------- CLI


def test_cli_report_unknown_preset(tmp_path, capsys):
    from mixkit import cli, report

    out = tmp_path / "reports"
    default_out = report.REPO / "reports" / "nope"
    existed = default_out.exists()
    assert cli.main(["report", "--preset", "nope", "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err
    assert "available" in err
    for name in report.available_presets():
        assert repr(name) in err
    assert not out.exists()
    assert cli.main(["report", "--preset", "nope"]) != 0
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert default_out.exists() == existed


def test_cli_runs_missing_store(tmp_path, capsys):
    from mixkit import cli

    store = tmp_path / "nonexistent"
    rc = cli.main(["runs", "--json", str(store)])
    captured = capsys.readouterr()
    assert rc != 0
    assert str(store) in captured.err and "does not exist" in captured.err
    assert captured.out == ""  # no JSON that a script could mistake for an empty store
    assert not store.exists()
    assert cli.main(["runs", "--json", "/nonexistent"]) != 0
    assert "/nonexistent" in capsys.readouterr().err


def test_cli_corpus_info_missing_tokens(tmp_path, capsys):
    from mixkit import cli

    rc = cli.main(["corpus", "info", "--tokens", "/nonexistent"])
    captured = capsys.readouterr()
    assert rc != 0
    assert "/nonexistent" in captured.err
    assert "mixkit corpus build" in captured.err
    assert captured.out == ""
    assert not Path("/nonexistent").exists()
    data = tmp_path / "data"
    assert cli.main(["--data-dir", str(data), "corpus", "info", "--json"]) != 0
    assert "no token manifest" in capsys.readouterr().err
    assert not data.exists()


def test_cli_sweep_missing_tokens(tmp_path, capsys):
    from mixkit import cli

    store = tmp_path / "store"
    rc = cli.main(["sweep", "--tokens", str(tmp_path / "nope"), "--store", str(store), "--design", "uniform"])
    assert rc != 0
    assert "no token manifest" in capsys.readouterr().err
    assert not store.exists()


# ---------------------------------------------------------------------- user corpus folders


def write_domains(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return root


GOOD = {
    "code/a.txt": b"def f(x):\n    return x\n",
    "prose/b.jsonl": b'{"text": "It was a dark and stormy night."}\n{"text": "The end."}\n',
}


def assert_no_corpus_written(data: Path, name: str):
    assert not (data / "corpus" / name).exists()
    leftovers = sorted(p.name for p in (data / "corpus").iterdir()) if (data / "corpus").exists() else []
    assert leftovers == [], f"from_folders left {leftovers} in {data / 'corpus'}"


def test_from_folders_accepts_good_input(tmp_path):
    src = write_domains(tmp_path / "src", GOOD)
    c = corpus.from_folders(src, name="mine", data_dir=tmp_path / "data", progress=False)
    assert c.domains == ["code", "prose"]
    assert list(c.documents("prose")) == ["It was a dark and stormy night.", "The end."]


@pytest.mark.parametrize("files, where, problem", [
    ({"code/a.txt": b"\x7fELF\x00\x00\x01binary"}, "code/a.txt", r"binary \(contains NUL bytes\)"),
    ({"code/a.txt": "caf\u00e9 au lait".encode("latin-1")}, "code/a.txt", r"not valid UTF-8"),
    ({"prose/b.jsonl": '{"text": "caf\u00e9"}\n'.encode("latin-1")}, "prose/b.jsonl:1", r"not valid UTF-8"),
    ({"prose/b.jsonl": b'{"text": "ok"}\n{"body": "no text field"}\n'}, "prose/b.jsonl:2", r"no string 'text' field"),
    ({"prose/b.jsonl": b'{"text": "ok"}\n{"text": 42}\n'}, "prose/b.jsonl:2", r"no string 'text' field"),
    ({"prose/b.jsonl": b'{"text": "ok"}\n{"text": "unterminated\n'}, "prose/b.jsonl:2", r"not valid JSON"),
])
def test_from_folders_rejects_bad_files(tmp_path, files, where, problem):
    src = write_domains(tmp_path / "src", {**GOOD, **files})
    data = tmp_path / "data"
    with pytest.raises(ValueError, match=problem) as err:
        corpus.from_folders(src, name="mine", data_dir=data, progress=False)
    assert str(src / where) in str(err.value)
    assert_no_corpus_written(data, "mine")


def test_from_folders_rejects_parquet_without_text(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src = write_domains(tmp_path / "src", GOOD)
    (src / "tables").mkdir()
    pq.write_table(pa.table({"body": ["a", "b"]}), src / "tables" / "t.parquet")
    data = tmp_path / "data"
    with pytest.raises(ValueError, match=r"no 'text' column") as err:
        corpus.from_folders(src, name="mine", data_dir=data, progress=False)
    assert str(src / "tables" / "t.parquet") in str(err.value)
    assert_no_corpus_written(data, "mine")


@pytest.mark.parametrize("files", [
    {"empty/.keep": b""},                              # a domain folder without readable files
    {"empty/a.txt": b"", "empty/b.txt": b"  \n\t\n"},  # files, but every document is blank
    {"empty/a.jsonl": b'{"text": ""}\n\n'},
])
def test_from_folders_rejects_empty_domain(tmp_path, files):
    src = write_domains(tmp_path / "src", {**GOOD, **files})
    data = tmp_path / "data"
    with pytest.raises(ValueError, match=r"domain 'empty'.*no (documents|\.txt)"):
        corpus.from_folders(src, name="mine", data_dir=data, progress=False)
    assert_no_corpus_written(data, "mine")


def test_from_folders_bad_layout(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        corpus.from_folders(tmp_path / "missing", data_dir=data, progress=False)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.txt").write_text("no domain folders")
    with pytest.raises(ValueError, match=r"no domain sub-folders"):
        corpus.from_folders(flat, data_dir=data, progress=False)
    src = write_domains(tmp_path / "src", {**GOOD, "bad name!/a.txt": b"text"})
    with pytest.raises(ValueError, match=r"domain name 'bad name!'"):
        corpus.from_folders(src, name="mine", data_dir=data, progress=False)
    with pytest.raises(ValueError, match=r"'builtin' is reserved"):
        corpus.from_folders(tmp_path / "src", name="builtin", data_dir=data, progress=False)
    assert_no_corpus_written(data, "mine")


def test_failed_rebuild_keeps_the_previous_corpus(tmp_path):
    src = write_domains(tmp_path / "src", GOOD)
    data = tmp_path / "data"
    corpus.from_folders(src, name="mine", data_dir=data, progress=False)
    before = snapshot(data)
    write_domains(src, {"prose/c.jsonl": b'{"text": "fine"}\n{"txt": "typo"}\n'})
    with pytest.raises(ValueError, match=r"c\.jsonl:2 has no string 'text' field"):
        corpus.from_folders(src, name="mine", data_dir=data, progress=False)
    assert snapshot(data) == before
    assert corpus.load(data / "corpus" / "mine", verify=True).domains == ["code", "prose"]


# ---------------------------------------------------------------------- sweeps


def fake_tokens(domains=DOMAINS):
    return SimpleNamespace(domains=list(domains), fingerprint="f" * 64, root=None, train={}, val={})


@pytest.mark.parametrize("mixture", [
    {"web": 1.0},
    Mixture({"web": 0.5, "code": 0.5}),
    [Mixture({"code": 1.0}), Mixture({"news": 1.0})],  # a bad mixture late in the list still fails first
])
def test_sweep_unknown_domains_write_no_run(tmp_path, mixture):
    from mixkit import runs
    from mixkit.proxy import ProxyConfig

    store = tmp_path / "store"
    (store / "existing").mkdir(parents=True)
    (store / "existing" / "note.txt").write_text("a run of an earlier sweep")
    before = snapshot(store)
    with pytest.raises(ValueError, match=r"'web'|'news'") as err:
        runs.sweep(ProxyConfig.preset("tiny"), mixture, fake_tokens(), store, workers=1, progress=False)
    assert "code" in str(err.value) or "domain" in str(err.value)
    assert snapshot(store) == before


def test_sweep_unknown_domains_create_no_store(tmp_path):
    from mixkit import runs
    from mixkit.proxy import ProxyConfig

    store = tmp_path / "new-store"
    with pytest.raises(ValueError, match=r"unknown domain 'web'"):
        runs.sweep(ProxyConfig.preset("tiny"), {"web": 1.0}, fake_tokens(), store, workers=1, progress=False)
    assert not store.exists()


def test_sweep_rejects_empty_plan(tmp_path):
    from mixkit import runs
    from mixkit.proxy import ProxyConfig

    store = tmp_path / "store"
    store.mkdir()
    with pytest.raises(ValueError, match=r"at least one config and one mixture"):
        runs.sweep(ProxyConfig.preset("tiny"), [], fake_tokens(), store, workers=1, progress=False)
    assert snapshot(store) == {}
