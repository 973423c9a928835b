"""The papermill/HTML report machinery on a two-cell notebook, including a failing one."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pytest

from mixkit import report


def _notebook(path, body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('out_dir: str = "."  # where metrics go\nvalue: float = 1.0  # a number')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_run_notebook_writes_html_and_metrics(tmp_path):
    nb = _notebook(tmp_path / "01_ok.ipynb", (
        "import json, pathlib\n"
        "pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)\n"
        "json.dump({'value': value * 2}, open(pathlib.Path(out_dir) / 'metrics.json', 'w'))\n"
        "print('done')"
    ))
    out = tmp_path / "out"
    outcome = report.run_notebook(nb, {"out_dir": str(out), "value": 21.0}, out, progress=False)
    assert outcome.ok, outcome.error
    assert outcome.metrics == {"value": 42.0}
    html = outcome.html.read_text()
    assert "<html" in html.lower() and "done" in html
    index = report.write_index([outcome], tmp_path, "smoke")
    text = index.read_text()
    assert 'href="out/01_ok.html"' in text and "42" in text


def test_notebook_defaults_read_the_parameters_cell_and_name_a_bad_one(tmp_path):
    _notebook(tmp_path / "01_ok.ipynb", "print(value)")
    assert report.notebook_defaults("01_ok", tmp_path) == {"out_dir": ".", "value": 1.0}
    bad = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("value: float = 1.0\nprint(value)")
    cell.metadata["tags"] = ["parameters"]
    bad.cells = [cell]
    nbformat.write(bad, str(tmp_path / "02_bad.ipynb"))
    with pytest.raises(ValueError, match=r"02_bad.ipynb.*line 2"):
        report.notebook_defaults("02_bad", tmp_path)
    with pytest.raises(ValueError, match=r"no notebook .*03_none.ipynb"):
        report.notebook_defaults("03_none", tmp_path)


def test_failing_notebook_names_its_cell(tmp_path):
    nb = _notebook(tmp_path / "02_bad.ipynb", "raise RuntimeError('boom in the analysis')")
    out = tmp_path / "out"
    outcome = report.run_notebook(nb, {"out_dir": str(out)}, out, progress=False)
    assert not outcome.ok
    assert "RuntimeError" in outcome.error and "boom in the analysis" in outcome.error
    assert "cell" in outcome.error


def test_unknown_preset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        report.load_preset("nope", preset_dir=tmp_path)


@pytest.mark.parametrize("name", ["../x", "../presets/quick", "/etc/passwd", "quick.yaml", "a b", "", ".."])
def test_preset_is_a_name_not_a_path(tmp_path, name):
    presets = tmp_path / "notebooks" / "presets"
    presets.mkdir(parents=True)
    (presets / "quick.yaml").write_text("common: {}\n")
    (tmp_path / "notebooks" / "x.yaml").write_text("common: {steps: 1}\n")  # what ../x would reach
    with pytest.raises(ValueError, match=rf"preset {re.escape(repr(name))} is not a preset name .*"
                                         r"available: \['quick'\]"):
        report.load_preset(name, preset_dir=presets)
    assert report.load_preset("quick", preset_dir=presets) == {"common": {}}


def test_cli_refuses_a_path_as_preset(tmp_path):
    out = tmp_path / "reports"
    result = subprocess.run([sys.executable, "-m", "mixkit.cli", "report", "--preset", "../x", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixkit: preset '../x' is not a preset name"), result.stderr
    assert f"available: {report.available_presets()}" in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == "" and not out.exists()


def test_parameters_resolve_paths(tmp_path):
    params = report.notebook_parameters({"common": {"steps": 5}, "01_x": {"steps": 7}}, "01_x",
                                        tmp_path / "o", tmp_path / "d")
    assert params["steps"] == 7
    assert params["runs_dir"] == str((tmp_path / "d" / "runs").resolve())
    json.dumps(params)


def test_prerender_math_leaves_prices_code_and_unknown_tex_alone():
    page = ('<div class="jp-RenderedMarkdown"><p>loss $L_i(r) = c_i$ costs $5 and $6 today;</p>'
            '<p>display $$\\sum_j r_j = 1$$ and \\(x^2\\)</p><p><code>$not math$</code></p>'
            '<p>$\\begin{aligned} x \\end{aligned}$</p></div><p>outside $y$</p>')
    out, ok, failed = report.prerender_math(page)
    assert (ok, failed) == (3, 1)
    assert out.count('class="mixkit-math"') == 2 and out.count("mixkit-math-display") == 1
    assert "costs $5 and $6 today" in out and "<code>$not math$</code>" in out and "outside $y$" in out
    assert '<code class="mixkit-math-raw">$\\begin{aligned} x \\end{aligned}$</code>' in out
    assert 'aria-label="L_i(r) = c_i"' in out and "<path" in out


def test_exported_report_has_no_cdn_script(tmp_path):
    nb = _notebook(tmp_path / "03_math.ipynb", "print(1)")
    node = nbformat.read(str(nb), as_version=4)
    node.cells.insert(0, nbformat.v4.new_markdown_cell("The law $L(r) = c + k e^{t r}$."))
    nbformat.write(node, str(nb))
    html = report.export_html(nb, tmp_path / "03_math.html").read_text()
    assert not re.search(r"<script[^>]+src=", html) and "cdnjs" not in html and "mathjax" not in html.lower()
    assert 'class="mixkit-math"' in html
