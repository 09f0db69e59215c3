"""``gradspec report``: one self-contained HTML file, checked in a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradspec import ComputeConfig, PromptConfig, compute
from gradspec.analysis import CompareConfig, compare
from gradspec.cli.main import app

from conftest import write_json

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
# Appended to a copy of the report (never to the report itself): what the browser saw.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const loaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const scripts = document.scripts.length;
  const shown = document.body.innerText.includes("<script>document.title");
  document.title = `PROBE imgs=${imgs.length} loaded=${loaded} scripts=${scripts} shown=${shown} ` + document.title;
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    runs = []
    for name, words in (("short", 2), ("long", 9)):
        recs = [{"instruction": f"Q{i}: {HOSTILE}", "output": " ".join(["ok"] * (words + i))} for i in range(5)]
        recs.append({"instruction": "no answer"})  # an error row: the report warns about it
        data = write_json(tmp / f"{name}.json", recs)
        cfg = ComputeConfig.of(
            data=data,
            out=tmp / name,
            model=str(tiny_llama_dir),
            prompt=PromptConfig("plain", max_length=200),
            progress=False,
        )
        compute(cfg)
        runs.append(tmp / name)
    compare(CompareConfig(runs, tmp / "cmp", ["short", "long"], n_boot=100))
    out = tmp / "report.html"
    result = CliRunner().invoke(app, ["report", str(runs[0]), str(tmp / "cmp"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_report_is_self_contained_and_escapes_data(report: Path) -> None:
    text = report.read_text()
    assert "<script" not in text.lower()  # not one script: data text is escaped
    assert "&lt;script&gt;document.title=" in text
    assert not re.search(r'src="(?!data:image/png;base64,)', text)  # every image is embedded
    assert text.count("<img") >= 5
    assert "1 sample(s) error" in text and "length imbalance" in text


def test_report_is_compact_with_contents_and_no_undefined_words(report: Path) -> None:
    text = report.read_text()
    assert '<nav class="toc">' in text and 'href="#s0"' in text and 'href="#s1"' in text
    assert "<td>None</td>" not in text and "<td>nan</td>" not in text
    body = text.split('<h2 id="s1">', 1)[1]  # the comparison: its main figures shown, the rest one click away
    shown = body.split("<details>", 1)[0]
    assert shown.count("<img") == 4 and "more figures</summary>" in body
    assert "img { width: 100%" not in text and "img { max-width: 100%" in text  # own size, never stretched


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (scripts/setup.sh installs it from Debian where it can)")
def test_report_in_a_headless_browser(report: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom",
         probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title, dom[:500]
    got = dict(re.findall(r"(\w+)=(\w+)", title.group(1)))
    assert int(got["imgs"]) >= 5 and got["loaded"] == got["imgs"]  # every figure decoded
    assert got["scripts"] == "1"  # only the probe ran
    assert got["shown"] == "true" and "pwned" not in title.group(1)  # the hostile text is shown as text
