"""The CPU sweep layout: measured threads per worker per CPU kind, the cores filled, given values kept."""

import pytest

from mixkit.runs import layout
from mixkit.runs.layout import choose_layout


def test_default_is_one_single_threaded_worker_per_core():
    # Today's default, which every stored run id hashes (threads=1), unless a kind measured otherwise.
    assert choose_layout(cores=2, kind="AVX2") == (2, 1)
    assert choose_layout(cores=16, kind="SOMETHING-NEW") == (16, 1)


def test_measured_kind_picks_its_threads(monkeypatch):
    monkeypatch.setitem(layout.MEASURED, "AVX512+AMX", (2, "test figure"))
    assert choose_layout(cores=8, kind="AVX512+AMX") == (4, 2)
    assert choose_layout(cores=1, kind="AVX512+AMX") == (1, 1)  # never more threads than cores
    assert choose_layout(cores=8, kind="AVX2") == (8, 1)


def test_given_values_are_kept():
    assert choose_layout(workers=1, cores=4, kind="AVX2") == (1, 4)  # the cores shared out, as before
    assert choose_layout(workers=3, cores=4, kind="AVX2") == (3, 1)
    assert choose_layout(threads=2, cores=4, kind="AVX2") == (2, 2)
    assert choose_layout(workers=5, threads=3, cores=4, kind="AVX2") == (5, 3)


@pytest.mark.parametrize("bad", [dict(workers=0), dict(threads=-1), dict(workers=1.5)])
def test_bad_layout_raises(bad):
    with pytest.raises(ValueError, match="choose_layout: (workers|threads)"):
        choose_layout(cores=2, **bad)


def test_this_cpu_gets_a_layout_that_fills_it():
    workers, threads = choose_layout(cores=4)
    assert workers * threads <= 4 and workers >= 1 and threads >= 1
