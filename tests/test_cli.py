"""The `mixkit` command's contracts: corpus info JSON, a sweep from a CSV, the runs summary."""

from __future__ import annotations

import json
import subprocess
import sys

from mixkit import cli


def test_corpus_info_json_contract(token_data, capsys):
    assert cli.main(["corpus", "info", "--json", "--tokens", str(token_data.root)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["vocab_size"] == token_data.vocab_size
    assert set(info["domains"]) == {"code", "docs", "reference", "books", "dialogue", "math", "legal"}
    for name, d in info["domains"].items():
        assert set(d) == {"bytes", "documents", "train_tokens", "val_tokens"}
        assert d["bytes"] >= 2_000_000 and d["documents"] > 0
        assert d["train_tokens"] == token_data.token_counts[name] and d["val_tokens"] > 0


def test_corpus_build_reuses_what_exists(builtin_corpus, token_data):
    # The fixtures built everything; the console script must find it and rebuild nothing.
    before = {p: p.stat().st_mtime_ns for p in token_data.root.iterdir()}
    out = subprocess.run([sys.executable, "-m", "mixkit.cli", "--data-dir", str(builtin_corpus.root.parents[1]),
                          "corpus", "build"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "vocab_size=4096" in out.stdout and "legal" in out.stdout
    assert {p: p.stat().st_mtime_ns for p in token_data.root.iterdir()} == before


def test_sweep_from_csv_then_runs_json(token_data, tmp_path, capsys):
    csv = tmp_path / "mixtures.csv"
    csv.write_text("code,books\n0.5,0.5\n1.0,0.0\n")
    store = tmp_path / "store"
    rc = cli.main(["sweep", "--mixtures", str(csv), "--preset", "smoke", "--tokens", str(token_data.root),
                   "--store", str(store), "--workers", "1", "--steps", "6"])
    assert rc == 0
    capsys.readouterr()
    assert cli.main(["runs", "--json", str(store)]) == 0
    assert json.loads(capsys.readouterr().out) == {"runs": 2, "failed": 0}
