"""Run a method notebook the way a user does and read back its metrics.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat

from mixkit.report import notebook_defaults

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def notebook_path(stem: str) -> Path:
    path = NOTEBOOKS / f"{stem}.ipynb"
    assert path.is_file(), f"missing notebook {path}"
    return path


def default_parameters(stem: str) -> dict:
    """The literal defaults of the tagged `parameters` cell (`name: type = value  # help`)."""
    return notebook_defaults(stem, NOTEBOOKS)


def run_default(stem: str, tmp_path: Path, parameters: dict | None = None) -> dict:
    """Execute the notebook with papermill (no injected parameters unless given); return metrics."""
    import papermill as pm

    executed = tmp_path / f"{stem}.ipynb"
    pm.execute_notebook(str(notebook_path(stem)), str(executed), parameters=parameters or {},
                        cwd=str(REPO), kernel_name="python3", progress_bar=False)
    out_dir = Path((parameters or {}).get("out_dir") or REPO / "reports" / "interactive" / stem)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert list(out_dir.glob("*.png")), f"{stem}: no figures written to {out_dir}"
    nb = nbformat.read(str(executed), as_version=4)
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in nb.cells for o in c.get("outputs", [])), f"{stem}: no inline figure"
    return metrics


def finite_below(metrics: dict, key: str, bound: float) -> float:
    value = metrics[key]
    assert isinstance(value, (int, float)) and math.isfinite(value), f"{key}={value!r} is not finite"
    assert value < bound, f"{key}={value} is not below {bound}"
    return value
