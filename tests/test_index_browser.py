"""The report index renders in a real headless Chromium and links to every report.

Chromium comes from Debian's packages (`apt-get install chromium`); the test skips without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mixkit import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_index_renders_and_links_every_report(tmp_path):
    outcomes = []
    for i, name in enumerate(["01_mixing_laws", "02_regression"]):
        folder = tmp_path / name
        folder.mkdir()
        page = folder / f"{name}.html"
        page.write_text(f"<html><body><h1>{name}</h1></body></html>")
        outcomes.append(report.NotebookOutcome(name, ok=i == 0, seconds=1.5, html=page,
                                               metrics={"heldout_mae": 0.0123}, error=None if i == 0 else "cell [3] raised X"))
    index = report.write_index(outcomes, tmp_path, "smoke")
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          index.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "<table" in dom and "mixkit reports" in dom
    hrefs = re.findall(r'href="([^"]+)"', dom)
    assert sorted(hrefs) == ["01_mixing_laws/01_mixing_laws.html", "02_regression/02_regression.html"]
    for href in hrefs:
        assert (tmp_path / href).is_file()
    assert "FAILED" in dom and "0.0123" in dom
    shot = tmp_path / "index.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}",
                    "--window-size=1000,600", index.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 1000
