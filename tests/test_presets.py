"""Preset files name only real notebook parameters, and the smoke preset is the notebooks' defaults."""

from __future__ import annotations

import pytest

from mixkit import report
from nbutil import default_parameters

PRESETS = report.available_presets()
NOTEBOOKS = [p.stem for p in report.notebooks()]


def test_the_three_presets_exist():
    assert {"smoke", "quick", "full"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_keys_are_notebook_parameters(preset):
    values = report.load_preset(preset)
    for section, params in values.items():
        if section == "common":
            continue
        assert section in NOTEBOOKS, f"{preset}.yaml names unknown notebook {section!r}"
        defaults = default_parameters(section)
        unknown = sorted(set(params or {}) - set(defaults))
        assert not unknown, f"{preset}.yaml: {section} has no parameter(s) {unknown}"
        for key, value in (params or {}).items():
            assert type(value) is type(defaults[key]) or (isinstance(value, int) and isinstance(defaults[key], float)), (
                f"{preset}.yaml: {section}.{key}={value!r} does not match the default's type {type(defaults[key]).__name__}")


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_smoke_preset_equals_notebook_defaults(stem):
    defaults = default_parameters(stem)
    for key in ("out_dir", "data_dir", "runs_dir"):
        assert defaults.get(key) == "", f"{stem}: parameter {key} must exist and default to '' (resolved by mixkit.paths)"
    smoke = report.load_preset("smoke")
    for key, value in {**(smoke.get("common") or {}), **(smoke.get(stem) or {})}.items():
        if key in defaults:
            assert defaults[key] == value, f"{stem}: smoke preset {key}={value!r} but the notebook default is {defaults[key]!r}"


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_papermill_parses_every_parameter(stem):
    # papermill drops a parameter whose help comment it cannot parse (an "=" in the comment, say),
    # and then only warns when a preset passes it: the notebook would silently run its default.
    import papermill as pm

    seen = set(pm.inspect_notebook(str(report.NOTEBOOK_DIR / f"{stem}.ipynb")))
    assert seen == set(default_parameters(stem)), sorted(set(default_parameters(stem)) - seen)
