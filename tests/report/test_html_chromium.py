"""The HTML report rendered by a real headless Chromium: the DOM holds the plots as decodable
PNG data and the screenshot is not blank."""

import base64
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from affectbench.report import build_report
from tests.report._matrix import add_run, build_matrix, correct_pattern_preds

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    store, _ = build_matrix(root)
    for mods, k in {"T": 30, "A": 24, "TA": 36, "TAV": 40}.items():  # an ablation for the ablation section
        add_run(store, "mosi", correct_pattern_preds(48, k), name="Qwen/Qwen2.5-Omni-3B", prompt="abl", modalities=mods)
    out = build_report(store, root / "rep", formats=("html",), n_boot=200)
    return out["html"]


def test_dom_has_decodable_plots(report, tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    res = _chromium(["--dump-dom", report.as_uri()], tmp_path / "profile")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert "<h1>affectbench report</h1>" in dom
    for section in ("leaderboard", "models", "gains", "ablation", "drivers", "errors"):
        assert f'id="{section}"' in dom
    imgs = re.findall(r'<img class="plot" alt="([^"]*)" src="data:image/png;base64,([^"]+)"', dom)
    alts = [a for a, _ in imgs]
    assert "leaderboard heatmap" in alts and "modality ablation" in alts and "gains over baseline" in alts
    assert any(a.startswith("confusion matrices") for a in alts) and any(a.startswith("scatter") for a in alts)
    for alt, data in imgs:
        im = PIL.open(io.BytesIO(base64.b64decode(data)))
        im.load()
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100, alt
    assert '<td class="best">' in dom


def test_screenshot_is_not_blank(report, tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    shot = tmp_path / "shot.png"
    res = _chromium(["--screenshot=" + str(shot), "--window-size=1200,2000", report.as_uri()], tmp_path / "profile")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    px = np.asarray(PIL.open(shot).convert("L"), dtype=float)
    assert px.shape == (2000, 1200)
    assert px.std() > 20  # a blank or single-colour page has ~0 variance
    # the heatmap (viridis) puts colour on the page, not just black text on white
    rgb = np.asarray(PIL.open(shot).convert("RGB"), dtype=float)
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    assert (saturation > 80).mean() > 0.02
