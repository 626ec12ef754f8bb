"""The demo's HTML report, opened in a real headless browser (Debian's chromium): it renders,
leads with a summary, and shows numbers as a person reads them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import pytest

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]

pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless browser found: install Debian's chromium "
                                                        "(apt-get install chromium) to check the report in one")


@pytest.fixture(scope="module")
def report(demo_run) -> Path:
    assert demo_run.code == 0, demo_run.err
    return demo_run.root / "rep" / "index.html"


def _browser(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_report_renders_with_its_summary_first(report, tmp_path):
    dom = _browser(tmp_path, "--dump-dom", report.resolve().as_uri()).stdout
    assert "<h1>fastslow demo report</h1>" in dom
    headings = re.findall(r"<h2>(.*?)</h2>", dom)
    assert headings[0] == "Summary" and "Environment" in headings
    summary = dom[dom.index("Summary"): dom.index("</section>")]
    for figure in ("Smallest exact network", "Scaling of fc", "Continuous XOR", "Peak matmul float32",
                   "Latency predictor"):
        assert figure in summary
    assert "test accuracy 100.0%" in summary


def test_numbers_are_in_human_units(report, tmp_path):
    dom = _browser(tmp_path, "--dump-dom", report.resolve().as_uri()).stdout
    cells = re.findall(r"<td>(.*?)</td>", dom)
    fractions = [c for c in cells if re.fullmatch(r"-?[\d,]*\.\d+(e[-+]\d+)?", c)]
    significant = [len(c.split("e")[0].replace("-", "").replace(",", "").replace(".", "").lstrip("0"))
                   for c in fractions]
    assert fractions and not [c for c in fractions if "e" in c]  # no 1.342e-05
    assert max(significant) <= 3  # ratios and figures to 2-3 significant figures
    assert any(re.fullmatch(r"[\d.]+ (ns|us|ms|s)", c) for c in cells)  # times with units
    assert any(re.fullmatch(r"\d+\.\d%", c) for c in cells)  # accuracies as percentages
    assert any(re.fullmatch(r"[\d.]+ [KMGT]?FLOP/s", c) for c in cells)
    for name in ("rule_torch", "fc", "min"):  # one table per predictor
        assert f"<h3>{name}</h3>" in dom


def test_the_page_and_its_plots_draw(report, tmp_path):
    shot = tmp_path / "shot.png"
    r = _browser(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", report.resolve().as_uri())
    assert shot.exists(), r.stderr
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2400, 1200) and pixels.std() > 0.05  # not a blank page
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 4 and "src=\"http" not in page
