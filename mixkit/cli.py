"""The `mixkit` command: corpus, sweeps, run-store summaries, fits and reports."""

from __future__ import annotations

import argparse
import errno
import json
import sys
import time
import warnings
from pathlib import Path


def _data_dir(args) -> Path:
    from mixkit.paths import data_dir

    return Path(args.data_dir) if args.data_dir is not None else data_dir()


def _prepare(args, progress: bool = True):
    from mixkit import corpus, tokens

    try:
        built = corpus.builtin(data_dir=_data_dir(args), force=getattr(args, "force", False), progress=progress)
    except RuntimeError as exc:  # an artifact that cannot be fetched (offline, unwritable downloads folder)
        raise ValueError(f"corpus build failed: {exc}") from exc
    return built, tokens.prepare(built, vocab_size=args.vocab_size, progress=progress)


def cmd_corpus_build(args) -> int:
    start = time.perf_counter()
    built, data = _prepare(args)
    info = data.info()
    print(f"built-in corpus at {built.root} and token shards at {data.root} ({time.perf_counter() - start:.1f} s)")
    print(f"{'domain':<12}{'MB':>8}{'documents':>11}{'train tokens':>14}{'val tokens':>12}")
    for name, d in info["domains"].items():
        print(f"{name:<12}{d['bytes'] / 1e6:>8.2f}{d['documents']:>11,}{d['train_tokens']:>14,}{d['val_tokens']:>12,}")
    print(f"vocab_size={info['vocab_size']}")
    return 0


def cmd_corpus_info(args) -> int:
    from mixkit import tokens

    root = _data_dir(args) / "tokens" / f"builtin-v{args.vocab_size}"
    if args.tokens is not None:
        root = Path(args.tokens)
    try:
        data = tokens.load(root)
    except FileNotFoundError as exc:
        print(f"mixkit: {exc}\nmixkit: run `mixkit corpus build` first", file=sys.stderr)
        return 2
    info = data.info()
    if args.json:
        print(json.dumps(info))
    else:
        for name, d in info["domains"].items():
            print(f"{name:<12} {d['bytes']:>12,} bytes {d['documents']:>8,} docs "
                  f"{d['train_tokens']:>12,} train {d['val_tokens']:>9,} val tokens")
        print(f"vocab_size={info['vocab_size']}")
    return 0


def _mixtures_from_args(args, data):
    from mixkit import mixture

    if args.mixtures is not None:
        return _mixtures_from_csv(args.mixtures, data)
    design = args.design
    if design == "uniform":
        return mixture.uniform(data.domains)
    if design == "natural":
        return mixture.natural(data.token_counts)
    if design == "grid":
        return mixture.grid(data.domains, args.grid_k)
    return mixture.dirichlet(data.domains, n=args.n, prior=data.token_share, rng=args.seed)


def _mixtures_from_csv(path: str, data) -> list:
    """One Mixture per CSV row; every error names the file (and the row)."""
    import pandas as pd

    from mixkit import mixture

    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser and empty-file errors are ValueErrors
        raise ValueError(f"{path}: not a readable CSV of mixtures ({exc})") from None
    unknown = [c for c in frame.columns if c not in data.domains and c != "name"]
    if unknown:
        raise ValueError(f"{path}: columns {unknown} are not domains of the data {data.domains}")
    cols = [c for c in frame.columns if c in data.domains]
    if not cols or frame.empty:
        raise ValueError(f"{path}: needs at least one row and one domain column of {data.domains}")
    out = []
    for i, row in frame.iterrows():
        try:
            out.append(mixture.Mixture({c: float(row[c]) for c in cols}, domains=data.domains))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: row {i + 1}: {exc}") from None
    return out


def cmd_sweep(args) -> int:
    from mixkit import runs, tokens
    from mixkit.proxy import ProxyConfig

    # Config first: a bad preset or step count fails before any corpus is built or store written.
    overrides = {}
    if args.steps is not None:
        overrides = {"steps": args.steps,
                     "eval_every": max(1, min(ProxyConfig.preset(args.preset).eval_every, args.steps))}
    config = ProxyConfig.preset(args.preset, **overrides)
    if args.mixtures is not None and not Path(args.mixtures).is_file():
        # Before the corpus is built: a typo in the path must not cost (or write) a corpus.
        raise FileNotFoundError(errno.ENOENT, "No such mixtures file", args.mixtures)
    data = tokens.load(args.tokens) if args.tokens is not None else _prepare(args)[1]
    mixtures = _mixtures_from_args(args, data)
    store = Path(args.store) if args.store is not None else _data_dir(args) / "runs"
    kwargs = {"workers": args.workers, "backend": args.backend}
    if args.address is not None:
        kwargs["address"] = args.address
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        result = runs.sweep([config], mixtures, data, store, **kwargs)
    for w in caught:
        print(f"mixkit: warning: {w.message}", file=sys.stderr)
    # Counts from the sweep itself: on a full disk the store cannot record its failures.
    summary = {**result.summary(), "runs": runs.store_summary(store)["runs"]}
    print(json.dumps(summary))
    return 1 if result.failed else 0


def cmd_runs(args) -> int:
    from mixkit import runs

    if not Path(args.store).is_dir():
        problem = "is not a folder" if Path(args.store).exists() else "does not exist"
        print(f"mixkit: run store {args.store} {problem}", file=sys.stderr)
        return 2
    summary = runs.store_summary(args.store)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['runs']} finished runs, {summary['failed']} failed, in {args.store}")
    return 0


def cmd_report(args) -> int:
    from mixkit import report

    try:
        outcomes = report.run_report(preset=args.preset, only=args.only, out=args.out,
                                     data_dir=args.data_dir, kernel_name=args.kernel)
    except ValueError as exc:
        print(f"mixkit: {exc}", file=sys.stderr)
        return 2
    failed = [o for o in outcomes if not o.ok]
    for o in outcomes:
        print(f"{'ok    ' if o.ok else 'FAILED'} {o.name:<28} {o.seconds:7.1f} s  {o.html or ''}")
        if o.error:
            print(f"       {o.error}")
    out = Path(args.out) if args.out is not None else report.REPO / "reports" / args.preset
    print(f"index: {out / 'index.html'}")
    return 1 if failed else 0


def cmd_fit(args) -> int:
    from mixkit import fit

    options = fit.FitOptions(
        target=tuple(t for arg in args.target for t in arg.split(",") if t),
        target_weights=None if args.target_weights is None else tuple(
            _number(w, "--target-weights") for w in args.target_weights.split(",")),
        direction=args.direction, law=args.law, compare=tuple(c for c in args.compare.split(",") if c),
        kl=None if args.kl == "auto" else _number(args.kl, "--kl"), folds=args.folds, seed=args.seed,
        n_boot=args.n_boot, alpha=args.alpha, target_tokens=args.target_tokens,
        repetition_factor=args.repetition_factor, renormalize=args.renormalize, run_column=args.run_column,
        step=args.step, model_size=args.model_size)
    folder, reused, summary = fit.run_fit(options, args.out, run_table=args.run_table, ratios=args.ratios,
                                          metrics=args.metrics, prior=args.prior, token_counts=args.token_counts,
                                          bounds=args.bounds)
    for w in summary["warnings"]:
        print(f"mixkit: warning: {w}", file=sys.stderr)
    lo_hi = summary["predicted_interval"]
    shown = f" [{_shown(lo_hi[0])}, {_shown(lo_hi[1])}]" if lo_hi else ""
    print(f"{'reused' if reused else 'wrote'} {folder}")
    print(f"{summary['law']} ({summary['method']}, lambda={summary['kl']:g}): predicted {summary['target']} "
          f"{_shown(summary['predicted_target'])}{shown}; converged: {summary['converged']}; "
          f"extrapolates: {summary['extrapolates']}")
    print(f"proposal: {folder / 'proposal.json'}  report: {folder / 'report.html'}")
    return 0


def _shown(value) -> str:
    # summary.json stores NaN as null, so a reused fit can hand back None.
    return "nan" if value is None else f"{value:.4f}"


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{flag} takes numbers{' or auto' if flag == '--kl' else ''}, got {text!r}") from None


def _count(minimum: int):
    """An argparse type: an integer >= minimum (0 is a value like any other, never "not given")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _path(text: str) -> str:
    """An argparse type for paths: an empty string is a mistake, not "use the default" or ".". """
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit 2 (argparse prints the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"mixkit: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mixkit", description=__doc__)
    parser.add_argument("--data-dir", type=_path, help="generated data root (default: $MIXKIT_DATA or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    corpus = sub.add_parser("corpus", help="build or describe the built-in corpus and its token shards")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    build = corpus_sub.add_parser("build", help="build (or reuse) the built-in corpus and token shards")
    build.add_argument("--vocab-size", type=_count(1), default=4096)
    build.add_argument("--force", action="store_true", help="rebuild the corpus even if the manifest matches")
    build.set_defaults(func=cmd_corpus_build)
    info = corpus_sub.add_parser("info", help="bytes, documents and tokens per domain")
    info.add_argument("--json", action="store_true")
    info.add_argument("--vocab-size", type=_count(1), default=4096)
    info.add_argument("--tokens", type=_path, help="token-shard folder (default: <data-dir>/tokens/builtin-v<vocab>)")
    info.set_defaults(func=cmd_corpus_info)

    sweep = sub.add_parser("sweep", help="train proxies on a mixture design; resumable")
    sweep.add_argument("--design", default="dirichlet", choices=["uniform", "natural", "grid", "dirichlet"])
    sweep.add_argument("--mixtures", type=_path, help="CSV with one column per domain (overrides --design)")
    sweep.add_argument("--n", type=_count(1), default=16, help="number of Dirichlet mixtures")
    sweep.add_argument("--grid-k", type=_count(1), default=4, help="grid step 1/k")
    sweep.add_argument("--preset", default="tiny", help="ProxyConfig preset")
    sweep.add_argument("--steps", type=_count(1), help="training steps (default: the preset's)")
    sweep.add_argument("--store", type=_path, help="run store (default: <data-dir>/runs)")
    sweep.add_argument("--tokens", type=_path, help="token-shard folder (default: the built-in corpus)")
    sweep.add_argument("--vocab-size", type=_count(1), default=4096)
    sweep.add_argument("--workers", type=_count(1), default=None)
    sweep.add_argument("--seed", type=_count(0), default=0)
    sweep.add_argument("--backend", default="local", choices=["local", "ray"])
    sweep.add_argument("--address", help="Ray cluster address (backend ray)")
    sweep.set_defaults(func=cmd_sweep)

    runs = sub.add_parser("runs", help="summarize a run store")
    runs.add_argument("store", type=_path)
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(func=cmd_runs)

    _fit_parser(sub)

    rep = sub.add_parser("report", help="run every notebook with papermill into HTML reports")
    rep.add_argument("--preset", default="quick")
    rep.add_argument("--only", action="append", help="notebook name (repeatable)")
    rep.add_argument("--out", type=_path, help="output folder (default: reports/<preset>)")
    rep.add_argument("--kernel", default="python3")
    rep.set_defaults(func=cmd_report)
    return parser


def _fit_parser(sub) -> None:
    # Law names are checked by mixkit.fit (importing it here would load matplotlib for every command).
    fit = sub.add_parser("fit", help="fit laws to run CSVs and propose a mixture with intervals")
    fit.add_argument("run_table", nargs="?", type=_path, help="a mixkit run table CSV (or use --ratios/--metrics)")
    fit.add_argument("--ratios", type=_path, help="Olmix ratios.csv: run column + one column per domain")
    fit.add_argument("--metrics", type=_path, help="Olmix metrics.csv: run column + metric columns")
    fit.add_argument("--run-column", help="the run column (default: run, else run_id)")
    fit.add_argument("--renormalize", action="store_true", help="divide each mixture by its sum (says by how much)")
    fit.add_argument("--target", action="append", required=True,
                     help="metric column(s) to optimise (comma-separated or repeated; several: their mean)")
    fit.add_argument("--target-weights", help="comma-separated weights of the target columns (a weighted sum)")
    fit.add_argument("--direction", choices=["min", "max"], default="min", help="which direction is better")
    fit.add_argument("--law", default="log-linear",
                     help="log-linear (default), mixing, implicit-mixing, linear or lightgbm")
    fit.add_argument("--compare", default="log-linear,mixing,linear,lightgbm",
                     help="comma-separated laws scored out of fold")
    fit.add_argument("--kl", default="auto", help="KL-to-prior strength lambda, or auto (2-fold cross-fitting)")
    fit.add_argument("--prior", type=_path, help="prior per domain (CSV domain,value or JSON)")
    fit.add_argument("--token-counts", type=_path, help="available tokens per domain (CSV domain,value or JSON)")
    fit.add_argument("--target-tokens", type=float, help="tokens of the target run (caps from repetition)")
    fit.add_argument("--repetition-factor", type=float, default=4.0)
    fit.add_argument("--bounds", type=_path, help="per-domain share limits (CSV domain,lo,hi)")
    fit.add_argument("--folds", type=_count(2), default=5)
    fit.add_argument("--n-boot", type=_count(2), default=30)
    fit.add_argument("--alpha", type=float, default=0.1, help="intervals are (1 - alpha)")
    fit.add_argument("--seed", type=_count(0), default=0)
    fit.add_argument("--step", default="last", help="run table: step to fit (default: each run's last)")
    fit.add_argument("--model-size", type=_count(1), help="run table: the model size to fit")
    fit.add_argument("--out", type=_path, default="fits", help="parent folder of the output folder")
    fit.set_defaults(func=cmd_fit)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 1 some work failed (a sweep's runs, a report's notebooks); 2 bad input or
    an unusable path, reported as one line naming it (never a traceback); 130 interrupted."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (one line, see _Parser) and --help, as a return value
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:  # FileNotFoundError, PermissionError, full disk... are OSErrors
        print(f"mixkit: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mixkit: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    """The error's message on one line, with the path an OSError is about when it does not say it."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror:  # drop "[Errno 13]", keep the message and the path
        text = exc.strerror + "".join(f": {f}" for f in (exc.filename, exc.filename2) if f is not None)
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
