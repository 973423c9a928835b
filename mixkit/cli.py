"""The `mixkit` command: corpus, sweeps, run-store summaries and reports."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _data_dir(args) -> Path:
    from mixkit.paths import data_dir

    return Path(args.data_dir) if args.data_dir else data_dir()


def _prepare(args, progress: bool = True):
    from mixkit import corpus, tokens

    built = corpus.builtin(data_dir=_data_dir(args), force=getattr(args, "force", False), progress=progress)
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
    if args.tokens:
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

    if args.mixtures:
        import pandas as pd

        frame = pd.read_csv(args.mixtures)
        unknown = [c for c in frame.columns if c not in data.domains and c != "name"]
        if unknown:
            raise ValueError(f"{args.mixtures}: columns {unknown} are not domains of the data {data.domains}")
        cols = [c for c in frame.columns if c in data.domains]
        return [mixture.Mixture({c: float(row[c]) for c in cols}, domains=data.domains) for _, row in frame.iterrows()]
    design = args.design
    if design == "uniform":
        return mixture.uniform(data.domains)
    if design == "natural":
        return mixture.natural(data.token_counts)
    if design == "grid":
        return mixture.grid(data.domains, args.grid_k)
    if design == "dirichlet":
        return mixture.dirichlet(data.domains, n=args.n, prior=data.token_share, rng=args.seed)
    raise ValueError(f"unknown design {design!r}; choose uniform, natural, grid or dirichlet, or pass --mixtures CSV")


def cmd_sweep(args) -> int:
    from mixkit import runs, tokens
    from mixkit.proxy import ProxyConfig

    if args.tokens:
        data = tokens.load(args.tokens)
    else:
        _, data = _prepare(args)
    overrides = {"steps": args.steps} if args.steps else {}
    if args.steps:
        overrides["eval_every"] = max(1, min(ProxyConfig.preset(args.preset).eval_every, args.steps))
    config = ProxyConfig.preset(args.preset, **overrides)
    mixtures = _mixtures_from_args(args, data)
    store = Path(args.store) if args.store else _data_dir(args) / "runs"
    kwargs = {"workers": args.workers}
    if args.backend != "local":
        kwargs["backend"] = args.backend
    if args.address:
        kwargs["address"] = args.address
    runs.sweep([config], mixtures, data, store, **kwargs)
    summary = runs.store_summary(store)
    print(json.dumps(summary))
    return 1 if summary.get("failed") else 0


def cmd_runs(args) -> int:
    from mixkit import runs

    if not Path(args.store).is_dir():
        print(f"mixkit: run store {args.store} does not exist", file=sys.stderr)
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
    out = Path(args.out) if args.out else report.REPO / "reports" / args.preset
    print(f"index: {out / 'index.html'}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixkit", description=__doc__)
    parser.add_argument("--data-dir", help="generated data root (default: $MIXKIT_DATA or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    corpus = sub.add_parser("corpus", help="build or describe the built-in corpus and its token shards")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    build = corpus_sub.add_parser("build", help="build (or reuse) the built-in corpus and token shards")
    build.add_argument("--vocab-size", type=int, default=4096)
    build.add_argument("--force", action="store_true", help="rebuild the corpus even if the manifest matches")
    build.set_defaults(func=cmd_corpus_build)
    info = corpus_sub.add_parser("info", help="bytes, documents and tokens per domain")
    info.add_argument("--json", action="store_true")
    info.add_argument("--vocab-size", type=int, default=4096)
    info.add_argument("--tokens", help="token-shard folder (default: <data-dir>/tokens/builtin-v<vocab>)")
    info.set_defaults(func=cmd_corpus_info)

    sweep = sub.add_parser("sweep", help="train proxies on a mixture design; resumable")
    sweep.add_argument("--design", default="dirichlet", help="uniform | natural | grid | dirichlet")
    sweep.add_argument("--mixtures", help="CSV with one column per domain (overrides --design)")
    sweep.add_argument("--n", type=int, default=16, help="number of Dirichlet mixtures")
    sweep.add_argument("--grid-k", type=int, default=4, help="grid step 1/k")
    sweep.add_argument("--preset", default="tiny", help="ProxyConfig preset")
    sweep.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    sweep.add_argument("--store", help="run store (default: <data-dir>/runs)")
    sweep.add_argument("--tokens", help="token-shard folder (default: the built-in corpus)")
    sweep.add_argument("--vocab-size", type=int, default=4096)
    sweep.add_argument("--workers", type=int, default=None)
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--backend", default="local", help="local | ray")
    sweep.add_argument("--address", help="Ray cluster address (backend ray)")
    sweep.set_defaults(func=cmd_sweep)

    runs = sub.add_parser("runs", help="summarize a run store")
    runs.add_argument("store")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(func=cmd_runs)

    rep = sub.add_parser("report", help="run every notebook with papermill into HTML reports")
    rep.add_argument("--preset", default="quick")
    rep.add_argument("--only", action="append", help="notebook name (repeatable)")
    rep.add_argument("--out", help="output folder (default: reports/<preset>)")
    rep.add_argument("--kernel", default="python3")
    rep.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"mixkit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
