"""Batch execution of the method notebooks into shareable HTML reports.

Each notebook in ``notebooks/`` has a tagged ``parameters`` cell; a preset file in
``notebooks/presets/<preset>.yaml`` gives the values for every notebook (a ``common`` section plus
one section per notebook stem). papermill injects them, the executed notebook is exported to a
self-contained HTML file that reads the same with no network (figures are embedded as data URIs, TeX
math is pre-rendered to inline SVG, no script comes from a CDN), and an ``index.html`` shows the
notebooks' leaderboards first and links every report beside the headline numbers of its
``metrics.json``.
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from mixkit import plots
from mixkit.paths import data_dir as default_data_dir, notebook_dirs, write_json

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
PRESET_DIR = NOTEBOOK_DIR / "presets"


@dataclass
class NotebookOutcome:
    name: str
    ok: bool
    seconds: float
    html: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def available_presets(preset_dir: Path = PRESET_DIR) -> list[str]:
    return sorted(p.stem for p in preset_dir.glob("*.yaml"))


def notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(p for p in notebook_dir.glob("[0-9]*.ipynb"))


_PRESET_NAME = re.compile(r"[A-Za-z0-9_-]+")


def load_preset(preset: str, preset_dir: Path = PRESET_DIR) -> dict[str, dict[str, Any]]:
    """The values of `<preset_dir>/<preset>.yaml`; `preset` is a name, never a path."""
    known = available_presets(preset_dir)
    choices = f"available: {known}" if known else f"no preset files found in {preset_dir}"
    if not isinstance(preset, str) or not _PRESET_NAME.fullmatch(preset):
        raise ValueError(f"preset {preset!r} is not a preset name (letters, digits, '-' and '_' only, "
                         f"naming a file in {preset_dir}); {choices}")
    path = preset_dir / f"{preset}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown preset {preset!r}; {choices}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"preset file {path} must be a mapping of notebook name -> parameters")
    return raw


def notebook_defaults(stem: str, notebook_dir: Path = NOTEBOOK_DIR) -> dict[str, Any]:
    """The literal defaults of a notebook's cell tagged `parameters` (`name: type = value  # help`
    lines), read without running it: what the notebook does before a preset overrides it."""
    import ast

    import nbformat

    path = notebook_dir / f"{stem}.ipynb"
    if not path.is_file():
        raise ValueError(f"no notebook {path}; notebooks: {[p.stem for p in notebooks(notebook_dir)]}")
    cells = [c for c in nbformat.read(str(path), as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    values = {}
    for node in ast.parse(cells[0].source).body:
        if not isinstance(node, ast.AnnAssign):
            raise ValueError(f"{path}: the parameters cell must hold only `name: type = value` lines "
                             f"(line {node.lineno} does not)")
        values[node.target.id] = ast.literal_eval(node.value)
    return values


def notebook_parameters(preset: dict, stem: str, out_dir: Path, data_dir: Path) -> dict[str, Any]:
    params = dict(preset.get("common") or {})
    params.update(preset.get(stem) or {})
    # Paths are resolved here so a notebook never depends on the directory papermill runs it in.
    params["out_dir"] = str(out_dir.resolve())
    params["data_dir"] = str(Path(params.get("data_dir", data_dir)).resolve())
    params["runs_dir"] = str(Path(params.get("runs_dir", Path(params["data_dir"]) / "runs")).resolve())
    return params


def _describe_failure(exc: BaseException) -> str:
    # papermill's error carries the failing cell's index and the exception name and value.
    cell = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    where = f"cell [{cell}]" if cell is not None else "a cell"
    return f"{where} raised {ename}: {evalue}"


# nbconvert's lab template without the blocks that load scripts from a CDN (require.js, MathJax,
# mermaid, the widget manager): a report must read the same with no network.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


def export_html(executed: Path, target: Path) -> Path:
    """The executed notebook as one self-contained HTML file: figures as data URIs, math
    pre-rendered to inline SVG (:func:`prerender_math`), no script or style from the network."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    exporter = HTMLExporter(embed_images=True, template_name="lab",
                            extra_loaders=[jinja2.DictLoader({"mixkit_offline.html.j2": _OFFLINE_TEMPLATE})],
                            template_file="mixkit_offline.html.j2")
    body, _ = exporter.from_notebook_node(nb)
    body, _, _ = prerender_math(body)
    target.write_text(body, encoding="utf-8")
    return target


# TeX delimiters as nbconvert leaves them in rendered markdown: $$...$$ and \[...\] (display),
# $...$ and \(...\) (inline). A lone $ (a price, "$5") is not math: inline math may not start or
# end with a space, nor be followed by a digit.
_MATH = re.compile(r"(?<!\\)\$\$(.+?)\$\$|\\\[(.+?)\\\]|(?<![\\$])\$(?![\s$])([^$]+?)(?<![\s\\])\$(?!\d)"
                   r"|\\\((.+?)\\\)", re.S)
_MATH_CONTAINERS = ("jp-RenderedMarkdown", "jp-RenderedLatex", "jp-MarkdownOutput")
_NOT_MATH = {"code", "pre", "script", "style", "svg", "textarea"}


def _math_pieces(text: str) -> tuple[list, int, int]:
    """`text` split into plain strings and rendered SVG markup: (pieces, rendered, failed)."""
    from bs4 import BeautifulSoup

    pieces, pos, ok, failed = [], 0, 0, 0
    for m in _MATH.finditer(text):
        tex = next(g for g in m.groups() if g is not None)
        svg = plots.math_svg(tex, display=m.group(1) is not None or m.group(2) is not None)
        pieces.append(text[pos:m.start()])
        if svg is None:
            failed += 1
            pieces.append(BeautifulSoup(f'<code class="mixkit-math-raw">{html.escape(m.group(0))}</code>',
                                        "html.parser"))
        else:
            ok += 1
            pieces.append(BeautifulSoup(svg, "html.parser"))
        pos = m.end()
    pieces.append(text[pos:])
    return pieces, ok, failed


def prerender_math(page: str) -> tuple[str, int, int]:
    """Replace the TeX math of rendered markdown and LaTeX outputs in an nbconvert HTML page by inline
    SVG (:func:`mixkit.plots.math_svg`), so it reads the same with no MathJax and no network.
    Code, preformatted text and scripts are left alone; math mathtext cannot parse stays as TeX in a
    ``code.mixkit-math-raw``. Returns (page, formulas rendered, formulas left as TeX)."""
    from bs4 import BeautifulSoup, NavigableString

    soup = BeautifulSoup(page, "html.parser")
    ok = failed = 0
    containers = soup.find_all(class_=lambda c: c is not None and any(k in c.split() for k in _MATH_CONTAINERS))
    for node in [t for box in containers for t in box.find_all(string=True)]:
        if not isinstance(node, NavigableString) or any(p.name in _NOT_MATH for p in node.parents):
            continue
        if "$" not in node and "\\(" not in node and "\\[" not in node:
            continue
        pieces, n_ok, n_failed = _math_pieces(str(node))
        ok, failed = ok + n_ok, failed + n_failed
        for piece in pieces:
            node.insert_before(piece if not isinstance(piece, str) else NavigableString(piece))
        node.extract()
    return str(soup), ok, failed


def run_notebook(
    path: Path,
    params: dict[str, Any],
    out_dir: Path,
    kernel_name: str = "python3",
    progress: bool = True,
) -> NotebookOutcome:
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / path.name
    (out_dir / "parameters.json").write_text(json.dumps(params, indent=2, sort_keys=True))
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(path),
            str(executed),
            parameters=params,
            kernel_name=kernel_name,
            cwd=str(REPO),
            progress_bar=progress,
        )
    except Exception as exc:  # the report goes on with the other notebooks
        outcome = NotebookOutcome(path.stem, False, time.perf_counter() - start, error=_describe_failure(exc))
        if executed.exists():
            outcome.html = export_html(executed, out_dir / f"{path.stem}.html")
        return outcome
    seconds = time.perf_counter() - start
    html_path = export_html(executed, out_dir / f"{path.stem}.html")
    metrics_file = out_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    return NotebookOutcome(path.stem, True, seconds, html_path, metrics)


def save_metrics(out_dir: Path | str, metrics: dict[str, Any]) -> Path:
    """Write a notebook's key numbers to out_dir/metrics.json (what tests and the index read)."""
    return write_json(Path(out_dir) / "metrics.json", metrics, indent=2, nan=float("nan"), sort_keys=True)


def notebook_session(name: str, out_dir: str = "", data_dir: str = "", runs_dir: str = "") -> tuple[Path, Path, Path]:
    """Set up a method notebook's kernel and resolve its (out_dir, data_dir, runs_dir) parameters.

    The kernel-wide setting lives here, called once from each notebook's first cell: the kit's
    figure theme (matplotlib state, so it is never set on import).
    """
    plots.use_theme()
    return notebook_dirs(name, out_dir, data_dir, runs_dir)


def _headline(metrics: dict[str, Any], limit: int = 8) -> str:
    items = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float, str, bool))][:limit]
    cells = []
    for key, value in items:
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        cells.append(f"<code>{html.escape(key)}</code>&nbsp;=&nbsp;{html.escape(shown)}")
    return "<br>".join(cells) or "<em>no metrics</em>"


def _cell(value) -> str:
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    return html.escape("" if value is None else str(value))


# metrics.json is written with sorted keys, so a leaderboard row's own key order is lost: the columns a
# reader compares come first, in this order, and any others after them.
_LEADERBOARD_COLUMNS = (
    "method", "loss", "loss_sd", "n_seeds", "gain_vs_uniform", "ci_low_vs_uniform", "ci_high_vs_uniform",
    "verdict_vs_uniform", "gain_vs_natural", "ci_low_vs_natural", "ci_high_vs_natural", "verdict_vs_natural",
    "steps_equivalent_vs_uniform", "proxy_runs", "proxy_flops")


def leaderboards(outcomes: Sequence[NotebookOutcome]) -> str:
    """The "leaderboard" of every notebook whose metrics.json has one (a list of flat dicts), as
    tables in notebook order; the columns of `_LEADERBOARD_COLUMNS` first, then the rest."""
    parts = []
    for o in sorted(outcomes, key=lambda o: o.name):
        rows = o.metrics.get("leaderboard") if isinstance(o.metrics, dict) else None
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            continue
        named = list(dict.fromkeys(k for r in rows for k in r))
        cols = [c for c in _LEADERBOARD_COLUMNS if c in named] + [c for c in named if c not in _LEADERBOARD_COLUMNS]
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
        parts.append(f'<h2>Leaderboard &mdash; {html.escape(o.name)}</h2>\n<table class="leaderboard"><thead>'
                     f"<tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "\n".join(parts)


def write_index(outcomes: Sequence[NotebookOutcome], out_root: Path, preset: str) -> Path:
    """index.html: the leaderboards first (see :func:`leaderboards`), then one row per notebook
    with its status, time and headline numbers. No script: it reads the same offline."""
    rows = []
    for o in outcomes:
        link = (
            f'<a href="{html.escape(o.html.relative_to(out_root).as_posix())}">{html.escape(o.name)}</a>'
            if o.html
            else html.escape(o.name)
        )
        status = "ok" if o.ok else f"FAILED: {html.escape(o.error or '')}"
        rows.append(
            f"<tr class=\"{'ok' if o.ok else 'failed'}\"><td>{link}</td><td>{status}</td>"
            f"<td>{o.seconds:.0f} s</td><td>{_headline(o.metrics)}</td></tr>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mixkit reports ({html.escape(preset)})</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.4em .8em;vertical-align:top}} tr.failed{{background:#fdd}}</style>
</head><body>
<h1>mixkit reports &mdash; preset <code>{html.escape(preset)}</code></h1>
<p>Generated {time.strftime('%Y-%m-%d %H:%M:%S')}. Each report is a self-contained HTML file.</p>
{leaderboards(outcomes)}
<h2>Notebooks</h2>
<table><thead><tr><th>notebook</th><th>status</th><th>time</th><th>headline metrics</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    index = out_root / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def run_report(
    preset: str = "quick",
    only: Sequence[str] | None = None,
    out: Path | str | None = None,
    data_dir: Path | str | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
) -> list[NotebookOutcome]:
    """Execute every notebook (or those named in `only`) at `preset`; returns one outcome each."""

    preset_values = load_preset(preset)
    out_root = Path(out) if out is not None else REPO / "reports" / preset
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    chosen = notebooks()
    if only:
        wanted = set(only)
        known = {p.stem for p in chosen} | {p.stem.split("_", 1)[-1] for p in chosen}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f"unknown notebook(s) {unknown}; available: {[p.stem for p in chosen]}")
        chosen = [p for p in chosen if p.stem in wanted or p.stem.split("_", 1)[-1] in wanted]
    if not chosen:
        raise ValueError(f"no notebooks found in {NOTEBOOK_DIR}")
    out_root.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for path in chosen:
        nb_out = out_root / path.stem
        params = notebook_parameters(preset_values, path.stem, nb_out, data_dir)
        outcomes.append(run_notebook(path, params, nb_out, kernel_name=kernel_name, progress=progress))
    write_index(outcomes, out_root, preset)
    return outcomes
