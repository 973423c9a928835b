"""Issue 16, items 2 and 3: the run table refuses wrong data, and the laws refuse inputs that are not mixtures.

Part A is one parametrised table of bad run tables -> the message expected (naming the column, the run
and the row), checked through every entry point that takes a table, with nothing written by
`import_runs`. Part B is the same for the laws' X: rows that are not mixtures are refused at fit and at
predict, naming the row, unless the law is built with ``simplex=False``.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from mixkit.laws import (
    BiMixLaw, ContinualMixingLaw, ImplicitMixingLaw, LightGBMLaw, LinearRegressionLaw, LogLinearLaw, MixingLaw,
    StepLaw, compare_laws, nested_prediction, seed_noise_floor,
)
from mixkit.optimize import optimize_mixture
from mixkit.runs import import_runs, load_runs
from mixkit.table import WEIGHT_SUM_ATOL, last_step, pivot_losses, validate_table

from run_tables import synthetic_run_table

DOMAINS = ("a", "b", "c")
STEPS = (100, 200, 400, 800, 1600)


def good_table(n_runs: int = 6) -> pd.DataFrame:
    """n_runs runs on Dirichlet mixtures, every STEP, two validation domains; index 0..n-1."""
    return synthetic_run_table(n_runs, train_domains=DOMAINS, val_domains=("a", "b"), steps=STEPS)


# The example row of every bad table: run1, step 400, domain "a" (runs hold 10 rows each).
ROW = 14


def _set(column, value):
    def mutate(df):
        df[column] = df[column].astype(object)
        df.loc[ROW, column] = value
        return df
    return mutate


def _duplicate(df):
    return pd.concat([df, df.loc[[ROW]]], ignore_index=True)


def _second_mixture(df):
    # run1's last two steps come from another mixture under the same id.
    rows = (df["run_id"] == "run1") & (df["step"] >= 800)
    df.loc[rows, ["w:a", "w:b", "w:c"]] = [0.2, 0.3, 0.5]
    return df


def _weights_sum_to(total):
    def mutate(df):
        df.loc[ROW, "w:a"] += total - df.loc[ROW, ["w:a", "w:b", "w:c"]].sum()
        return df
    return mutate


def _run_value(column, value):
    def mutate(df):
        df.loc[ROW, column] = value
        return df
    return mutate


AT_ROW = rf"at row {ROW} \(run 'run1'\)"
BAD_TABLES = [
    # (id, mutation, message)
    ("step text", _set("step", "ten"), rf"column 'step' has 1 value\(s\) that are not numbers, e.g. 'ten' {AT_ROW}"),
    ("step fraction", _set("step", 8.5), rf"column 'step' has 1 value\(s\) that are not integers, e.g. 8.5 {AT_ROW}"),
    ("step negative", _set("step", -10), rf"column 'step' has 1 value\(s\) below 0, e.g. -10 {AT_ROW}"),
    ("step missing", _set("step", np.nan), rf"column 'step' has 1 missing value\(s\), e.g. nan {AT_ROW}"),
    ("step infinite", _set("step", np.inf),
     rf"column 'step' has 1 value\(s\) that are not integers, e.g. inf {AT_ROW}"),
    ("step boolean", lambda df: df.assign(step=df["step"] > 0),
     r"column 'step' has 60 boolean value\(s\) \(integers expected\), e.g. True at row 0 \(run 'run0'\)"),
    ("tokens text", _set("tokens", "many"),
     rf"column 'tokens' has 1 value\(s\) that are not numbers, e.g. 'many' {AT_ROW}"),
    ("tokens negative", _set("tokens", -1), rf"column 'tokens' has 1 value\(s\) below 0, e.g. -1 {AT_ROW}"),
    ("tokens fraction", _set("tokens", 1.5),
     rf"column 'tokens' has 1 value\(s\) that are not integers, e.g. 1.5 {AT_ROW}"),
    ("size text", _set("model_size", "big"),
     rf"column 'model_size' has 1 value\(s\) that are not numbers, e.g. 'big' {AT_ROW}"),
    ("size zero", _set("model_size", 0), rf"column 'model_size' has 1 value\(s\) below 1, e.g. 0 {AT_ROW}"),
    ("size negative", _set("model_size", -5), rf"column 'model_size' has 1 value\(s\) below 1, e.g. -5 {AT_ROW}"),
    ("size missing", _set("model_size", None), rf"column 'model_size' has 1 missing value\(s\), e.g. None {AT_ROW}"),
    ("seed text", _set("seed", "x"), rf"column 'seed' has 1 value\(s\) that are not numbers, e.g. 'x' {AT_ROW}"),
    ("loss NaN", _set("loss", np.nan), rf"column 'loss' has 1 NaN/infinite loss value\(s\).*, e.g. nan {AT_ROW}"),
    ("loss inf", _set("loss", np.inf), rf"column 'loss' has 1 NaN/infinite loss value\(s\).*, e.g. inf {AT_ROW}"),
    ("loss text", _set("loss", "n/a"), rf"column 'loss' has 1 NaN/infinite loss value\(s\).*, e.g. 'n/a' {AT_ROW}"),
    ("loss zero", _set("loss", 0.0), rf"column 'loss' has 1 non-positive loss value\(s\), e.g. 0.0 {AT_ROW}"),
    ("loss negative", _set("loss", -1.5), rf"column 'loss' has 1 non-positive loss value\(s\), e.g. -1.5 {AT_ROW}"),
    ("run id missing", _set("run_id", None),
     rf"column 'run_id' has 1 missing value\(s\), e.g. None at row {ROW} \(run None\)"),
    ("domain missing", _set("domain", None), rf"column 'domain' has 1 missing value\(s\), e.g. None {AT_ROW}"),
    ("weight NaN", _set("w:b", np.nan),
     rf"column 'w:b' has 1 row\(s\) of NaN/infinite mixture weights.*, e.g. nan {AT_ROW}"),
    ("weight text", _set("w:b", "half"),
     rf"column 'w:b' has 1 row\(s\) of NaN/infinite mixture weights.*'half' {AT_ROW}"),
    ("weight negative", _set("w:b", -0.25),
     rf"column 'w:b' has 1 row\(s\) of negative mixture weights, e.g. -0.25 {AT_ROW}"),
    ("weights sum 1.5", _weights_sum_to(1.5),
     rf"weights must sum to 1 per row \(within 0.001\); 1 row\(s\) do not, e.g. row {ROW} \(run 'run1'\) sums to "
     r"1.5000 over columns \['w:a', 'w:b', 'w:c'\]"),
    ("weights sum 0", lambda df: df.assign(**{"w:a": 0.0, "w:b": 0.0, "w:c": 0.0}),
     r"weights must sum to 1 per row.*60 row\(s\) do not, e.g. row 0 \(run 'run0'\) sums to 0.0000"),
    ("repeated row", _duplicate,
     rf"columns \['run_id', 'step', 'domain'\] must be unique per row: 2 row\(s\) repeat a \(run, step, domain\), "
     rf"e.g. rows \[{ROW}, 60\] are run 'run1' step 400 domain 'a' \(repeated rows are not averaged"),
    ("two mixtures", _second_mixture,
     r"run 'run1' has two different values of its mixture \(column 'w:a'\): .* at row 10 and 0.2 at row 16; "
     r"4 row\(s\) differ"),
    ("two sizes", _run_value("model_size", 2_000_000),
     rf"run 'run1' has two different values of its model size \(column 'model_size'\): 1000000 at row 10 and "
     rf"2000000 at row {ROW}"),
    ("two seeds", _run_value("seed", 7), rf"run 'run1' has two different values of its seed \(column 'seed'\): 0 at "
                                         rf"row 10 and 7 at row {ROW}"),
]


@pytest.fixture(params=BAD_TABLES, ids=[case[0] for case in BAD_TABLES])
def bad(request):
    _, mutate, message = request.param
    return mutate(good_table()), message


def test_good_table_passes_every_entry_point(tmp_path):
    df = good_table()
    out = validate_table(df)
    assert out.dtypes[["step", "tokens", "model_size", "seed"]].tolist() == [np.dtype("int64")] * 4
    W, L = pivot_losses(df)
    assert W.shape == (6, 3) and L.shape == (6, 2)
    assert sorted(import_runs(df, tmp_path / "store")) == [f"run{r}" for r in range(6)]
    assert len(load_runs(tmp_path / "store")) == len(df)


def test_validate_table_refuses(bad):
    df, message = bad
    before = df.copy()
    with pytest.raises(ValueError, match=message):
        validate_table(df)
    pd.testing.assert_frame_equal(df, before)  # the caller's table is untouched


def test_every_table_entry_point_refuses(bad):
    df, message = bad
    with pytest.raises(ValueError, match=message):
        pivot_losses(df)
    with pytest.raises(ValueError, match=message):
        compare_laws(df, {"linear": LinearRegressionLaw()}, progress=False)
    with pytest.raises(ValueError, match=message):
        seed_noise_floor(df)
    with pytest.raises(ValueError, match=message):
        nested_prediction(df, target_step=None, target_size=None, progress=False)


def test_import_runs_refuses_and_writes_nothing(bad, tmp_path):
    df, message = bad
    store = tmp_path / "store"
    with pytest.raises(ValueError, match=message):
        import_runs(df, store)
    assert not store.exists()
    # The same table as a CSV from another cluster: the error also names the file.
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    with pytest.raises(ValueError, match=re.escape(f"run table {path}: ") + ".*" + message.split(", e.g.")[0]):
        import_runs(path, store)
    assert not store.exists()


def test_a_bad_row_in_the_last_run_imports_no_run(tmp_path):
    df = good_table()
    df.loc[len(df) - 1, "model_size"] = 0  # the last row of the last run
    store = tmp_path / "store"
    message = r"column 'model_size' has 1 value\(s\) below 1, e.g. 0 at row 59 \(run 'run5'\)"
    with pytest.raises(ValueError, match=message):
        import_runs(df, store)
    assert not store.exists()


def test_unreadable_csv_names_the_file(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("")
    with pytest.raises(ValueError, match=re.escape(f"run table {path}: ")):
        import_runs(path, tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_steps_stored_as_text_compare_as_numbers(tmp_path):
    df = good_table()
    text = df.assign(step=df["step"].astype(str), tokens=df["tokens"].astype(str), model_size="1000000")
    out = validate_table(text)
    assert out["step"].dtype == np.int64 and out["tokens"].dtype == np.int64 and out["model_size"].dtype == np.int64
    assert set(last_step(out)["step"]) == {1600}  # as text, "800" > "1600"
    W, L = pivot_losses(text)
    pd.testing.assert_frame_equal(L, pivot_losses(df)[1])
    # A CSV whose step column holds text ("800") imports with integer steps.
    path = tmp_path / "runs.csv"
    text.assign(step=[f"{s}" for s in df["step"]]).to_csv(path, index=False)
    import_runs(path, tmp_path / "store")
    back = load_runs(tmp_path / "store")
    assert back["step"].dtype == np.int64 and back.groupby("run_id")["step"].max().eq(1600).all()


def test_missing_tokens_are_allowed_as_unknown():
    df = good_table().assign(tokens=np.nan)  # e.g. the mixinglaws release states no batch size
    out = validate_table(df)
    assert out["tokens"].isna().all() and out["step"].dtype == np.int64


# ------------------------------------------------------------------------------------------------
# B. Laws refuse inputs that are not mixtures
# ------------------------------------------------------------------------------------------------

MIXTURE_LAWS = {
    "MixingLaw": lambda **kw: MixingLaw(n_starts=2, random_state=0, **kw),
    "ImplicitMixingLaw": lambda **kw: ImplicitMixingLaw(n_latent=1, n_starts=2, random_state=0, **kw),
    "LinearRegressionLaw": lambda **kw: LinearRegressionLaw(**kw),
    "LogLinearLaw": lambda **kw: LogLinearLaw(n_starts=1, random_state=0, **kw),
    "LightGBMLaw": lambda **kw: LightGBMLaw(n_estimators=20, **kw),
}


def mixtures(n: int = 24, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).dirichlet(np.ones(3), n)
    return X, 2.0 + np.exp(X @ np.array([-1.0, 0.5, 0.2]))


def _fit(law, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return law.fit(X, y)


NOT_MIXTURES = [
    # (id, row, message; {row} is the row index)
    ("ones", [1.0, 1.0, 1.0], r"{law} takes mixtures: row {row} of X is \[1., 1., 1.\], summing to 3, but a mixture's "
                              r"weights sum to 1 within 0.001 \(1 such row\(s\); pass simplex=False"),
    ("zeros", [0.0, 0.0, 0.0], r"{law} takes mixtures: row {row} of X is \[0., 0., 0.\], summing to 0"),
    ("negative", [5.0, -4.0, 0.0], r"Negative values in data passed to {law}: row {row} of X is \[ ?5., -4.,  ?0.\], "
                                   r"not a mixture"),
    ("NaN", [np.nan, 0.5, 0.5], r"Input X contains NaN or infinity: row {row} is \[nan, 0.5, 0.5\]"),
    ("inf", [np.inf, 0.0, 0.0], r"Input X contains NaN or infinity: row {row} is \[inf,  ?0.,  ?0.\]"),
    ("just above tolerance", [0.5, 0.3, 0.2 + 1.1 * WEIGHT_SUM_ATOL],
     r"{law} takes mixtures: row {row} .* summing to 1.0011"),
]


@pytest.mark.parametrize("name", MIXTURE_LAWS)
@pytest.mark.parametrize("case", NOT_MIXTURES, ids=[c[0] for c in NOT_MIXTURES])
def test_laws_refuse_rows_that_are_not_mixtures(name, case):
    _, row, message = case
    X, y = mixtures()
    bad = X.copy()
    bad[5] = row
    with pytest.raises(ValueError, match=message.format(law=name, row=5)):
        _fit(MIXTURE_LAWS[name](), bad, y)
    law = _fit(MIXTURE_LAWS[name](), X, y)
    with pytest.raises(ValueError, match=message.format(law=name, row=2)):
        law.predict(np.vstack([X[:2], [row]]))
    frame = pd.DataFrame(np.vstack([X[:2], [row]]), columns=["a", "b", "c"])
    with pytest.raises(ValueError, match=message.format(law=name, row=2)):
        _fit(MIXTURE_LAWS[name](), pd.DataFrame(X, columns=["a", "b", "c"]), y).predict(frame)


@pytest.mark.parametrize("name", MIXTURE_LAWS)
def test_simplex_false_restores_the_old_behaviour(name):
    X, y = mixtures()
    # On mixtures the option changes nothing: the same predictions, bit for bit.
    on, off = _fit(MIXTURE_LAWS[name](), X, y), _fit(MIXTURE_LAWS[name](simplex=False), X, y)
    np.testing.assert_array_equal(on.predict(X), off.predict(X))
    # Deliberately unnormalised weights (half of each mixture) fit and predict with the check off only.
    half = X / 2
    with pytest.raises(ValueError, match="takes mixtures"):
        _fit(MIXTURE_LAWS[name](), half, y)
    law = _fit(MIXTURE_LAWS[name](simplex=False), half, y)
    assert np.all(np.isfinite(law.predict(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))))
    with pytest.raises(ValueError, match="Input X contains NaN or infinity: row 0"):
        law.predict(np.array([[np.nan, 0.5, 0.5]]))  # NaN stays refused


def test_without_the_check_each_law_keeps_its_own_domain():
    X, y = mixtures()
    bad = X.copy()
    bad[3] = [5.0, -4.0, 0.0]
    _fit(LinearRegressionLaw(simplex=False), bad, y)  # any finite X, as before
    with pytest.raises(ValueError, match=r"Negative values in data passed to MixingLaw: mixture proportions"):
        _fit(MixingLaw(simplex=False), bad, y)  # proportions must still lie in [0, 1]


def test_rows_within_the_tolerance_pass():
    X, y = mixtures()
    near = X.copy()
    near[:, 0] += 0.9 * WEIGHT_SUM_ATOL  # rounded weights of a run table
    near[0] = [0.5 - 1e-12, 0.5 + 1e-12, 0.0]  # an optimiser's projection: float noise
    for make in MIXTURE_LAWS.values():
        law = _fit(make(), near, y)
        assert np.all(np.isfinite(law.predict(near)))
    # A weight of -1e-13 is float noise to the simplex check (the mixing laws' own [0, 1] rule is exact).
    near[1] = [-1e-13, 0.5, 0.5 + 1e-13]
    for name in ("LinearRegressionLaw", "LogLinearLaw", "LightGBMLaw"):
        _fit(MIXTURE_LAWS[name](), near, y).predict(near)


def test_laws_fit_on_any_valid_run_table():
    # A run table's weights pass validate_table within 1e-3; the laws take them with the same tolerance.
    df = good_table()
    df["w:a"] += 0.9 * WEIGHT_SUM_ATOL
    W, L = pivot_losses(df)
    for make in MIXTURE_LAWS.values():
        _fit(make(), W, L["a"])


def test_linear_regression_needs_as_many_runs_as_parameters():
    X, y = mixtures()
    with pytest.raises(ValueError, match=r"LinearRegressionLaw needs at least as many runs as parameters "
                                         r"\(4: 3 weights \+ intercept\); got 1 sample$"):
        LinearRegressionLaw().fit(X[:1], y[:1])
    with pytest.raises(ValueError, match=r"\(4: 3 weights \+ intercept\); got 3 samples"):
        LinearRegressionLaw().fit(X[:3], y[:3])
    LinearRegressionLaw().fit(X[:4], y[:4])
    with pytest.raises(ValueError, match=r"\(3: 3 weights\); got 2 samples"):
        LinearRegressionLaw(fit_intercept=False).fit(X[:2], y[:2])
    LinearRegressionLaw(fit_intercept=False).fit(X[:3], y[:3])
    with pytest.raises(ValueError, match="fewer data points"):  # the parametric regressor, as before
        _fit(LogLinearLaw(), X[:3], y[:3])


def test_bimix_reads_each_share_alone():
    # BiMix's output i reads column i only: a row is independent shares, refused only out of (0, 1].
    rng = np.random.default_rng(0)
    r = rng.uniform(0.05, 0.9, (12, 2))
    y = 2.0 * r ** -0.1
    law = _fit(BiMixLaw(random_state=0, n_starts=2), r, y)
    both = law.predict(np.array([[0.6, 0.6], [0.6, 0.2]]))
    assert both[0, 0] == both[1, 0]  # domain a's loss ignores domain b's share
    assert "simplex" not in law.get_params()
    for row, message in (([0.0, 0.5], r"\(0, 1\]: the law diverges at r_i = 0; row 3 of X is \[0.0, 0.5\]"),
                         ([1.5, 0.5], r"\(0, 1\].*row 3 of X is \[1.5, 0.5\]"),
                         ([np.nan, 0.5], r"Input X contains NaN or infinity: row 3 is \[nan, 0.5\]")):
        bad = r.copy()
        bad[3] = row
        with pytest.raises(ValueError, match=message):
            _fit(BiMixLaw(n_starts=2), bad, y)
        with pytest.raises(ValueError, match=message):
            law.predict(bad)
    full = np.column_stack([np.geomspace(100, 1e4, 12), r])
    full[5, 0] = 0
    with pytest.raises(ValueError, match=r"steps \(first column of X\) must be positive; row 5 of X is \[0.0, "):
        _fit(BiMixLaw(form="full", n_starts=2), full, y)


def test_laws_over_shares_steps_and_sizes_have_no_simplex_check():
    assert "simplex" not in ContinualMixingLaw().get_params() and "simplex" not in StepLaw().get_params()
    r = np.linspace(0.0, 1.0, 9)
    _fit(ContinualMixingLaw(n_starts=2), r, 2.0 + np.exp(-3.0 * r - 0.5))  # a share, alone in its column


def test_optimizer_predicts_on_projected_mixtures():
    X, y = mixtures()
    for make in (MIXTURE_LAWS["MixingLaw"], MIXTURE_LAWS["LightGBMLaw"]):
        law = _fit(make(), pd.DataFrame(X, columns=["a", "b", "c"]), y)
        for method in ("exact", "topk"):
            best = optimize_mixture(law, method=method, rng=0, n_samples=2000, top_k=16)
            assert sum(best.weights.values()) == pytest.approx(1.0, abs=1e-9)


def test_compare_laws_on_arrays_that_are_not_mixtures():
    X, y = mixtures(12)
    with pytest.raises(ValueError, match=r"LinearRegressionLaw takes mixtures: row \d+ of X"):
        compare_laws((X * 2, y), {"linear": LinearRegressionLaw()}, progress=False)
    out = compare_laws((X * 2, y), {"linear": LinearRegressionLaw(simplex=False)}, progress=False)
    assert np.isfinite(out["mae"]).all()


@pytest.mark.parametrize("name", MIXTURE_LAWS)
def test_one_column_is_one_domains_share(name):
    # A one-domain mixture is always [1]: one column is one domain's share of a larger mixture
    # (Ye et al.'s two-domain law in r), so it must lie in [0, 1] but need not sum to 1.
    r = np.linspace(0.05, 0.95, 12)[:, None]
    y = 2.0 + np.exp(-2.0 * r[:, 0])
    law = _fit(MIXTURE_LAWS[name](), r, y)
    assert np.all(np.isfinite(law.predict(np.array([[0.0], [1.0]]))))
    with pytest.raises(ValueError, match=rf"{name} takes mixtures: row 1 of X is \[1.5\], summing to 1.5, but a "
                                         r"mixture's weights sum to at most 1 \+ 0.001"):
        law.predict(np.array([[0.5], [1.5]]))
