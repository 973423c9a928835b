"""`mixkit fit` end to end: CSVs in, a folder of fitted laws, a proposal with intervals and a report out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mixkit import cli, fit
from mixkit.laws.regression import LogLinearLaw

FILES = {"config.json", "oof_metrics.csv", "oof_predictions.csv", "predicted_vs_observed.png", "proposal.csv",
         "proposal.json", "proposal.png", "report.html", "summary.json", "interaction_matrix.csv",
         "interaction_matrix.png"}


def _regmix_pair(peer_data, folder):
    from mixkit.olmix import write_olmix
    from mixkit.published import load_regmix

    return write_olmix(load_regmix(peer_data / "regmix", "1m", "train"), folder)


def test_fit_regmix_pair_end_to_end(peer_data, tmp_path, capsys):
    ratios, metrics = _regmix_pair(peer_data, tmp_path / "csv")
    argv = ["fit", "--ratios", str(ratios), "--metrics", str(metrics), "--target", "pile_cc", "--out",
            str(tmp_path / "fits"), "--compare", "log-linear,linear", "--n-boot", "10"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    (folder,) = list((tmp_path / "fits").iterdir())
    assert folder.name.startswith("fit-") and f"wrote {folder}" in out
    assert FILES | {"kl_selection.csv"} <= {p.name for p in folder.iterdir()}
    prop = json.loads((folder / "proposal.json").read_text())
    w = pd.Series(prop["weights"])
    assert w.sum() == pytest.approx(1.0) and len(w) == 17
    sup = prop["support"]
    assert not sup["extrapolates"] and sup["hull_distance"] < 0.05
    assert all(sup["min_seen"][d] - 1e-9 <= w[d] <= sup["max_seen"][d] + 1e-9 for d in w.index)
    iv = pd.DataFrame(prop["weight_interval"]).T
    assert (iv["lower"] <= iv["upper"]).all() and (iv["upper"] - iv["lower"]).max() > 1e-3
    lo, hi = prop["predicted_interval"]
    assert lo < hi and 4.5 < prop["predicted_target"] < 6.0
    scores = pd.read_csv(folder / "oof_metrics.csv").set_index("law")
    assert scores.loc["log-linear", "spearman"] > 0.9 and scores.loc["log-linear", "n_folds"] == 5
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["converged"] is True and summary["kl"] in fit.DEFAULT_KL_GRID
    page = (folder / "report.html").read_text()
    assert "data:image/png;base64," in page and "<script" not in page and "http" not in page
    # The same inputs and options: the folder is reused, nothing is recomputed or rewritten.
    stamp = (folder / "summary.json").stat().st_mtime_ns
    assert cli.main(argv) == 0
    assert f"reused {folder}" in capsys.readouterr().out
    assert (folder / "summary.json").stat().st_mtime_ns == stamp and len(list((tmp_path / "fits").iterdir())) == 1


def _synthetic_table(path, n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.full(d, 2.0), n)
    t = np.array([-1.0, 0.5, -0.3, 0.8])[:d]
    rows = []
    for i, w in enumerate(W):
        for j, dom in enumerate(["x", "y"]):
            loss = 1.5 + j * 0.2 + np.exp(w @ (t if j == 0 else -t)) * np.exp(0.005 * rng.standard_normal())
            rows.append({"run_id": f"r{i}", "model_size": 1000, "step": 100, "tokens": 4096, "domain": dom,
                         "loss": loss, **{f"w:d{k}": w[k] for k in range(d)}})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_fit_run_table_with_trees_and_weighted_target(tmp_path, capsys):
    table = _synthetic_table(tmp_path / "runs.csv")
    rc = cli.main(["fit", str(table), "--target", "x,y", "--target-weights", "0.7,0.3", "--law", "lightgbm",
                   "--compare", "lightgbm,linear", "--n-boot", "3", "--out", str(tmp_path / "fits")])
    assert rc == 0, capsys.readouterr().err
    (folder,) = list((tmp_path / "fits").iterdir())
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["method"] == "topk" and summary["target"] == "weighted(x,y)" and summary["converged"] is None
    assert not (folder / "kl_selection.csv").exists()


@pytest.mark.parametrize("metrics, extra, message", [
    ("run,loss\nr0,3\nr1,3\nr9,3\n", [], r"run ids differ between"),
    (None, ["--target", "nope"], r"target column\(s\) \['nope'\] not found"),
    ("run,loss\nr0,3\nr1,\nr2,3\n", [], r"column 'loss' has 1 missing .* first at run 'r1'"),
    (None, ["--token-counts", "TOKENS", "--target-tokens", "1e12"], r"repetition caps .* sum to"),
    (None, ["--law", "mixing"], r"3 runs, fewer than the 4 parameters of law 'mixing'"),
    (None, ["--bounds", "BOUNDS"], r"bounds.csv: no mixture satisfies these bounds: lower bounds sum to 1.2000"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, metrics, extra, message):
    r = tmp_path / "ratios.csv"
    m = tmp_path / "metrics.csv"
    r.write_text("run,a,b\nr0,0.5,0.5\nr1,0.2,0.8\nr2,0.9,0.1\n")
    m.write_text(metrics or "run,loss\nr0,3.0\nr1,2.9\nr2,3.1\n")
    (tmp_path / "tokens.json").write_text('{"a": 1e9, "b": 1e9}')
    (tmp_path / "bounds.csv").write_text("domain,lo,hi\na,0.6,1\nb,0.6,1\n")
    extra = [str(tmp_path / "tokens.json") if e == "TOKENS" else e for e in extra]
    extra = [str(tmp_path / "bounds.csv") if e == "BOUNDS" else e for e in extra]
    target = [] if "--target" in extra else ["--target", "loss"]
    out = tmp_path / "fits"
    rc = cli.main(["fit", "--ratios", str(r), "--metrics", str(m), *target, *extra, "--out", str(out),
                   "--compare", "linear", "--n-boot", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert pytest.importorskip("re").search(message, err), err
    assert not out.exists()


def test_a_fit_that_stops_on_its_cap_is_never_silent(tmp_path, capsys, monkeypatch):
    table = _synthetic_table(tmp_path / "runs.csv")

    def capped(seed):
        law = LogLinearLaw(random_state=seed, max_iter=3)
        law._gauss_newton_start = lambda X, y: None  # no Gauss-Newton start: 3 iterations cannot converge
        return law

    monkeypatch.setitem(fit.LAWS, "log-linear", (capped, lambda d: d + 1, "exact"))
    rc = cli.main(["fit", str(table), "--target", "x", "--compare", "linear", "--n-boot", "2", "--kl", "0.1",
                   "--out", str(tmp_path / "fits")])
    out, err = capsys.readouterr()
    assert rc == 0
    assert "converged: False" in out
    assert "mixkit: warning: LogLinearLaw" in err and "iteration cap" in err
    (folder,) = list((tmp_path / "fits").iterdir())
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["converged"] is False and any("iteration cap" in w for w in summary["warnings"])
    assert "iteration cap" in (folder / "report.html").read_text()


def test_the_same_as_one_python_call(tmp_path):
    table = _synthetic_table(tmp_path / "runs.csv")
    options = fit.FitOptions(target="x", compare="log-linear,linear", n_boot=3, kl=0.05)
    assert options.target == ("x",) and options.compare == ("log-linear", "linear")
    bounds = tmp_path / "bounds.csv"
    bounds.write_text("domain,lo,hi\nd1,0.3,0.5\n")
    folder, reused, summary = fit.run_fit(options, tmp_path / "fits", run_table=table, bounds=bounds)
    assert not reused and summary["kl"] == 0.05 and summary["converged"] is True
    table_out = pd.read_csv(folder / "proposal.csv", index_col="domain")
    assert list(table_out.columns[:3]) == ["weight", "lower", "upper"]
    assert table_out["weight"].sum() == pytest.approx(1.0)
    assert 0.3 - 1e-9 <= table_out.loc["d1", "weight"] <= 0.5 + 1e-9
    assert fit.run_fit(options, tmp_path / "fits", run_table=table, bounds=bounds)[:2] == (folder, True)
    assert fit.run_fit(options, tmp_path / "fits", run_table=table)[0] != folder  # other inputs, other folder


def test_direction_max_proposes_the_other_end(tmp_path):
    table = _synthetic_table(tmp_path / "runs.csv")
    common = dict(target="x", compare="linear", n_boot=3, kl=0.05)
    _, _, low = fit.run_fit(fit.FitOptions(**common), tmp_path / "fits", run_table=table)
    _, _, high = fit.run_fit(fit.FitOptions(direction="max", **common), tmp_path / "fits", run_table=table)
    assert high["direction"] == "max" and high["predicted_target"] > low["predicted_target"] + 0.1
    lo, hi = high["predicted_interval"]
    assert lo <= high["predicted_target"] <= hi
