"""Loaders for the proxy runs that the papers behind mixkit released.

Each loader reads one published format and returns a run table in the schema of
:mod:`mixkit.table` (``validate_table`` passes), so published runs and mixkit's own runs go
through the same analysis code. Users download the files themselves and point the loaders at them.

Formats (see each function for the details that the files leave implicit):

* Data Mixing Laws (Ye et al. 2024), github.com/yegcjs/mixinglaws ``data/``:
  :func:`load_mixinglaws` for ``<any folder>/<size>.txt`` (domains given, known for the released
  folders, or inferred from the run names; rounded ratios renormalised within a tolerance, with a
  warning), :func:`load_valid_weights` for ``valid_weight.json``, :func:`load_proportions` for
  ``proportions.txt`` files of any width;
  :func:`five_mix_group_shares` and :func:`five_mix_group_losses` aggregate the Pile-valid
  subdomains into the five 5Mix groups, :func:`continual_pile_losses` gives the ``ct`` runs'
  Pile losses.
* The 5Mix data at step 30k as packaged by github.com/linhaowei1/SLD: :func:`load_sld`, and
  :func:`sld_split` for its train/eval split of one model size.
* RegMix (Liu et al. 2024), github.com/sail-sg/regmix ``data/``: :func:`load_regmix`,
  :func:`regmix_xy`, for every released scale (1M, 60M, 1B).
* Epoch AI's Chinchilla replication (``svg_extracted_data.csv``): :func:`load_chinchilla`.
* AI2's Olmix pair (``ratios.csv`` + ``metrics.csv``, joined on a run column): :func:`read_olmix`
  and :func:`write_olmix`, from :mod:`mixkit.olmix`.

Model sizes in these releases are nominal *total* parameter counts taken from the size labels
("70M" -> 70_000_000): ``model_size`` keeps them, and the mixinglaws tables also carry the
non-embedding N (the N of scaling laws) in ``non_embedding_params``, from a size map (default
:data:`mixkit.reference.PYTHIA`); the nested pipeline uses it. Bad lines raise errors naming the
file and line.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mixkit import reference
from mixkit.olmix import read_olmix, write_olmix  # noqa: F401
from mixkit.table import NON_EMBEDDING_COLUMN, pivot_losses, validate_table, weight_column

# Training domains of each mixinglaws folder, in the order of the ratios in the run names.
# The orders were checked against the data: each ratio lowers the loss of its own domain.
MIXINGLAWS_DOMAINS: dict[str, tuple[str, ...]] = {
    "2Mix": ("github", "pile_cc"),
    "3Mix": ("github", "books3", "pile_cc"),
    "5Mix": ("academic", "prose", "dialogue", "symbolic", "internet"),
    "ct": ("pile", "python"),
}
SLD_DOMAINS = MIXINGLAWS_DOMAINS["5Mix"]

# Pile-valid subdomains of each 5Mix training group (the grouping of Ye et al.'s 5-domain
# experiments). The SLD file's five losses are exactly the valid-weight means over these groups, so
# the overall Pile loss sum_d s_d L_d equals sum_g S_g L_g with S_g = five_mix_group_shares(s)[g].
FIVE_MIX_GROUPS = {
    "academic": ["ArXiv", "FreeLaw", "NIH_ExPorter", "PhilPapers", "PubMed_Abstracts", "PubMed_Central",
                 "USPTO_Backgrounds"],
    "prose": ["BookCorpus2", "Books3", "PG19"],
    "dialogue": ["Enron_Emails", "EuroParl", "HackerNews", "OpenSubtitles", "Ubuntu_IRC", "YoutubeSubtitles"],
    "symbolic": ["DM_Mathematics", "Github"],
    "internet": ["OpenWebText2", "Pile-CC", "StackExchange", "Wikipedia_en"],
}


def five_mix_group_shares(valid_weights: Mapping[str, float]) -> dict[str, float]:
    """Total Pile-valid weight of each 5Mix group (weights from `load_valid_weights`), in the order
    of :data:`SLD_DOMAINS`: the S_g that weight the five group losses into the overall Pile loss."""
    _check_group_weights(valid_weights)
    return {g: float(sum(valid_weights[d] for d in ds)) for g, ds in FIVE_MIX_GROUPS.items()}


def five_mix_group_losses(table: pd.DataFrame, valid_weights: Mapping[str, float]) -> pd.DataFrame:
    """A 5Mix run table with its 22 Pile-valid losses replaced by the five group losses.

    Each group's loss is the valid-weight mean of its subdomains' losses (what the SLD file holds);
    validation domains outside the groups are dropped. Same run-table columns, ``domain`` now
    naming the group.
    """
    _check_group_weights(valid_weights)
    to_group = {d: g for g, ds in FIVE_MIX_GROUPS.items() for d in ds}
    df = table[table["domain"].isin(to_group)].assign(group=lambda x: x["domain"].map(to_group),
                                                      sw=lambda x: x["domain"].map(valid_weights))
    df = df.assign(wl=df["loss"] * df["sw"])
    keys = [c for c in df.columns if c not in ("domain", "loss", "sw", "wl", "group")]
    out = df.groupby(keys + ["group"], as_index=False, dropna=False)[["wl", "sw"]].sum()
    out["loss"] = out["wl"] / out["sw"]
    return validate_table(out.drop(columns=["wl", "sw"]).rename(columns={"group": "domain"}))


def _check_group_weights(valid_weights: Mapping[str, float]) -> None:
    missing = sorted({d for ds in FIVE_MIX_GROUPS.values() for d in ds} - set(valid_weights))
    if missing:
        raise ValueError(f"valid weights lack the Pile subdomain(s) {missing}")


# Run ids above this are the authors' validation/default runs (997/998/999), kept out of fitting.
HOLDOUT_ID = 900

# RegMix proxies: 1000 steps of 512 x 2048 tokens (their synthesize_mixture.py config).
REGMIX_STEPS = 1000
REGMIX_TOKENS = float(REGMIX_STEPS * 512 * 2048)
# Released scales: 1M (train 512, test 256), 60M (test 256), 1B (test 64, files named ..._1B.csv).
REGMIX_SIZES = {"1m": 1_000_000, "60m": 60_000_000, "1b": 1_000_000_000}
# (step, tokens) of each scale. The 1B files state neither: their one checkpoint is recorded as
# step 1 with tokens NaN rather than a guessed budget.
REGMIX_SCHEDULE = {"1m": (REGMIX_STEPS, REGMIX_TOKENS), "60m": (REGMIX_STEPS, REGMIX_TOKENS), "1b": (1, np.nan)}
REGMIX_TARGET = "pile_cc"

SLD_STEP = 30_000

_RUN_RE = re.compile(
    r"^(?:(?P<size>\d+(?:\.\d+)?[KMBT])_)?(?:(?P<tag>[A-Za-z][A-Za-z0-9]*)_)?(?P<id>\d+)-(?P<ratios>[0-9.]+(?:-[0-9.]+)*)$"
)
_BASE_RE = re.compile(r"^pythia_(?P<size>\d+(?:\.\d+)?[kmbt])_step(?P<step>\d+)$", re.IGNORECASE)
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMBT])$", re.IGNORECASE)
_SCALE = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def parse_size(label: str) -> int:
    """Nominal parameter count of a size label: "70M" -> 70_000_000, "1.4B" -> 1_400_000_000."""
    m = _SIZE_RE.match(str(label).strip())
    if not m:
        raise ValueError(f"cannot read a model size from {label!r} (expected e.g. '70M' or '1B')")
    return int(round(float(m.group(1)) * _SCALE[m.group(2).upper()]))


def _require_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _validation_domain(val_file: str) -> str:
    name = val_file.rstrip("/").split("/")[-1]
    if name.startswith("pythia-pile.valid."):
        name = name[len("pythia-pile.valid."):]
    elif name.startswith("starcoder.python.valid"):
        return "Python"
    return name[: -len(".bin")] if name.endswith(".bin") else name


# ----------------------------------------------------------------------------------------------
# Data Mixing Laws
# ----------------------------------------------------------------------------------------------


def _read_mixinglaws_file(path: Path, variant: str) -> pd.DataFrame:
    """Rows of one <size>.txt with each run's ratios as read, before the domains are known, steps
    named 'last' resolved and duplicates dropped. ``where`` keeps file:line for later errors."""
    size_label = path.stem
    model_size = parse_size(size_label)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        ckpt, val_file, loss = _split_line(line, where)
        run_name, mix_id, ratios, step, is_base = _read_checkpoint(ckpt, where)
        rows.append({"run_id": f"{variant}/{size_label}/{run_name}", "model_size": model_size,
                     "size_label": size_label, "mix_id": mix_id, "step_text": step,
                     "domain": _validation_domain(val_file), "loss": loss, "is_base": is_base,
                     "ratios": ratios, "where": where})
    if not rows:
        raise ValueError(f"{path} has no data lines")
    return pd.DataFrame(rows)


def _split_line(line: str, where: str) -> tuple[str, str, float]:
    """(ckpt_path, val_file, loss) of one ``ckpt_path<TAB>val_file<TAB>loss`` line."""
    fields = line.rstrip("\n").split("\t")
    if len(fields) != 3:
        raise ValueError(f"{where}: expected 3 tab-separated fields (ckpt_path, val_file, loss), got {len(fields)}")
    ckpt, val_file, loss_text = fields
    try:
        loss = float(loss_text)
    except ValueError:
        raise ValueError(f"{where}: loss {loss_text!r} is not a number") from None
    if not np.isfinite(loss) or loss <= 0:
        raise ValueError(f"{where}: loss {loss_text!r} is not a finite positive number")
    return ckpt, val_file, loss


def _read_checkpoint(ckpt: str, where: str) -> tuple[str, int, tuple[float, ...] | None, str, bool]:
    """(run name, mix id, ratios, step text, is_base) of one checkpoint path; ratios None for the
    ct base model (its mixture, pure Pile, is set once the domains are known)."""
    parts = ckpt.rstrip("/").split("/")
    if _BASE_RE.match(parts[-1]):
        # ct only: the pretrained model that continual training starts from (pure Pile, step 0).
        return "base", -1, None, "0", True
    if len(parts) < 2:
        raise ValueError(f"{where}: checkpoint path {ckpt!r} has no run directory")
    run_name, step = parts[-2], parts[-1]
    m = _RUN_RE.match(run_name)
    if not m:
        raise ValueError(
            f"{where}: run directory {run_name!r} does not match '[<size>_][<tag>_]<id>-r1-r2-...'"
        )
    try:
        ratios = tuple(float(r) for r in m.group("ratios").split("-"))
    except ValueError:
        raise ValueError(f"{where}: run directory {run_name!r} has a ratio that is not a number") from None
    if step != "last" and not step.isdigit():
        raise ValueError(f"{where}: step {step!r} is neither a number nor 'last'")
    return run_name, int(m.group("id")), ratios, step, False


def _assign_mixtures(df: pd.DataFrame, variant: str, domains: Sequence[str] | None,
                     ratio_tol: float) -> tuple[pd.DataFrame, list[str]]:
    """The ``w:`` columns from each run's ratios; (table, domains).

    Domains are given, known for the folder name, or inferred from the number of ratios (named
    ``d1 .. dk``, with a warning). Ratios whose sum is off 1 by more than rounding (1e-6) but at
    most `ratio_tol` are renormalised, with one warning saying by how much; beyond that, an error
    naming the file and line.
    """
    domains = _mixinglaws_domains(variant, domains, df)
    k = len(domains)
    given = df["ratios"].map(lambda r: r is not None)
    counts = df.loc[given, "ratios"].map(len)
    bad = counts.index[counts != k]
    if len(bad):
        first = df.loc[bad[0]]
        raise ValueError(f"{first['where']}: run {first['run_id']!r} has {len(first['ratios'])} ratios but "
                         f"{variant} has {k} training domains {list(domains)} ({len(bad)} such line(s))")
    base = tuple([1.0] + [0.0] * (k - 1))
    R = np.array([r if r is not None else base for r in df["ratios"]], dtype=float)
    R = _renormalised(R, df, ratio_tol)
    wcols = {weight_column(d): R[:, j] for j, d in enumerate(domains)}
    return df.drop(columns=["ratios"]).assign(**wcols), list(domains)


def _renormalised(R: np.ndarray, df: pd.DataFrame, ratio_tol: float) -> np.ndarray:
    """Rows of R scaled to sum to 1 when within `ratio_tol` of it (warned), else an error."""
    if np.any(R < 0):
        i = int(np.flatnonzero((R < 0).any(axis=1))[0])
        raise ValueError(f"{df['where'].iloc[i]}: run {df['run_id'].iloc[i]!r} has a negative ratio")
    off = np.abs(R.sum(axis=1) - 1.0)
    too_far = off > ratio_tol
    if too_far.any():
        i = int(np.argmax(off))
        raise ValueError(f"{df['where'].iloc[i]}: ratios of run {df['run_id'].iloc[i]!r} sum to {R[i].sum():.6g}, "
                         f"off 1 by {off[i]:.3g} > ratio_tol={ratio_tol:g} ({int(too_far.sum())} such line(s)); "
                         "pass a larger ratio_tol to renormalise them")
    fixed = off > 1e-6
    if fixed.any():
        runs = df.loc[fixed, "run_id"].unique()
        i = int(np.argmax(off))
        warnings.warn(f"renormalised the ratios of {len(runs)} run(s) whose rounded ratios do not sum to 1: "
                      f"largest deviation {off[i]:.3g} (run {df['run_id'].iloc[i]!r}, sum {R[i].sum():.6g}, "
                      f"{df['where'].iloc[i]}); tolerance ratio_tol={ratio_tol:g}", stacklevel=4)
        R = R / R.sum(axis=1, keepdims=True)
    return R


def _resolve_last(df: pd.DataFrame) -> pd.DataFrame:
    """Give the checkpoints named 'last' their numeric step.

    'last' is not always the final step: in 3Mix/70M one run's 'last' repeats its step-34500
    losses exactly. So 'last' takes the numeric step of the same run whose losses match it on
    every domain it was evaluated on (those lines are then duplicates); a 'last' that matches
    no step is dropped with a warning, since its step cannot be known.
    """
    is_last = df["step_text"] == "last"
    df = df.assign(step=np.where(is_last, -1, pd.to_numeric(df["step_text"].where(~is_last), errors="coerce")))
    if not is_last.any():
        return df.assign(step=df["step"].astype(int))
    numeric = df[~is_last]
    resolved, unresolved = {}, []
    for run_id, last_rows in df[is_last].groupby("run_id"):
        target = last_rows.set_index("domain")["loss"]
        cand = numeric[(numeric["run_id"] == run_id) & numeric["domain"].isin(target.index)]
        table = cand.pivot_table(index="step", columns="domain", values="loss", aggfunc="first")
        table = table.reindex(columns=target.index).dropna()
        match = table.index[(np.abs(table - target).max(axis=1) <= 1e-9).to_numpy()]
        if len(match):
            resolved[run_id] = int(match.max())
        else:
            unresolved.append(run_id)
    if unresolved:
        warnings.warn(
            f"dropping 'last' checkpoints whose losses match no numeric step of their run: {unresolved}",
            stacklevel=3,
        )
    df = df[~(is_last & df["run_id"].isin(unresolved))].copy()
    still_last = df["step_text"] == "last"
    df.loc[still_last, "step"] = df.loc[still_last, "run_id"].map(resolved)
    return df.assign(step=df["step"].astype(int))


def load_mixinglaws(
    folder: str | Path,
    sizes: Sequence[str] | None = None,
    domains: Sequence[str] | None = None,
    include_holdout: bool = True,
    ratio_tol: float = 0.05,
    size_map: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Runs of one folder in the Data Mixing Laws text format (any folder name) as a run table.

    Each ``<size>.txt`` holds ``ckpt_path<TAB>val_file<TAB>loss`` lines. The mixture is read from
    the run directory ``[<size>_][<tag>_]<id>-r1-r2-...``, the step from the last path component,
    the validation domain from ``pythia-pile.valid.<Domain>.bin`` (``Python`` for
    ``starcoder.python.valid``; any other file name is the domain).

    `domains` names the training domains in the order of the ratios; by default the order of
    :data:`MIXINGLAWS_DOMAINS` for the four released folders (2Mix, 3Mix, 5Mix, ct), else
    ``d1 .. dk`` inferred from the number of ratios (with a warning). Ratios that do not sum to 1
    (the release rounds them) are renormalised with a warning saying by how much, up to
    `ratio_tol`; a run further off is an error naming the file and line.

    `size_map` ({size label: non-embedding parameters}) fills ``non_embedding_params``; the default
    is :data:`mixkit.reference.PYTHIA` (the releases use Pythia models; labels it lacks get NaN).
    ``model_size`` stays the nominal total size of the label ("70M" -> 70e6).

    Resolved quirks of the release:

    * step ``last`` repeats a numbered checkpoint of the same run (not always the final one: 3Mix/70M):
      it takes the step whose losses it matches; an unmatched ``last`` is dropped with a warning;
    * repeated (run, step, domain) lines are dropped (a warning names any whose losses differ);
    * runs with id > 900 are the authors' validation runs: ``holdout`` is True (fit on ``~holdout``);
    * ``ct`` also holds the pretrained base model (``pythia_70m_step20000``) that continual
      training starts from; it appears as run ``ct/70M/base`` with ``is_base`` True, step 0
      and the pure-Pile mixture (all weight on the first domain).

    Extra columns beside the run-table schema: ``non_embedding_params``, ``size_label`` ("70M"),
    ``mix_id`` (the id in the run name, -1 for the base model), ``holdout``, ``is_base``, ``source``
    ("mixinglaws/<folder>"). ``tokens`` is NaN (the release does not state the batch size).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"mixinglaws folder not found: {folder}")
    if not 0 <= ratio_tol < 1:
        raise ValueError(f"ratio_tol must be in [0, 1), got {ratio_tol!r}")
    variant = folder.name
    files = _size_files(folder, sizes)
    df = pd.concat([_read_mixinglaws_file(p, variant) for p in files], ignore_index=True)
    df, domains = _assign_mixtures(df, variant, domains, ratio_tol)
    df = _drop_repeated_lines(_resolve_last(df.drop(columns=["where"])))
    df = df.assign(holdout=df["mix_id"] > HOLDOUT_ID)
    if not include_holdout:
        df = df[~df["holdout"]]
    sizes_n = _non_embedding(df["size_label"], size_map)
    df = df.assign(tokens=np.nan, seed=0, config_hash="", source=f"mixinglaws/{variant}",
                   **{NON_EMBEDDING_COLUMN: sizes_n})
    wcols = [weight_column(d) for d in domains]
    cols = ["run_id", "model_size", "step", "tokens", "domain", "loss", "seed", "config_hash", *wcols,
            NON_EMBEDDING_COLUMN, "size_label", "mix_id", "holdout", "is_base", "source"]
    df = df[cols].sort_values(["model_size", "run_id", "step", "domain"]).reset_index(drop=True)
    return validate_table(df)


def _non_embedding(labels: pd.Series, size_map: Mapping[str, int] | None) -> np.ndarray:
    """Non-embedding N of each size label from `size_map` (default: Pythia's), NaN where unknown."""
    table = reference.PYTHIA.non_embedding if size_map is None else size_map
    known = {str(k).upper(): v for k, v in table.items()}
    for label, value in known.items():
        if not isinstance(value, (int, np.integer, float)) or not value > 0:
            raise ValueError(f"size_map: the size of {label!r} must be a positive number, got {value!r}")
    return labels.map(lambda lab: known.get(str(lab).upper(), np.nan)).to_numpy(dtype=float)


def _mixinglaws_domains(variant: str, domains: Sequence[str] | None, df: pd.DataFrame) -> list[str]:
    """Given domains (checked), the known ones of a released folder, or d1..dk from the ratios."""
    if domains is not None:
        domains = [str(d) for d in domains]
        if not domains or len(set(domains)) != len(domains):
            raise ValueError(f"domains must be distinct names, one per ratio, got {domains}")
        return domains
    if variant in MIXINGLAWS_DOMAINS:
        return list(MIXINGLAWS_DOMAINS[variant])
    lengths = df["ratios"].dropna().map(len)
    if lengths.empty:
        raise ValueError(f"{variant}: no run names with ratios to infer the training domains from; pass domains=")
    k = int(lengths.mode().iloc[0])
    names = [f"d{j + 1}" for j in range(k)]
    warnings.warn(f"mixinglaws folder {variant!r} is not one of {sorted(MIXINGLAWS_DOMAINS)}: its {k} training "
                  f"domains are named {names} in the order of the ratios; pass domains=[...] to name them",
                  stacklevel=4)
    return names


def _size_files(folder: Path, sizes: Sequence[str] | None) -> list[Path]:
    """The ``<size>.txt`` files of a mixinglaws folder, only `sizes` when given."""
    files = sorted(p for p in folder.glob("*.txt") if _SIZE_RE.match(p.stem))
    if sizes is not None:
        wanted = {str(s) for s in sizes}
        missing = wanted - {p.stem for p in files}
        if missing:
            raise FileNotFoundError(f"no <size>.txt for size(s) {sorted(missing)} in {folder}")
        files = [p for p in files if p.stem in wanted]
    if not files:
        raise FileNotFoundError(f"no <size>.txt files (e.g. 70M.txt) in {folder}")
    return files


def _drop_repeated_lines(df: pd.DataFrame) -> pd.DataFrame:
    """One line per (run, step, domain): the first; a warning names keys whose repeats disagree."""
    key = ["run_id", "step", "domain"]
    spread = df.groupby(key)["loss"].agg(lambda s: s.max() - s.min())
    conflicting = spread[spread > 1e-9]
    if len(conflicting):
        warnings.warn(
            f"{len(conflicting)} (run, step, domain) keys appear with different losses; keeping the "
            f"first line, e.g. {conflicting.index[:3].tolist()}",
            stacklevel=3,
        )
    return df.drop_duplicates(key, keep="first")


def load_valid_weights(path: str | Path) -> dict[str, float]:
    """Proportions of the Pile-valid subdomains (``valid_weight.json``): {domain: share}.

    These aggregate per-domain losses into the overall Pile loss ``L = sum_i s_i L_i``.
    Raises ValueError for non-numeric or negative entries and for shares that do not sum to 1.
    """
    path = _require_file(Path(path), "validation weights file")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path} must hold a non-empty JSON object {{domain: weight}}")
    weights = {}
    for name, value in raw.items():
        if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{path}: weight of {name!r} must be a non-negative number, got {value!r}")
        weights[str(name)] = float(value)
    total = sum(weights.values())
    if not np.isclose(total, 1.0, atol=1e-6):
        raise ValueError(f"{path}: weights sum to {total:.6f}, not 1")
    return weights


def load_proportions(path: str | Path, domains: Sequence[str] | None = SLD_DOMAINS,
                     ratio_tol: float = 0.05) -> pd.DataFrame:
    """Mixtures written one per line as ``r1-r2-...`` (``5Mix/proportions.txt``) as a DataFrame.

    `domains` names the columns (default: the five 5Mix groups); None infers their number from the
    first line and names them ``d1 .. dk``. Every line must have as many ratios. Rows whose sum is
    off 1 by more than rounding but at most `ratio_tol` are renormalised with a warning; further
    off, or not numbers, is an error naming the file and line.
    """
    path = _require_file(Path(path), "proportions file")
    rows, wheres = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            ratios = [float(x) for x in line.strip().split("-")]
        except ValueError:
            raise ValueError(f"{where}: {line!r} is not a '-'-separated list of numbers") from None
        k = len(domains) if domains is not None else len(rows[0]) if rows else len(ratios)
        if len(ratios) != k:
            raise ValueError(f"{where}: {len(ratios)} ratios for {k} domains")
        rows.append(ratios)
        wheres.append(where)
    if not rows:
        raise ValueError(f"{path} holds no mixtures")
    names = list(domains) if domains is not None else [f"d{j + 1}" for j in range(len(rows[0]))]
    frame = pd.DataFrame({"run_id": [f"line {w.rsplit(':', 1)[1]}" for w in wheres], "where": wheres})
    R = _renormalised(np.array(rows, dtype=float), frame, ratio_tol)
    return pd.DataFrame(R, columns=names)


def continual_pile_losses(ct: pd.DataFrame, valid_weights: Mapping[str, float],
                          step: int) -> tuple[float, pd.DataFrame]:
    """Pile losses of the continual-pretraining release (the table of ``load_mixinglaws(".../ct")``).

    The Pile loss is ``sum_d s_d L_d`` over the Pile-valid subdomains d (s from
    :func:`load_valid_weights`). Returns the base model's Pile loss before continual pretraining
    and, for each continual run at `step`, its Pile share ``r`` and Pile ``loss`` (index run_id,
    sorted by r). Raises ValueError when a run lacks one of the subdomains at that step.
    """
    pile = ct[ct["domain"].isin(valid_weights)]
    pile = pile.assign(weighted=pile["loss"] * pile["domain"].map(valid_weights))
    base, runs = pile[pile["is_base"]], pile[(pile["step"] == step) & ~pile["is_base"]]
    if base.empty:
        raise ValueError("the table has no base model (is_base) rows on the Pile-valid subdomains")
    if runs.empty:
        raise ValueError(f"no continual-pretraining run recorded step {step}")
    counts = pd.concat([base, runs]).groupby("run_id")["domain"].nunique()
    incomplete = counts.index[counts < len(valid_weights)].tolist()
    if incomplete:
        raise ValueError(f"run(s) {incomplete} lack some of the {len(valid_weights)} Pile-valid subdomains")
    base_loss = float(base["weighted"].sum())
    losses = runs.groupby("run_id").agg(r=(weight_column("pile"), "first"), loss=("weighted", "sum"))
    return base_loss, losses.sort_values("r")


# ----------------------------------------------------------------------------------------------
# SLD packaging of the 5Mix data
# ----------------------------------------------------------------------------------------------


def load_sld(path: str | Path, domains: Sequence[str] = SLD_DOMAINS) -> pd.DataFrame:
    """``all_models_data.json`` ({model: {train: [...], eval: [...]}}) as a run table.

    Each entry ``{ratio, proportions[5], loss[5]}`` becomes five rows, one per 5Mix group
    (validation domains named like the training groups: academic, prose, dialogue, symbolic,
    internet). Extra columns: ``split`` ("train"/"eval", the paper's 20/6 split per size),
    ``size_label``, ``source``. Sizes with no entries (1B in the release) are skipped. Step is
    30000 (the step the data was taken at); ``tokens`` is NaN.
    """
    path = _require_file(Path(path), "SLD data file")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a JSON object {{model: {{train: [...], eval: [...]}}}}")
    rows = []
    for size_label, splits in raw.items():
        model_size = parse_size(size_label)
        for split in ("train", "eval"):
            for i, entry in enumerate(splits.get(split, [])):
                try:
                    props = [float(x) for x in entry["proportions"]]
                    losses = [float(x) for x in entry["loss"]]
                    ratio = str(entry.get("ratio", "-".join(map(str, props))))
                except (KeyError, TypeError, ValueError) as err:
                    raise ValueError(f"{path}: {size_label}/{split}[{i}] is malformed ({err!r})") from None
                if len(props) != len(domains) or len(losses) != len(domains):
                    raise ValueError(
                        f"{path}: {size_label}/{split}[{i}] needs {len(domains)} proportions and losses"
                    )
                for dom, loss in zip(domains, losses):
                    rows.append(
                        {
                            "run_id": f"sld/{size_label}/{ratio}",
                            "model_size": model_size,
                            "step": SLD_STEP,
                            "tokens": np.nan,
                            "domain": dom,
                            "loss": loss,
                            "seed": 0,
                            "config_hash": "",
                            **{weight_column(d): p for d, p in zip(domains, props)},
                            "split": split,
                            "size_label": size_label,
                            "source": "sld",
                        }
                    )
    if not rows:
        raise ValueError(f"{path} holds no runs")
    return validate_table(pd.DataFrame(rows))


def sld_split(table: pd.DataFrame, size_label: str, domains: Sequence[str] = SLD_DOMAINS
              ) -> tuple[tuple[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]:
    """SLD's split of one model size of :func:`load_sld`: ``((W_train, L_train), (W_eval, L_eval))``.

    W holds the mixtures (runs x training groups), L the losses (runs x validation groups), both
    with columns in the order of `domains` and runs sorted by run_id.
    """
    part = table[table["size_label"] == size_label]
    if part.empty:
        raise ValueError(f"no SLD runs of size {size_label!r}; sizes: {sorted(table['size_label'].unique())}")
    domains = list(domains)
    W, L = pivot_losses(part, step="last", domains=domains)
    W = W[domains]
    split = part.groupby("run_id")["split"].first().loc[W.index]
    train, test = split.index[split == "train"], split.index[split == "eval"]
    return (W.loc[train], L.loc[train]), (W.loc[test], L.loc[test])


# ----------------------------------------------------------------------------------------------
# RegMix
# ----------------------------------------------------------------------------------------------

_REGMIX_TRAIN_PREFIX = "train_the_pile_"
_REGMIX_METRIC_RE = re.compile(r"^metric/the_pile_(?P<name>.+)_val_loss$")


def _regmix_files(folder: Path, which: str, split: str) -> tuple[Path, Path]:
    which, split = str(which).lower(), str(split).lower()
    if which not in REGMIX_SIZES:
        raise ValueError(f"which must be one of {sorted(REGMIX_SIZES)}, got {which!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    mix = _find_case_insensitive(folder, f"{split}_mixture_{which}.csv")
    loss = _find_case_insensitive(folder, f"{split}_pile_loss_{which}.csv")
    if not mix.is_file() or not loss.is_file():
        missing = [str(p) for p in (mix, loss) if not p.is_file()]
        hint = (f" (RegMix released {which.upper()} runs only for its test mixtures)"
                if which != "1m" and split == "train" else "")
        raise FileNotFoundError(f"RegMix file(s) not found: {missing}{hint}")
    return mix, loss


def _find_case_insensitive(folder: Path, name: str) -> Path:
    """folder/name, or the file whose name matches it up to case (the 1B files are ``..._1B.csv``)."""
    exact = folder / name
    if exact.is_file() or not folder.is_dir():
        return exact
    for p in folder.iterdir():
        if p.name.lower() == name.lower() and p.is_file():
            return p
    return exact


def _read_regmix(folder: Path, which: str, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    mix_path, loss_path = _regmix_files(folder, which, split)
    mix = pd.read_csv(mix_path)
    loss = pd.read_csv(loss_path)
    for frame, p in ((mix, mix_path), (loss, loss_path)):
        if "index" not in frame.columns:
            raise ValueError(f"{p} has no 'index' column")
        if not frame["index"].is_unique:
            raise ValueError(f"{p} repeats values in its 'index' column")
    wcols = [c for c in mix.columns if c.startswith(_REGMIX_TRAIN_PREFIX)]
    lcols = [c for c in loss.columns if _REGMIX_METRIC_RE.match(c)]
    if not wcols:
        raise ValueError(f"{mix_path} has no '{_REGMIX_TRAIN_PREFIX}*' weight columns")
    if not lcols:
        raise ValueError(f"{loss_path} has no 'metric/the_pile_*_val_loss' columns")
    mix = mix.set_index("index")[wcols].rename(columns=lambda c: c[len(_REGMIX_TRAIN_PREFIX):])
    loss = loss.set_index("index")[lcols].rename(columns=lambda c: _REGMIX_METRIC_RE.match(c).group("name"))
    common = mix.index.intersection(loss.index)
    if len(common) < len(mix.index) or len(common) < len(loss.index):
        warnings.warn(
            f"RegMix {split}/{which}: {len(mix)} mixtures and {len(loss)} loss rows share only "
            f"{len(common)} indices; keeping those",
            stacklevel=3,
        )
    mix, loss = _numeric_cells(mix.loc[common], mix_path), _numeric_cells(loss.loc[common], loss_path)
    return mix, loss


def _numeric_cells(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """`frame` as floats; an empty, non-numeric or negative cell is an error naming file, line and column."""
    num = frame.apply(pd.to_numeric, errors="coerce").astype(float)
    bad = ~np.isfinite(num.to_numpy()) | (num.to_numpy() < 0)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        # The file's line: the header is line 1 and the rows keep their order.
        raw = pd.read_csv(path, usecols=["index"])["index"]
        line = int(np.flatnonzero((raw == frame.index[i]).to_numpy())[0]) + 2
        raise ValueError(f"{path}:{line}: column {frame.columns[j]!r} (index {frame.index[i]!r}) holds "
                         f"{frame.iat[i, j]!r}, not a non-negative number ({int(bad.sum())} such cell(s))")
    return num


def _target_name(target: str) -> str:
    m = _REGMIX_METRIC_RE.match(target)
    return m.group("name") if m else target


def regmix_xy(
    folder: str | Path,
    which: str = "1m",
    split: str = "train",
    target: str | Sequence[str] | None = REGMIX_TARGET,
    renormalize: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame | pd.Series]:
    """RegMix weights and losses as regression arrays: (X runs x 17 domains, y).

    ``target`` names a validation loss either short ("pile_cc") or as published
    ("metric/the_pile_pile_cc_val_loss"); a list gives a DataFrame, None all 13 losses.
    The published weights are rounded to 3 decimals (rows sum to 0.996-1.003, outside the 1e-3
    within which the laws take a row for a mixture); they are renormalized to sum to 1, as in
    :func:`load_regmix`. ``renormalize=False`` returns them as published (what RegMix fitted on:
    the laws then need ``simplex=False``).
    """
    mix, loss = _read_regmix(Path(folder), which, split)
    if renormalize:
        mix = mix.div(mix.sum(axis=1), axis=0)
    if target is None:
        return mix, loss
    if isinstance(target, str):
        name = _target_name(target)
        if name not in loss.columns:
            raise ValueError(f"RegMix has no validation loss {target!r}; it has {list(loss.columns)}")
        return mix, loss[name]
    names = [_target_name(t) for t in target]
    unknown = [t for t in names if t not in loss.columns]
    if unknown:
        raise ValueError(f"RegMix has no validation loss(es) {unknown}; it has {list(loss.columns)}")
    return mix, loss[names]


def load_regmix(folder: str | Path, which: str = "1m", split: str = "train") -> pd.DataFrame:
    """RegMix runs (``{split}_mixture_{which}.csv`` joined with ``{split}_pile_loss_{which}.csv``
    on ``index``) as a run table.

    17 training-domain weights (``w:arxiv`` ... from ``train_the_pile_*``; renormalized to sum to
    exactly 1 because the release rounds them to 3 decimals) and 13 validation domains
    (``pile_cc`` ... from ``metric/the_pile_*_val_loss``, natural-log cross-entropy).
    ``model_size`` is the nominal 1M / 60M / 1B; 1M and 60M runs are 1000 steps of 512 x 2048
    tokens (the 1B files state no schedule: step 1, tokens NaN, see :data:`REGMIX_SCHEDULE`).
    Extra columns: ``index`` (the published row id), ``split``, ``source``.
    Released: train/1m (512), test/1m (256), test/60m (the same 256 mixtures), test/1b (64 runs,
    7 validation losses, files ``test_*_1B.csv``; `which` is matched case-insensitively).
    """
    mix, loss = _read_regmix(Path(folder), which, split)
    mix = mix.div(mix.sum(axis=1), axis=0)
    which = str(which).lower()
    long = loss.rename_axis("index").reset_index().melt(id_vars="index", var_name="domain", value_name="loss")
    weights = mix.rename(columns=weight_column).rename_axis("index").reset_index()
    df = long.merge(weights, on="index", how="left")
    df.insert(0, "run_id", [f"regmix/{which}/{split}/{i}" for i in df["index"]])
    df["model_size"] = REGMIX_SIZES[which]
    df["step"], df["tokens"] = REGMIX_SCHEDULE[which]
    df["seed"] = 0
    df["config_hash"] = ""
    df["split"] = split
    df["source"] = f"regmix/{which}"
    wcols = [weight_column(d) for d in mix.columns]
    cols = ["run_id", "model_size", "step", "tokens", "domain", "loss", "seed", "config_hash", *wcols,
            "index", "split", "source"]
    return validate_table(df[cols].sort_values(["index", "domain"]).reset_index(drop=True))


# ----------------------------------------------------------------------------------------------
# Chinchilla (Epoch AI's extraction of Hoffmann et al. Fig. 4)
# ----------------------------------------------------------------------------------------------


def load_chinchilla(path: str | Path) -> pd.DataFrame:
    """The 245 (N, FLOP, loss) points of ``svg_extracted_data.csv`` as columns N, D, C, loss.

    ``N`` is the model size in parameters, ``C`` the training FLOP and ``D = C / (6 N)`` the
    training tokens. Not a run table: there are no mixtures, only (N, D) -> loss for size laws.
    """
    path = _require_file(Path(path), "Chinchilla data file")
    raw = pd.read_csv(path)
    needed = ["Model Size", "Training FLOP", "loss"]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise ValueError(f"{path} is missing column(s) {missing}; it has {list(raw.columns)}")
    df = pd.DataFrame(
        {
            "N": pd.to_numeric(raw["Model Size"], errors="coerce"),
            "C": pd.to_numeric(raw["Training FLOP"], errors="coerce"),
            "loss": pd.to_numeric(raw["loss"], errors="coerce"),
        }
    )
    bad = ~np.isfinite(df.to_numpy(dtype=float)).all(axis=1) | (df <= 0).any(axis=1).to_numpy()
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} row(s) with missing or non-positive values, e.g. rows {list(np.flatnonzero(bad)[:3])}")
    df["D"] = df["C"] / (6.0 * df["N"])
    return df[["N", "D", "C", "loss"]]
