"""Run-table helpers on a small hand-made run table with known answers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mixkit.table import (at_step, last_step, mixture_weights, pivot_curves, pivot_losses, select_runs,
                          target_loss, validate_table)

# run -> (weights of training domains a, b, c; recorded steps). r2 stopped early; r3 trained on c,
# which is no validation domain here.
RUNS = {
    "r1": ({"a": 1.0, "b": 0.0, "c": 0.0}, (0, 10, 20)),
    "r2": ({"a": 0.5, "b": 0.5, "c": 0.0}, (0, 10)),
    "r3": ({"a": 0.25, "b": 0.25, "c": 0.5}, (0, 10, 20)),
}
OFFSET = {"r1": 0.0, "r2": 0.5, "r3": 1.0}


def loss(run: str, step: int, domain: str) -> float:
    return 5.0 - step / 10 + OFFSET[run] + (0.25 if domain == "b" else 0.0)


def make_table() -> pd.DataFrame:
    rows = [{"run_id": rid, "model_size": 1000, "step": s, "tokens": 64 * s, "domain": d, "loss": loss(rid, s, d),
             "seed": 0, "config_hash": "h", **{f"w:{k}": v for k, v in weights.items()}}
            for rid, (weights, steps) in RUNS.items() for s in steps for d in ("a", "b")]
    return pd.DataFrame(rows)


@pytest.fixture
def table() -> pd.DataFrame:
    return validate_table(make_table())


# mixture_weights, last_step, at_step, target_loss

def test_mixture_weights_one_row_per_run_without_prefix(table):
    W = mixture_weights(table)
    assert list(W.index) == ["r1", "r2", "r3"]
    assert list(W.columns) == ["a", "b", "c"]
    assert W.loc["r3"].tolist() == [0.25, 0.25, 0.5]
    assert W.loc["r2"].tolist() == [0.5, 0.5, 0.0]


def test_mixture_weights_without_weight_columns_raises(table):
    with pytest.raises(ValueError, match="no training-domain weight columns"):
        mixture_weights(table.drop(columns=["w:a", "w:b", "w:c"]))


def test_last_step_is_each_runs_own_final_step(table):
    last = last_step(table)
    assert last.groupby("run_id")["step"].unique().map(list).to_dict() == {"r1": [20], "r2": [10], "r3": [20]}
    assert len(last) == 3 * 2  # three runs, two validation domains


def test_at_step_last_and_exact(table):
    pd.testing.assert_frame_equal(at_step(table, "last"), last_step(table))
    at10 = at_step(table, 10)
    assert sorted(at10["run_id"].unique()) == ["r1", "r2", "r3"] and set(at10["step"]) == {10}
    assert at_step(table, 30).empty  # a step nobody recorded selects nothing


@pytest.mark.parametrize("bad", ["first", None, "ten"])
def test_at_step_rejects_a_step_that_is_not_last_or_an_int(table, bad):
    with pytest.raises(ValueError, match="step must be 'last' or an int"):
        at_step(table, bad)


def test_target_loss_mean_domain_and_weights():
    L = pd.DataFrame({"a": [4.0, 3.0], "b": [2.0, 5.0]}, index=["r1", "r2"])
    assert target_loss(L).tolist() == [3.0, 4.0]
    assert target_loss(L, "b").tolist() == [2.0, 5.0]
    weighted = target_loss(L, {"a": 0.75, "b": 0.25})
    assert weighted.tolist() == [3.5, 3.5]
    assert weighted.name == "target" and list(weighted.index) == ["r1", "r2"]


def test_target_loss_unknown_target_raises():
    L = pd.DataFrame({"a": [4.0], "b": [2.0]})
    with pytest.raises(ValueError, match="target must be 'mean', a validation domain"):
        target_loss(L, "c")
    with pytest.raises(ValueError, match=r"target weights name validation domain\(s\) \['c'\]"):
        target_loss(L, {"a": 0.5, "c": 0.5})


# select_runs

def test_select_runs_keeps_the_rows_of_these_runs_in_table_order(table):
    shuffled = table.sample(frac=1.0, random_state=1)
    out = select_runs(shuffled, ["r3", "r1"])
    assert set(out["run_id"]) == {"r1", "r3"}
    assert list(out.index) == [i for i in shuffled.index if shuffled.at[i, "run_id"] in ("r1", "r3")]
    assert list(out.columns) == list(table.columns)
    pd.testing.assert_frame_equal(select_runs(table, "r2"), table[table["run_id"] == "r2"])  # one id as a string


def test_select_runs_with_domains_drops_rows_and_weight_columns(table):
    out = select_runs(table, ["r1", "r2"], domains=["a", "b"])
    assert "w:c" not in out.columns and {"w:a", "w:b"} <= set(out.columns)
    assert len(out) == (3 + 2) * 2
    validate_table(out)  # still a valid run table: r1 and r2 never trained on c
    only_a = select_runs(table, ["r1"], domains="a")
    assert set(only_a["domain"]) == {"a"} and "w:b" not in only_a.columns
    assert only_a["loss"].tolist() == [loss("r1", s, "a") for s in (0, 10, 20)]


def test_select_runs_refuses_to_drop_a_domain_a_run_trained_on(table):
    with pytest.raises(ValueError, match=r"r3.*training domain\(s\) \['c'\].*do not sum to 1"):
        select_runs(table, ["r1", "r3"], domains=["a", "b"])
    out = select_runs(table, ["r3"], domains=["a", "b", "c"])  # a training-only domain may be named
    assert set(out["domain"]) == {"a", "b"} and "w:c" in out.columns


def test_select_runs_bad_input_raises(table):
    with pytest.raises(ValueError, match=r"1 run id\(s\) not in the run table, e.g. \['nope'\]"):
        select_runs(table, ["r1", "nope"])
    with pytest.raises(ValueError, match=r"domain\(s\) \['x'\] are neither training nor validation"):
        select_runs(table, ["r1"], domains=["a", "x"])
    with pytest.raises(ValueError, match="run_ids is empty"):
        select_runs(table, [])
    with pytest.raises(ValueError, match="not a run table"):
        select_runs(table.drop(columns=["domain"]), ["r1"])


# pivot_curves

def test_pivot_curves_one_sorted_row_per_run_and_step(table):
    W, L = pivot_curves(table.sample(frac=1.0, random_state=2))
    expected = [("r1", 0), ("r1", 10), ("r1", 20), ("r2", 0), ("r2", 10), ("r3", 0), ("r3", 10), ("r3", 20)]
    assert list(L.index) == expected and list(W.index) == expected
    assert L.index.names == ["run_id", "step"] and W.index.names == ["run_id", "step"]
    assert list(W.columns) == ["a", "b", "c"] and list(L.columns) == ["a", "b"]
    assert L.loc[("r2", 10)].tolist() == [loss("r2", 10, "a"), loss("r2", 10, "b")]
    assert W.loc[("r3", 20)].tolist() == [0.25, 0.25, 0.5] and W.loc[("r3", 0)].tolist() == [0.25, 0.25, 0.5]


def test_pivot_curves_min_step_and_domains(table):
    W, L = pivot_curves(table, domains=["b", "a"], min_step=1)
    assert 0 not in L.index.get_level_values("step")
    assert len(L) == 5
    assert list(L.columns) == ["b", "a"] and list(W.columns) == ["b", "a"]  # in the order asked
    assert L.loc[("r3", 20), "b"] == loss("r3", 20, "b")


def test_pivot_curves_drops_points_missing_a_domain(table):
    gap = table.drop(table.index[(table["run_id"] == "r1") & (table["step"] == 10) & (table["domain"] == "b")])
    W, L = pivot_curves(gap)
    assert ("r1", 10) not in L.index and ("r1", 10) not in W.index and len(L) == 7


def test_pivot_curves_bad_input_raises(table):
    with pytest.raises(ValueError, match="no runs recorded a step >= min_step=30"):
        pivot_curves(table, min_step=30)
    with pytest.raises(ValueError, match=r"domain\(s\) \['x'\] are neither"):
        pivot_curves(table, domains=["x"])
    with pytest.raises(ValueError, match="at least one validation and one training domain"):
        pivot_curves(table, domains=["c"])  # c is a training domain only: no losses to fit
    bad = table.assign(loss=table["loss"].where(table["step"] != 10, np.nan))
    with pytest.raises(ValueError, match="NaN/infinite loss"):
        pivot_curves(bad)


def test_pivot_curves_matches_the_hand_built_fit_inputs_exactly(table):
    # The construction notebook 03 used before pivot_curves: same rows, same order, same bits.
    doms = ["b", "a"]
    rows = select_runs(table.sample(frac=1.0, random_state=3), ["r1", "r2"], domains=doms)
    curves = rows[rows["step"] > 0]
    y_steps = curves.pivot_table(index=["run_id", "step"], columns="domain", values="loss")[doms]
    X_old = y_steps.index.to_frame(index=False).join(mixture_weights(curves)[doms], on="run_id")
    W, L = pivot_curves(rows, domains=doms, min_step=1)
    X_new = W.reset_index()
    pd.testing.assert_frame_equal(X_new, X_old, check_exact=True)
    np.testing.assert_array_equal(L.to_numpy(), y_steps.to_numpy())
    assert list(L.index) == list(y_steps.index)


def test_pivot_curves_agrees_with_pivot_losses_at_the_last_step(table):
    W, L = pivot_curves(table)
    W_last, L_last = pivot_losses(table)
    final = L.groupby(level="run_id").tail(1).droplevel("step")
    pd.testing.assert_frame_equal(final, L_last, check_names=False)
    pd.testing.assert_frame_equal(W.groupby(level="run_id").tail(1).droplevel("step"), W_last, check_names=False)


def test_pivots_warn_about_runs_whose_mixture_changed_while_training():
    from run_tables import synthetic_run_table

    table = synthetic_run_table(n_runs=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pivot_losses(table)  # no mixing column: fixed mixtures, silent
        pivot_losses(table.assign(mixing=np.nan))
    dynamic = table.assign(mixing=np.where(table["run_id"] == table["run_id"].iloc[0], "odm", None))
    with pytest.warns(UserWarning, match=r"1 run\(s\) trained on a changing mixture \(\['odm'\]\)"):
        pivot_losses(dynamic)
    with pytest.warns(UserWarning, match="changing mixture"):
        pivot_curves(dynamic)
