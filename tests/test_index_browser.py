"""The reports render in a real headless Chromium with the network off: the index links to every
report and shows the leaderboard first; a notebook report shows its math (pre-rendered SVG) and its
figures and asks the network for nothing.

Chromium comes from Debian's packages (`apt-get install chromium`); the tests skip without it.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from mixkit import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# No name resolves and every connection goes to a closed port: the browser has no network.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]
REPO = Path(__file__).resolve().parents[1]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")


def _load_offline(page: Path, tmp: Path, name: str) -> tuple[str, list[str]]:
    """(the DOM after loading `page` with no network, the URLs the page itself requested)."""
    netlog = tmp / f"{name}.netlog.json"
    dom = subprocess.run([CHROMIUM, *FLAGS, *OFFLINE, f"--user-data-dir={tmp / ('profile-' + name)}",
                          f"--log-net-log={netlog}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    log = json.loads(netlog.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    # The browser's own background requests have no origin; the page's have its (opaque) origin.
    starts = [e.get("params", {}) for e in log["events"] if names.get(e["type"]) == "URL_REQUEST_START_JOB"]
    urls = [p["url"] for p in starts if "url" in p and p.get("initiator") != "not an origin"]
    return dom, [u for u in urls if re.match(r"(https?|wss?)://", u)]


@needs_chromium
def test_index_renders_leaderboard_first_and_links_every_report(tmp_path):
    outcomes = []
    for i, name in enumerate(["01_mixing_laws", "02_regression", "00_bakeoff"]):
        folder = tmp_path / name
        folder.mkdir()
        page = folder / f"{name}.html"
        page.write_text(f"<html><body><h1>{name}</h1></body></html>")
        metrics = {"heldout_mae": 0.0123}
        if name == "00_bakeoff":
            metrics["leaderboard"] = [
                {"method": "regmix", "loss": 3.2101, "gain_vs_uniform": 0.051, "ci_low": 0.02, "ci_high": 0.08, "n_seeds": 3},
                {"method": "uniform", "loss": 3.2612, "gain_vs_uniform": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n_seeds": 3},
            ]
        outcomes.append(report.NotebookOutcome(name, ok=i != 1, seconds=1.5, html=page, metrics=metrics,
                                               error=None if i != 1 else "cell [3] raised X"))
    index = report.write_index(outcomes, tmp_path, "smoke")
    dom, requested = _load_offline(index, tmp_path, "index")
    assert requested == []
    assert "<table" in dom and "mixkit reports" in dom
    board = dom.index('class="leaderboard"')
    assert board < dom.index("<h2>Notebooks</h2>")  # the leaderboard comes first
    assert dom.index("regmix") > board and "3.21" in dom and "gain_vs_uniform" in dom and "n_seeds" in dom
    hrefs = re.findall(r'href="([^"]+)"', dom)
    assert sorted(hrefs) == ["00_bakeoff/00_bakeoff.html", "01_mixing_laws/01_mixing_laws.html",
                             "02_regression/02_regression.html"]
    for href in hrefs:
        assert (tmp_path / href).is_file()
    assert "FAILED" in dom and "0.0123" in dom
    shot = tmp_path / "index.png"
    subprocess.run([CHROMIUM, *FLAGS, *OFFLINE, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}",
                    "--window-size=1000,600", index.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 1000


def _notebook_with_outputs(path: Path) -> Path:
    """A real method notebook's markdown (its math) plus outputs of every kind a report shows."""
    nb = nbformat.read(str(REPO / "notebooks" / "01_mixing_laws.ipynb"), as_version=4)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    fig.savefig(path.with_suffix(".png"))
    plt.close(fig)
    data = base64.b64encode(path.with_suffix(".png").read_bytes()).decode()
    cell = nbformat.v4.new_code_cell("plot()", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": data, "text/plain": "<Figure>"}),
                    nbformat.v4.new_output("display_data", data={"text/markdown": "the optimum $w^* = \\arg\\min_w L(w)$"})]
    nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


@needs_chromium
def test_notebook_report_renders_math_and_figures_offline(tmp_path):
    page = report.export_html(_notebook_with_outputs(tmp_path / "nb.ipynb"), tmp_path / "nb.html")
    text = page.read_text()
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text)  # nothing fetched by markup
    dom, requested = _load_offline(page, tmp_path, "report")
    assert requested == [], requested
    n_math = dom.count('class="mixkit-math')
    assert n_math >= 20 and "<path" in dom  # every formula of the notebook, as SVG glyph outlines
    prose = re.sub(r"<svg.*?</svg>", "", dom, flags=re.S)  # what is left once the math is taken out
    assert "mixkit-math-raw" not in dom and "$$" not in prose and "\\sum_" not in prose and "t_{ij}" not in prose
    assert 'aria-label="w^* = \\arg\\min_w L(w)"' in dom  # math in a markdown output too
    assert "data:image/png;base64," in dom


@needs_chromium
def test_the_network_check_can_fail(tmp_path):
    page = tmp_path / "cdn.html"
    page.write_text('<html><body><script src="https://cdn.example.com/mathjax.js"></script><p>$x$</p></body></html>')
    _, requested = _load_offline(page, tmp_path, "cdn")
    assert requested == ["https://cdn.example.com/mathjax.js"]
