"""report: one self-contained HTML page, checked in headless Chromium as a person would see it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from datatwin.cli import main  # noqa: E402
from datatwin.tabular.twin import TableTwin  # noqa: E402


def make_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    size = np.select([color == "red", color == "green"], [10, 30], 50) + rng.integers(0, 5, n)
    weight = np.round(size * 2.0 + rng.normal(0, 1.0, n), 1)
    shape = rng.choice(["round", "square", ""], n, p=[0.6, 0.3, 0.1])
    return pd.DataFrame({"color": color, "size": size, "weight": weight, "shape": shape})


CHECK = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  }
  var out = document.createElement('pre');
  out.id = '__check';
  out.textContent = JSON.stringify({total: imgs.length, ok: ok, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report_html")
    make_table(1500, 1).to_csv(d / "train.csv", index=False)
    make_table(800, 2).to_csv(d / "holdout.csv", index=False)
    TableTwin.fit_select(d / "train.csv", seed=0).save(d / "model.twin")
    out = d / "report.html"
    argv = ["-q", "report", str(d / "model.twin"), "--real", str(d / "holdout.csv")]
    code = main([*argv, "--train", str(d / "train.csv"), "-o", str(out), "--seed", "3"])
    assert code == 0
    return out


def test_report_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    srcs = re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", text)
    assert len(srcs) >= 1 + 1 + 4 + 1  # leaderboard, structure, a plot per column, MI maps
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in text and "<link" not in text
    for heading in ("Leaderboard", "Learned structure", "Columns", "mutual information", "Rows"):
        assert heading in text
    assert report.stat().st_size < 5_000_000


def test_report_default_output_and_json(report, capsys):
    d = report.parent
    code = main(["-q", "report", str(d / "model.twin"), "--real", str(d / "holdout.csv"), "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"].endswith("model.report.html")
    assert (d / "model.report.html").exists()
    assert doc["privacy"]["exact_copy_share"] is None


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_chromium(report, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    page = tmp_path / "checked.html"
    page.write_text(
        report.read_text(encoding="utf-8").replace("<head>", "<head>" + CHECK, 1),
        encoding="utf-8",
    )
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    dom = subprocess.run(
        [*flags, f"--user-data-dir={tmp_path / 'p1'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r'<pre id="__check">(.*?)</pre>', dom.stdout)
    assert m, f"no check output from chromium: {dom.stderr[-500:]}"
    check = json.loads(m.group(1).replace("&quot;", '"'))
    assert check["errors"] == []
    n_img = report.read_text(encoding="utf-8").count("<img ")
    assert check["total"] == n_img >= 7 and check["ok"] == check["total"]
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            *flags,
            f"--user-data-dir={tmp_path / 'p2'}",
            f"--screenshot={shot}",
            "--window-size=1280,4000",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
