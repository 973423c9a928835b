"""The Olmix ratios/metrics format: read, write, round trip, and bad input named precisely."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from run_tables import synthetic_run_table

from mixkit.olmix import read_olmix, write_olmix
from mixkit.table import at_step, validate_table


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    df = validate_table(df)
    cols = ["run_id", "model_size", "step", "tokens", "domain", "loss", "seed", "config_hash",
            *sorted(c for c in df.columns if c.startswith("w:"))]
    return df[cols].sort_values(["run_id", "domain"]).reset_index(drop=True)


def test_round_trip_mixkit_olmix_mixkit(tmp_path):
    table = at_step(synthetic_run_table(n_runs=8), "last")
    ratios, metrics = write_olmix(table, tmp_path)
    assert pd.read_csv(ratios).columns.tolist() == ["run", "code", "docs", "math"]
    back = read_olmix(ratios, metrics).run_table()
    pd.testing.assert_frame_equal(_canonical(back), _canonical(table))


def test_round_trip_of_published_runs(tmp_path, peer_data):
    from mixkit.published import load_regmix

    table = load_regmix(peer_data / "regmix", "1m", "train")
    runs = read_olmix(*write_olmix(table, tmp_path))
    assert runs.weights.shape == (512, 17) and runs.metrics.shape == (512, 13)
    pd.testing.assert_frame_equal(_canonical(runs.run_table()), _canonical(table))
    X, y = runs.xy("pile_cc")
    assert y.name == "pile_cc" and len(X) == len(y) == 512
    _, mean = runs.xy(["pile_cc", "github"])
    np.testing.assert_allclose(mean, runs.metrics[["pile_cc", "github"]].mean(axis=1))
    _, weighted = runs.xy(["pile_cc", "github"], [0.25, 0.75])
    np.testing.assert_allclose(weighted, 0.25 * runs.metrics["pile_cc"] + 0.75 * runs.metrics["github"])


def _pair(tmp_path, ratios: str, metrics: str):
    r, m = tmp_path / "ratios.csv", tmp_path / "metrics.csv"
    r.write_text(ratios)
    m.write_text(metrics)
    return r, m


GOOD_R = "run,a,b\nr1,0.5,0.5\nr2,0.25,0.75\nr3,1.0,0.0\n"
GOOD_M = "run,loss,acc\nr1,3.0,0.5\nr2,2.9,0.6\nr3,3.1,0.4\n"


@pytest.mark.parametrize("ratios, metrics, message", [
    (GOOD_R, "run,loss\nr1,3\nr2,3\nr9,3\n", r"run ids differ .* 1 only in ratios \(e.g. \['r3'\]\), 1 only in metrics \(e.g. \['r9'\]\)"),
    ("run,a,b\nr1,0.5,0.5\nr2,-0.25,1.25\nr3,1,0\n", GOOD_M, r"ratios.csv: domain column 'a' has a negative .* run 'r2'"),
    ("run,a,b\nr1,0.5,0.5\nr2,x,0.75\nr3,1,0\n", GOOD_M, r"ratios.csv: domain column 'a' is not numeric at run 'r2' \(value 'x'\)"),
    ("run,a,b\nr1,0.5,0.5\nr2,0.25,0.70\nr3,1,0\n", GOOD_M, r"ratios.csv: the weights of run 'r2' sum to 0.95, not 1 .*renormalize"),
    ("name,a,b\nr1,0.5,0.5\n", GOOD_M, r"ratios.csv: no run column one of \['run', 'run_id'\]"),
    ("run,a,b\nr1,0.5,0.5\nr1,0.5,0.5\n", GOOD_M, r"ratios.csv: run 'r1' appears more than once"),
    (GOOD_R, "run,loss\nr1,3\nr2,oops\nr3,3\n", r"metrics.csv: metric column 'loss' is not numeric at run 'r2'"),
])
def test_bad_pairs_are_named(tmp_path, ratios, metrics, message):
    with pytest.raises(ValueError, match=message):
        read_olmix(*_pair(tmp_path, ratios, metrics))


def test_renormalize_only_on_request_and_says_by_how_much(tmp_path):
    r, m = _pair(tmp_path, "run,a,b\nr1,0.5,0.5\nr2,0.25,0.70\nr3,1,0\n", GOOD_M)
    runs = read_olmix(r, m, renormalize=True)
    assert runs.renormalized_by == pytest.approx(0.05)
    np.testing.assert_allclose(runs.weights.sum(axis=1), 1.0)


def test_target_errors_name_the_column_and_run(tmp_path):
    runs = read_olmix(*_pair(tmp_path, GOOD_R, "run,loss,acc\nr1,3.0,0.5\nr2,,0.6\nr3,3.1,0.4\n"))
    with pytest.raises(ValueError, match=r"target column\(s\) \['lss'\] not found; the metric columns are \['loss', 'acc'\]"):
        runs.xy("lss")
    with pytest.raises(ValueError, match=r"column 'loss' has 1 missing or non-finite value\(s\), first at run 'r2'"):
        runs.xy("loss")
    assert runs.xy("acc")[1].tolist() == [0.5, 0.6, 0.4]  # a NaN elsewhere does not block this target
    with pytest.raises(ValueError, match="target weights must be 2"):
        runs.xy(["acc", "loss"], [1.0])
