"""A small sweep on a real local Ray instance writes the same run store as the local backend."""

from __future__ import annotations

import pytest

from mixkit import mixture, runs
from mixkit.proxy import ProxyConfig

ray = pytest.importorskip("ray", reason="Ray is the optional extra mixkit[ray]")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_sweep_finishes_every_run_once_and_resumes(token_data, tmp_path, local_ray):
    config = ProxyConfig.preset("smoke", steps=8, eval_every=4, eval_tokens=512, threads=1)
    doms = token_data.domains[:3]
    mixes = mixture.uniform(doms) + [mixture.Mixture({doms[0]: 1.0}, domains=doms),
                                     mixture.Mixture({doms[1]: 0.5, doms[2]: 0.5}, domains=doms)]
    store = tmp_path / "store"
    ids = runs.sweep(config, mixes, token_data, store, backend="ray", progress=False)
    assert len(ids) == 3
    assert runs.store_summary(store) == {"runs": 3, "failed": 0}
    table = runs.load_runs(store)
    assert sorted(table["run_id"].unique()) == sorted(ids)
    assert not table.duplicated(["run_id", "step", "domain"]).any()
    # A second sweep over the same plan trains nothing: the DONE markers are the source of truth.
    before = {rid: (store / rid / "DONE").stat().st_mtime_ns for rid in ids}
    assert runs.sweep(config, mixes, token_data, store, backend="ray", progress=False) == ids
    assert {rid: (store / rid / "DONE").stat().st_mtime_ns for rid in ids} == before
