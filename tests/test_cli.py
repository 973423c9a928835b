"""The `mixkit` command's contracts: corpus info JSON, a sweep from a CSV, the runs summary, exit
codes that tell the truth (1 when a planned run did not finish, 2 for bad input), and one-line
errors naming the path instead of tracebacks."""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mixkit.paths
import mixkit.runs.store
from mixkit import cli

REPO = Path(__file__).resolve().parents[1]


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
    assert json.loads(capsys.readouterr().out) == {"planned": 2, "finished": 2, "trained": 2, "failed": 0, "runs": 2}
    assert cli.main(["runs", "--json", str(store)]) == 0
    assert json.loads(capsys.readouterr().out) == {"runs": 2, "failed": 0}


def _without_progress_bars(err: str) -> str:
    """stderr less tqdm's bars (the corpus build draws one before it fails)."""
    return re.sub(r"\r?[\w ]+:\s+\d+%\|[^\]]*\]\n?", "", err).replace("\r", "")


def _sweep(token_data, csv, store, *extra):
    return cli.main(["sweep", "--mixtures", str(csv), "--preset", "smoke", "--tokens", str(token_data.root),
                     "--store", str(store), "--workers", "1", "--steps", "6", *extra])


def _no_space(path, text):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


def test_sweep_on_a_full_disk_exits_1_with_counts_from_memory(token_data, tmp_path, capsys, monkeypatch):
    store = tmp_path / "store"
    one, three = tmp_path / "one.csv", tmp_path / "three.csv"
    one.write_text("code,books\n0.5,0.5\n")
    three.write_text("code,books\n0.5,0.5\n1.0,0.0\n0.25,0.75\n")
    assert _sweep(token_data, one, store) == 0
    capsys.readouterr()
    # The disk fills: neither the runs' files nor their error.json can be written, so only the
    # sweep's own count can say that two of the three planned runs did not finish.
    monkeypatch.setattr(mixkit.runs.store, "atomic_write_text", _no_space)
    monkeypatch.setattr(mixkit.paths, "atomic_write_text", _no_space)
    assert _sweep(token_data, three, store) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {"planned": 3, "finished": 1, "trained": 0, "failed": 2, "runs": 1}
    assert "no space left on the device holding" in err and "Traceback" not in err
    assert not list(store.glob("*/error.json"))


def test_read_only_store_with_every_run_finished_still_answers(token_data, tmp_path, capsys, monkeypatch):
    store = tmp_path / "store"
    csv = tmp_path / "m.csv"
    csv.write_text("code,books\n0.5,0.5\n1.0,0.0\n")
    assert _sweep(token_data, csv, store) == 0
    capsys.readouterr()

    def read_only(path, text):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(mixkit.runs.store, "atomic_write_text", read_only)
    monkeypatch.setattr(mixkit.paths, "atomic_write_text", read_only)
    assert _sweep(token_data, csv, store) == 0
    assert json.loads(capsys.readouterr().out) == {"planned": 2, "finished": 2, "trained": 0, "failed": 0, "runs": 2}


def test_unwritable_store_is_one_line_exit_2(token_data, tmp_path, capsys, monkeypatch):
    csv = tmp_path / "m.csv"
    csv.write_text("code,books\n0.5,0.5\n")
    store = tmp_path / "store"
    real_mkdir = Path.mkdir

    def denied(self, *a, **k):
        if self == store:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", denied)
    assert _sweep(token_data, csv, store) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("mixkit: cannot write to ")
    assert str(store) in err and "check its permissions" in err


@pytest.mark.parametrize("option, value", [("--steps", "0"), ("--steps", "-5"), ("--steps", "ten"), ("--n", "0"),
                                           ("--grid-k", "0"), ("--workers", "0"), ("--vocab-size", "0"),
                                           ("--seed", "-1"), ("--design", "random"), ("--backend", "slurm"),
                                           ("--store", "")])
def test_explicit_values_are_values(token_data, tmp_path, capsys, option, value):
    # `--steps 0` used to mean "not given" and trained the preset's 100 steps.
    store = tmp_path / "store"
    args = ["sweep", "--design", "uniform", "--preset", "smoke", "--tokens", str(token_data.root), "--workers", "1"]
    args += [] if option == "--store" else ["--store", str(store)]
    assert cli.main([*args, option, value]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("mixkit: argument " + option)
    assert (repr(value) if option in ("--design", "--backend", "--steps") and not value.lstrip("-").isdigit()
            else value) in err
    assert not store.exists()


@pytest.mark.parametrize("case", ["missing_csv", "csv_is_folder", "binary_csv", "empty_csv", "text_weight",
                                  "negative_weight", "unknown_domain", "store_below_file", "data_dir_below_file",
                                  "runs_on_file", "report_out_below_file", "bad_preset"])
def test_user_errors_are_one_line_naming_the_path(token_data, tmp_path, capsys, case):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    csv, store = tmp_path / "m.csv", tmp_path / "store"
    csv.write_text("code,books\n0.5,0.5\n")
    named, base = str(csv), ["sweep", "--preset", "smoke", "--tokens", str(token_data.root), "--workers", "1",
                             "--store", str(store), "--mixtures", str(csv)]
    if case == "missing_csv":
        csv.unlink()
    elif case == "csv_is_folder":
        csv.unlink()
        csv.mkdir()
    elif case == "binary_csv":
        csv.write_bytes(bytes(range(256)) * 4)
    elif case == "empty_csv":
        csv.write_text("")
    elif case == "text_weight":
        csv.write_text("code,books\n0.5,0.5\nhalf,0.5\n")
    elif case == "negative_weight":
        csv.write_text("code,books\n0.5,0.5\n-0.5,1.5\n")
    elif case == "unknown_domain":
        csv.write_text("code,web\n0.5,0.5\n")
    elif case == "store_below_file":
        named = str(afile / "store")
        base[base.index(str(store))] = named
    elif case == "data_dir_below_file":
        named = str(afile / "data")
        base = ["--data-dir", named, "sweep", "--preset", "smoke", "--design", "uniform", "--store", str(store)]
    elif case == "runs_on_file":
        named, base = str(afile), ["runs", "--json", str(afile)]
    elif case == "report_out_below_file":
        named, base = str(afile / "reports"), ["report", "--preset", "quick", "--out", str(afile / "reports")]
    else:
        named = "nope"
        base[base.index("smoke")] = "nope"
    assert cli.main(base) == 2
    out, err = capsys.readouterr()
    err = _without_progress_bars(err)
    assert out == "" and err.count("\n") == 1 and err.startswith("mixkit: ") and "Traceback" not in err
    assert named in err, err
    if case in ("text_weight", "negative_weight"):
        assert "row 2" in err
    assert not store.exists()


def test_console_script_prints_no_traceback(token_data, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    store = afile / "store"
    out = subprocess.run([sys.executable, "-m", "mixkit.cli", "sweep", "--design", "uniform", "--preset", "smoke",
                          "--tokens", str(token_data.root), "--store", str(store), "--workers", "1"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("mixkit: ") and str(store) in out.stderr
