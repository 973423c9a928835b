"""The bad-input catalogue: one table of input -> expected error across the whole kit.

Each row is a call a careless or hostile user could make. It must fail with the named exception, a
message that says what is wrong (checked by regex), no traceback from the CLI, and nothing written
under the folder the call was given (snapshotted before and after, hidden files included).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from mixkit import cli, corpus, mixture, published, report, runs, tokens
from mixkit.laws import LinearRegressionLaw, MixingLaw, StepLaw, critical_proportion
from mixkit.mixture import Mixture
from mixkit.optimize import optimize_mixture, project_to_simplex
from mixkit.proxy import ProxyConfig, train_proxy
from mixkit.proxy.checkpoint import load_checkpoint
from mixkit.proxy.sampler import MixtureSampler, eval_batches
from mixkit.table import at_step, pivot_losses, target_loss, validate_table

from run_tables import synthetic_run_table

REPO = Path(__file__).resolve().parents[1]
DOMAINS = ["code", "docs", "math"]
TINY = dict(context_length=32, batch_size=4, steps=2, eval_every=1, eval_tokens=256, device="cpu", precision="fp32",
            threads=1)


class CliError(Exception):
    """A CLI call that exited non-zero; the message is 'exit <code>: <stderr>'."""


@dataclass(frozen=True)
class Case:
    area: str
    name: str
    call: Callable[[Path], object]  # the bad call; it may write only under the folder it is given
    match: str  # regex on the error message
    error: type[BaseException] = ValueError
    setup: Callable[[Path], object] | None = None  # writes the call's input files before the snapshot


def _cli(*argv: str) -> int:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
    if "Traceback" in err.getvalue():
        raise AssertionError(f"the CLI printed a traceback for a user error:\n{err.getvalue()}")
    if code:
        raise CliError(f"exit {code}: {err.getvalue().strip()}")
    return code


_TOKENS = {}


def _token_data():
    """The built-in corpus's token shards (built once under data/, outside the snapshotted folder)."""
    if not _TOKENS:
        _TOKENS["data"] = tokens.prepare(corpus.builtin(data_dir=REPO / "data", progress=False), progress=False)
    return _TOKENS["data"]


def _table(n_runs: int = 4) -> pd.DataFrame:
    return synthetic_run_table(n_runs, train_domains=DOMAINS, val_domains=("code", "docs"), steps=(100, 200))


def _quadratic(W):
    return ((np.atleast_2d(W) - 1 / 3) ** 2).sum(axis=1)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


MIXTURES = [
    Case("mixture", "negative weight", lambda t: Mixture({"code": -0.2, "docs": 1.2}, domains=DOMAINS),
         r"'code'.*negative"),
    Case("mixture", "NaN weight", lambda t: Mixture({"code": math.nan, "docs": 1.0}), r"'code'.*not finite"),
    Case("mixture", "infinite weight", lambda t: Mixture({"code": math.inf, "docs": 1.0}), r"'code'.*not finite"),
    Case("mixture", "text weight", lambda t: Mixture({"code": "lots", "docs": 0.5}), r"'code'.*not a number"),
    Case("mixture", "sum below one", lambda t: Mixture({"code": 0.5, "docs": 0.2}), r"sum to 0\.7.*not 1"),
    Case("mixture", "sum above one", lambda t: Mixture({"code": 0.7, "docs": 0.7}), r"sum to 1\.4.*not 1"),
    Case("mixture", "unknown domain", lambda t: Mixture({"web": 1.0}, domains=DOMAINS), r"unknown domain 'web'"),
    Case("mixture", "empty", lambda t: Mixture({}), r"empty"),
    Case("mixture", "domain listed twice", lambda t: Mixture({"code": 1.0}, domains=["code", "code"]),
         r"'code' is listed twice"),
    Case("mixture", "not a mapping", lambda t: Mixture([0.5, 0.5]), r"mapping of domain name", TypeError),
    Case("mixture", "array of wrong length", lambda t: Mixture.from_array([0.2, 0.8, 0.0], ["code", "docs"]),
         r"3 weights but 2 domains"),
    Case("mixture", "drops a weighted domain", lambda t: Mixture({"code": 0.5, "math": 0.5}).as_array(["code"]),
         r"\['math'\].*positive weight"),
    Case("mixture", "empty domain name", lambda t: Mixture({"": 1.0}), r"non-empty strings"),
]

DESIGNS = [
    Case("design", "uniform of no domains", lambda t: mixture.uniform([]), r"domains is empty"),
    Case("design", "uniform of a string", lambda t: mixture.uniform("code"), r"not the string 'code'", TypeError),
    Case("design", "uniform with a duplicate", lambda t: mixture.uniform(["a", "a"]), r"'a' is listed twice"),
    Case("design", "natural of nothing", lambda t: mixture.natural({}), r"token_counts is empty"),
    Case("design", "natural with a negative count", lambda t: mixture.natural({"a": -1, "b": 2}),
         r"'a'.*finite and >= 0"),
    Case("design", "natural of zero tokens", lambda t: mixture.natural({"a": 0, "b": 0}), r"sum to 0"),
    Case("design", "grid step zero", lambda t: mixture.grid(DOMAINS, 0), r"positive integer"),
    Case("design", "grid too large", lambda t: mixture.grid(list("abcdefghij"), 40), r"> max_points"),
    Case("design", "dirichlet of zero mixtures", lambda t: mixture.dirichlet(DOMAINS, 0), r"n must be a positive"),
    Case("design", "dirichlet negative temperature", lambda t: mixture.dirichlet(DOMAINS, 3, temperature=-1),
         r"temperature must be finite and >= 0"),
    Case("design", "dirichlet bad strength", lambda t: mixture.dirichlet(DOMAINS, 3, strength=(0, 1)),
         r"strength must be a range"),
    Case("design", "dirichlet min_weight 1", lambda t: mixture.dirichlet(DOMAINS, 3, min_weight=1.0),
         r"min_weight must be in \[0, 1\)"),
    Case("design", "dirichlet prior of an unknown domain",
         lambda t: mixture.dirichlet(DOMAINS, 3, prior={"code": 1, "docs": 1, "math": 1, "web": 1}),
         r"prior has unknown domain 'web'"),
    Case("design", "dirichlet prior of zeros", lambda t: mixture.dirichlet(DOMAINS, 3, prior=[0, 0, 0]),
         r"prior sums to 0"),
    Case("design", "dirichlet caps without a budget",
         lambda t: mixture.dirichlet(DOMAINS, 3, available_tokens=[1, 1, 1]), r"need both available_tokens"),
    Case("design", "dirichlet caps below one",
         lambda t: mixture.dirichlet(DOMAINS, 3, available_tokens=[1, 1, 1], budget_tokens=100),
         r"repetition caps sum to .* < 1"),
    Case("design", "dirichlet more distinct mixtures than exist",
         lambda t: mixture.dirichlet(["a", "b"], 50, dedup_decimals=1, max_tries=2000),
         r"found only \d+ distinct"),
    Case("design", "entropy of an unknown kind", lambda t: mixture.entropy_mixture({"a": 1.0}, kind="joint"),
         r"kind must be"),
    Case("design", "entropy normalisation", lambda t: mixture.entropy_mixture({"a": 1.0}, normalize="max"),
         r"normalize must be"),
    Case("design", "entropy of a missing domain",
         lambda t: mixture.entropy_mixture({"a": 1.0}, domains=["a", "b"]), r"no data for domain\(s\) \['b'\]"),
    Case("design", "entropy of a 3-D array", lambda t: mixture.entropy_mixture({"a": np.zeros((2, 2, 2))}),
         r"'a'.*shape \(2, 2, 2\)"),
    Case("design", "entropy of a number list", lambda t: mixture.entropy_mixture([1, 2]), r"needs a TokenData"),
]

OPTIMIZER = [
    Case("optimize", "bounds on an unknown domain",
         lambda t: optimize_mixture(_quadratic, domains=DOMAINS, bounds={"web": (0, 1)}), r"unknown domain"),
    Case("optimize", "bounds the wrong way round",
         lambda t: optimize_mixture(_quadratic, domains=DOMAINS, bounds={"code": (0.6, 0.2)}),
         r"'code'.*0 <= lo <= hi <= 1"),
    Case("optimize", "lower bounds above one",
         lambda t: optimize_mixture(_quadratic, domains=DOMAINS, bounds={"code": (0.6, 1), "docs": (0.6, 1)}),
         r"lower bounds sum to 1\.2"),
    Case("optimize", "caps below one",
         lambda t: optimize_mixture(_quadratic, domains=DOMAINS, caps={"code": 0.1, "docs": 0.1, "math": 0.1}),
         r"sum to 0\.3.* < 1"),
    Case("optimize", "negative cap", lambda t: optimize_mixture(_quadratic, domains=DOMAINS, caps={"code": -1}),
         r"cap for 'code' must be >= 0"),
    Case("optimize", "unknown method", lambda t: optimize_mixture(_quadratic, domains=DOMAINS, method="grid"),
         r"method must be 'exact' or 'topk'"),
    Case("optimize", "zero starts", lambda t: optimize_mixture(_quadratic, domains=DOMAINS, n_starts=0),
         r"n_starts must be >= 1"),
    Case("optimize", "zero top-k", lambda t: optimize_mixture(_quadratic, domains=DOMAINS, method="topk", top_k=0),
         r"must be >= 1"),
    Case("optimize", "prior of the wrong length", lambda t: optimize_mixture(_quadratic, domains=DOMAINS, prior=[1, 1]),
         r"prior must be 3 non-negative"),
    Case("optimize", "objective with negative weights",
         lambda t: optimize_mixture(_quadratic, domains=DOMAINS, objective=[-1.0]), r"non-negative"),
    Case("optimize", "a single domain", lambda t: optimize_mixture(_quadratic, domains=["code"]),
         r"at least two domains"),
    Case("optimize", "no domain names", lambda t: optimize_mixture(_quadratic), r"pass domains="),
    Case("optimize", "a predictor that is not one", lambda t: optimize_mixture(42, domains=DOMAINS),
         r"\.predict method or be a callable"),
    Case("optimize", "projection with impossible bounds",
         lambda t: project_to_simplex(np.ones(3), np.full(3, 0.5)), r"admit no mixture"),
]

CONFIGS = [
    Case("proxy", "unknown preset", lambda t: ProxyConfig.preset("huge"), r"unknown proxy preset 'huge'"),
    Case("proxy", "unknown field", lambda t: ProxyConfig.preset("smoke", width=3), r"unknown ProxyConfig field"),
    Case("proxy", "steps and tokens", lambda t: ProxyConfig.preset("smoke", steps=3, tokens=1e6),
         r"either steps= or tokens="),
    Case("proxy", "heads do not divide width", lambda t: ProxyConfig(d_model=30, n_heads=4),
         r"d_model=30 is not divisible by n_heads=4"),
    Case("proxy", "zero steps", lambda t: ProxyConfig(steps=0), r"steps must be a positive integer"),
    Case("proxy", "negative learning rate", lambda t: ProxyConfig(lr=-1e-3), r"lr must be positive"),
    Case("proxy", "unknown schedule", lambda t: ProxyConfig(schedule="linear"), r"schedule must be one of"),
    Case("proxy", "unknown precision", lambda t: ProxyConfig(precision="fp8"), r"precision must be one of"),
    Case("proxy", "warmup beyond the run", lambda t: ProxyConfig(warmup=1.5), r"warmup must be a fraction"),
    Case("proxy", "betas out of range", lambda t: ProxyConfig(betas=(0.9, 1.0)), r"betas must be two numbers"),
    Case("proxy", "zero threads", lambda t: ProxyConfig(threads=0), r"threads must be None or >= 1"),
    Case("proxy", "CUDA without a GPU",
         lambda t: train_proxy(ProxyConfig.preset("smoke", **{**TINY, "device": "cuda"}),
                               mixture.uniform(_token_data().domains)[0], _token_data(), progress=False)
         if not __import__("torch").cuda.is_available() else pytest.skip("a GPU is present"),
         r"CUDA is not available"),
    Case("proxy", "training on an unknown domain",
         lambda t: train_proxy(ProxyConfig.preset("smoke", **TINY), {"web": 1.0}, _token_data(), progress=False),
         r"unknown domain 'web'"),
    Case("proxy", "a missing checkpoint", lambda t: load_checkpoint(t / "nowhere.pt"), r"does not exist",
         FileNotFoundError),
    Case("proxy", "sampler batch of zero",
         lambda t: MixtureSampler(_token_data(), mixture.uniform(_token_data().domains)[0], 0, 16, seed=0),
         r"batch_size must be a positive integer"),
    Case("proxy", "validation of an unknown domain", lambda t: next(eval_batches(_token_data(), "web", 16, 4)),
         r"unknown domain 'web'"),
]

SWEEPS = [
    Case("sweep", "an unknown domain",
         lambda t: runs.sweep(ProxyConfig.preset("smoke", **TINY), [{"web": 1.0}], _token_data(), t / "store",
                              progress=False), r"unknown domain 'web'"),
    Case("sweep", "no mixtures",
         lambda t: runs.sweep(ProxyConfig.preset("smoke", **TINY), [], _token_data(), t / "store", progress=False),
         r"at least one config and one mixture"),
    Case("sweep", "an unknown backend",
         lambda t: runs.sweep(ProxyConfig.preset("smoke", **TINY), mixture.uniform(_token_data().domains),
                              _token_data(), t / "store", backend="slurm", progress=False),
         r"unknown sweep backend 'slurm'"),
    Case("sweep", "zero workers",
         lambda t: runs.sweep(ProxyConfig.preset("smoke", **TINY), mixture.uniform(_token_data().domains),
                              _token_data(), t / "store", workers=0, progress=False), r"workers must be >= 1"),
    Case("sweep", "a missing token folder",
         lambda t: runs.sweep(ProxyConfig.preset("smoke", **TINY), [{"code": 1.0}], t / "no-tokens", t / "store",
                              progress=False), r"no token manifest", FileNotFoundError),
    Case("imports", "a missing run table", lambda t: runs.import_runs(t / "runs.csv", t / "store"),
         r"run table .*runs\.csv does not exist", FileNotFoundError),
]

CORPUS = [
    Case("corpus", "a missing folder", lambda t: corpus.from_folders(t / "none", data_dir=t / "data"),
         r"does not exist or is not a folder", FileNotFoundError),
    Case("corpus", "no domain folders", lambda t: corpus.from_folders(t / "in", data_dir=t / "data"),
         r"no domain sub-folders", setup=lambda t: _write(t / "in" / "a.txt", "x")),
    Case("corpus", "a reserved name", lambda t: corpus.from_folders(t / "in", name="builtin", data_dir=t / "data"),
         r"reserved", setup=lambda t: _write(t / "in" / "code" / "a.txt", "x")),
    Case("corpus", "a domain without text files", lambda t: corpus.from_folders(t / "in", data_dir=t / "data"),
         r"'code'.*no \.txt, \.jsonl or \.parquet", setup=lambda t: _write(t / "in" / "code" / "a.csv", "x")),
    Case("corpus", "a JSON line without text",
         lambda t: corpus.from_folders(t / "in", data_dir=t / "data", progress=False), r"text",
         setup=lambda t: _write(t / "in" / "code" / "a.jsonl", '{"body": "x"}\n')),
    Case("corpus", "a broken JSON line", lambda t: corpus.from_folders(t / "in", data_dir=t / "data", progress=False),
         r"a\.jsonl", setup=lambda t: _write(t / "in" / "code" / "a.jsonl", "{not json\n")),
    Case("corpus", "only empty documents",
         lambda t: corpus.from_folders(t / "in", data_dir=t / "data", progress=False), r"'code' has no documents",
         setup=lambda t: _write(t / "in" / "code" / "a.txt", "   \n")),
    Case("tokens", "a missing token folder", lambda t: tokens.load(t / "tokens"), r"no token manifest",
         FileNotFoundError),
    Case("tokens", "a vocabulary below the bytes",
         lambda t: tokens.prepare(corpus.builtin(data_dir=REPO / "data", progress=False), vocab_size=100,
                                  out_dir=t / "tokens", progress=False), r"vocab_size"),
]

LOADERS = [
    Case("loaders", "mixinglaws: a missing folder", lambda t: published.load_mixinglaws(t / "none"),
         r"none", FileNotFoundError),
    Case("loaders", "regmix: an unknown size", lambda t: published.load_regmix(t, which="7b"), r"7b"),
    Case("loaders", "sld: a missing file", lambda t: published.load_sld(t / "sld.txt"), r"sld\.txt",
         FileNotFoundError),
    Case("loaders", "chinchilla: a missing file", lambda t: published.load_chinchilla(t / "c.csv"), r"c\.csv",
         FileNotFoundError),
    Case("loaders", "valid weights: a missing file", lambda t: published.load_valid_weights(t / "w.json"),
         r"w\.json", FileNotFoundError),
    Case("loaders", "5Mix shares without a subdomain", lambda t: published.five_mix_group_shares({"x": 1.0}),
         r"lack the Pile subdomain"),
]

LAWS = [
    Case("laws", "predict before fit", lambda t: MixingLaw().predict([[0.5, 0.5]]), r"not fitted", NotFittedError),
    Case("laws", "NaN loss", lambda t: StepLaw().fit([[1], [2], [3], [4]], [3.0, math.nan, 2.5, 2.4]),
         r"NaN or infinite"),
    Case("laws", "non-positive loss", lambda t: StepLaw().fit([[1], [2], [3], [4]], [3.0, 0.0, 2.5, 2.4]),
         r"positive"),
    Case("laws", "rows of X and y disagree", lambda t: StepLaw().fit([[1], [2], [3]], [3.0, 2.8]), r"3 rows|2"),
    Case("laws", "bounds of an unknown parameter",
         lambda t: StepLaw(bounds={"zeta": (0, 1)}).fit([[1], [2], [4], [8], [16]], [3.0, 2.8, 2.6, 2.5, 2.45]),
         r"unknown parameter\(s\) \['zeta'\]"),
    Case("laws", "predict on other columns",
         lambda t: LinearRegressionLaw().fit(pd.DataFrame(np.random.default_rng(0).dirichlet(np.ones(3), 8),
                                                          columns=DOMAINS), np.arange(8) + 1.0)
         .predict(pd.DataFrame([[0.5, 0.5]], columns=["code", "web"])), r"columns|features"),
    Case("laws", "a row that is not a mixture",
         lambda t: LinearRegressionLaw().fit(np.array([[1.0, 1.0, 1.0]] * 5), np.arange(5) + 1.0), r"row"),
    Case("laws", "a negative share", lambda t: MixingLaw().fit(np.array([[5.0, -4.0, 0.0]] * 6), np.ones(6) + 1),
         r"row|negative|\[0, 1\]"),
    Case("laws", "NaN in a mixture to predict",
         lambda t: LinearRegressionLaw().fit(np.random.default_rng(1).dirichlet(np.ones(3), 8), np.arange(8) + 1.0)
         .predict(np.array([[math.nan, 0.5, 0.5]])), r"NaN|infinity|finite"),
    Case("laws", "one run for a linear law",
         lambda t: LinearRegressionLaw().fit(np.array([[0.2, 0.3, 0.5]]), np.array([3.0])), r"1 sample|runs"),
    Case("laws", "critical share that no share reaches",
         lambda t: critical_proportion(lambda r: 3.0 - r, 1.0), r"no replay share"),
    Case("laws", "critical share on an empty range", lambda t: critical_proportion(lambda r: 3.0, 3.0, lo=0.5, hi=0.5),
         r"lo < hi"),
]

TABLES = [
    Case("tables", "no weight columns", lambda t: validate_table(_table().drop(columns=[f"w:{d}" for d in DOMAINS])),
         r"no training-domain weight columns"),
    Case("tables", "empty", lambda t: validate_table(_table().iloc[:0]), r"empty"),
    Case("tables", "not a DataFrame", lambda t: validate_table([{"run_id": 1}]), r"must be a pandas DataFrame"),
    Case("tables", "a step nobody recorded", lambda t: pivot_losses(_table(), step=300), r"no runs recorded step 300"),
    Case("tables", "a step that is not one", lambda t: at_step(_table(), "first"), r"step must be 'last' or an int"),
    Case("tables", "an unknown model size", lambda t: pivot_losses(_table(), model_size=5), r"no runs with model_size"),
    Case("tables", "an unknown validation domain", lambda t: pivot_losses(_table(), domains=["web"]),
         r"\['web'\] not in the run table"),
    Case("tables", "a target that is no domain", lambda t: target_loss(pivot_losses(_table())[1], "web"),
         r"target must be 'mean'"),
]

REPORTS = [
    Case("reports", "an unknown preset", lambda t: report.load_preset("huge"), r"huge"),
    Case("cli", "report with an unknown preset", lambda t: _cli("report", "--preset", "huge", "--out", str(t / "r")),
         r"exit 2: mixkit: .*huge", CliError),
    Case("cli", "runs of a missing store", lambda t: _cli("runs", str(t / "store")), r"exit 2: .*does not exist",
         CliError),
    Case("cli", "an unknown command", lambda t: _cli("train"), r"exit 2: .*invalid choice", CliError),
    Case("cli", "corpus info of missing tokens",
         lambda t: _cli("corpus", "info", "--data-dir", str(t / "data")), r"exit \d: mixkit: ", CliError),
    Case("cli", "sweep of missing tokens", lambda t: _cli("sweep", "--tokens", str(t / "tokens"), "--store",
                                                          str(t / "store")), r"exit \d: mixkit: ", CliError),
]

def _with(df: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    out = df.copy()
    out[column] = out[column].astype(object)
    out.loc[row, column] = value
    return out


def _two_mixtures() -> pd.DataFrame:
    df = _table()
    first = df["run_id"] == "run0"
    df.loc[first, ["w:code", "w:docs", "w:math"]] = [[0.5, 0.5, 0.0]] * 2 + [[0.2, 0.8, 0.0]] * 2
    return df


RUN_TABLES = [
    Case("tables", "a repeated row", lambda t: validate_table(pd.concat([_table(), _table().iloc[:1]])),
         r"unique per row.*run 'run0' step 100 domain 'code'"),
    Case("tables", "two mixtures under one run id", lambda t: validate_table(_two_mixtures()),
         r"run 'run0' has two different values of its mixture"),
    Case("tables", "a step in words", lambda t: validate_table(_with(_table(), 2, "step", "ten")),
         r"'step'.*not numbers.*'ten' at row 2 \(run 'run0'\)"),
    Case("tables", "a negative step", lambda t: validate_table(_with(_table(), 2, "step", -5)),
         r"'step'.*below 0.*row 2"),
    Case("tables", "a model of size zero", lambda t: validate_table(_with(_table(), 2, "model_size", 0)),
         r"'model_size'.*below 1"),
    Case("tables", "a model size in words", lambda t: validate_table(_with(_table(), 2, "model_size", "big")),
         r"'model_size'.*'big'"),
    Case("tables", "a NaN loss", lambda t: validate_table(_with(_table(), 3, "loss", math.nan)), r"'loss'.*row 3"),
    Case("tables", "a weight row summing to 1.5", lambda t: validate_table(_with(_table(), 1, "w:code", 1.0)),
         r"sum to 1"),
    Case("imports", "a bad row in the last run writes nothing",
         lambda t: runs.import_runs(_with(_table(), 7, "loss", -1.0), t / "store"), r"'loss'.*row 7 \(run 'run1'\)"),
    Case("imports", "a CSV with a step in words",
         lambda t: runs.import_runs(t / "runs.csv", t / "store"), r"runs\.csv|'step'",
         setup=lambda t: _with(_table(), 0, "step", "ten").to_csv(t / "runs.csv", index=False)),
]

CLI = [
    Case("cli", "zero steps", lambda t: _cli("sweep", "--steps", "0", "--store", str(t / "s")),
         r"exit 2: mixkit: argument --steps: must be >= 1, got 0", CliError),
    Case("cli", "zero mixtures", lambda t: _cli("sweep", "--n", "0", "--store", str(t / "s")),
         r"exit 2: mixkit: argument --n: must be >= 1", CliError),
    Case("cli", "zero workers", lambda t: _cli("sweep", "--workers", "0", "--store", str(t / "s")),
         r"exit 2: mixkit: argument --workers: must be >= 1", CliError),
    Case("cli", "an unknown design", lambda t: _cli("sweep", "--design", "mystery", "--store", str(t / "s")),
         r"exit 2: mixkit: argument --design: invalid choice", CliError),
    Case("cli", "a missing mixtures CSV",
         lambda t: _cli("sweep", "--mixtures", str(t / "none.csv"), "--store", str(t / "s")),
         r"exit 2: mixkit: .*none\.csv", CliError),
    Case("cli", "a store below a file",
         lambda t: _cli("sweep", "--tokens", str(_token_data().root), "--steps", "1", "--store", str(t / "f" / "s")),
         r"exit 2: mixkit: .*f/s", CliError, setup=lambda t: _write(t / "f", "x")),
    Case("cli", "runs of a file", lambda t: _cli("runs", str(t / "f")), r"exit 2: mixkit: .* is not a folder",
         CliError, setup=lambda t: _write(t / "f", "x")),
    Case("cli", "a preset that is a path", lambda t: _cli("report", "--preset", "../x", "--out", str(t / "r")),
         r"exit 2: mixkit: preset '\.\./x' is not a preset name", CliError),
    Case("reports", "a preset that is a path", lambda t: report.load_preset("../x"), r"not a preset name"),
]

CASES = MIXTURES + DESIGNS + OPTIMIZER + CONFIGS + SWEEPS + CORPUS + LOADERS + LAWS + TABLES + RUN_TABLES + REPORTS + CLI


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under root, hidden ones included, with its content."""
    return {str(p.relative_to(root)): ("dir" if p.is_dir() else p.read_bytes().hex()) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.area}: {c.name}")
def test_bad_input_is_refused_clearly_and_writes_nothing(case, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXKIT_DATA", str(tmp_path / "data"))
    if case.setup is not None:
        case.setup(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(case.error, match=case.match):
        case.call(tmp_path)
    assert snapshot(tmp_path) == before, f"{case.area}: {case.name} wrote into {tmp_path}"


def test_the_catalogue_is_broad():
    areas = {c.area for c in CASES}
    assert {"mixture", "design", "optimize", "proxy", "sweep", "corpus", "loaders", "laws", "tables", "cli",
            "reports", "imports"} <= areas
    assert len({(c.area, c.name) for c in CASES}) == len(CASES), "two cases share a name"
    assert len(CASES) >= 90, f"the catalogue has {len(CASES)} kinds of bad input; the issue asks for 90"


def test_a_case_that_writes_fails_the_check(tmp_path):
    # The snapshot sees a hidden file left behind, so a call that writes before failing is caught.
    before = snapshot(tmp_path)
    _write(tmp_path / ".staging" / "x", "partial")
    assert snapshot(tmp_path) != before
    json.dumps(before)  # a snapshot is plain data
