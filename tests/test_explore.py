"""``gradspec explore``: the page's data, and the page driven in a real headless Chromium (sort,
filter, open a sample, export), with markup in the data shown as text and never run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradspec import ComputeConfig, PromptConfig, compute
from gradspec.cli.main import app
from gradspec.report.explore import embed

from conftest import write_json
from helpers import LOSS_RTOL

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> & </textarea>'
CHROME = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("explore")
    records = [{"instruction": f"Question {i} about {['cats', 'dogs'][i % 2]}?", "output": "word " * (2 + 3 * i)}
               for i in range(7)]  # fmt: skip
    records[3]["instruction"] = HOSTILE
    records[5]["output"] = None  # an error row
    data = write_json(tmp / "d.json", records)
    prompt = PromptConfig("plain", max_length=128)
    compute(ComputeConfig.of(data=data, out=tmp / "run", model=str(tiny_llama_dir), prompt=prompt,
                             device="cpu", progress=False))  # fmt: skip
    scored = write_json(
        tmp / "scored.json",
        [{**r, "reward": float(i), "keep": i in (1, 2), "drop_reason": None if i in (1, 2) else "reward > 0.5",
          "target_similarity": 0.1 * (7 - i), "generator": f"gen-{'ab'[i % 2]}", "generator_lc_winrate": f"{i}.5",
          "scores": {"DeitaQScorer": {"score": float(i * i)}}}
         for i, r in enumerate(records)],
    )  # as select --keep-column or filter writes it, with any other score, text and nested ODA fields  # fmt: skip
    out = tmp / "explore.html"
    result = CliRunner().invoke(app, ["explore", str(tmp / "run"), "--scored", str(scored), "-o", str(out),
                                      "--first", "target_similarity"])  # fmt: skip
    assert result.exit_code == 0, result.output
    wrong = CliRunner().invoke(app, ["explore", str(tmp / "run"), "--scored", str(scored), "-o", str(tmp / "x.html"),
                                     "--first", "target_similarty"])  # fmt: skip
    assert wrong.exit_code == 2 and "--first target_similarty: no such column" in wrong.output
    return out, records


def test_the_page_holds_every_sample_and_no_markup_from_the_data(explorer: tuple[Path, list[dict]]) -> None:
    page, records = explorer
    text = page.read_text()
    assert (
        "<script>window.pwned" not in text
        and 'onerror="window' not in text
        and "</textarea>" not in text.split('<script id="data"')[1].split("</script>")[0]
    )
    start = text.index('type="application/json">') + len('type="application/json">')
    data = json.loads(text[start : text.index("</script>", start)])
    assert [s["index"] for s in data["samples"]] == list(range(7))
    assert data["samples"][3]["prompt"] == HOSTILE and data["samples"][5]["status"] == "error"
    ok = [s for s in data["samples"] if s["status"] == "ok"]
    assert all(len(s["curves"]["q"]["nuclear_norm"]) == 3 for s in ok) and "reward" in data["columns"]
    # --first's column leads and sorts; then the scores before the gradient's columns; every numeric field,
    # a number written as text, a nested score by its dotted path; short text fields to filter by.
    assert (
        data["columns"][:4] == ["target_similarity", "index", "status", "reward"]
        and data["sort"] == "target_similarity"
    )
    assert {"generator_lc_winrate", "scores.DeitaQScorer.score"} <= set(data["columns"])
    assert data["samples"][2]["generator_lc_winrate"] == 2.5 and data["samples"][3]["scores.DeitaQScorer.score"] == 9
    assert {"generator", "drop_reason", "keep"} <= set(data["text_columns"]) <= set(data["columns"])
    assert data["samples"][0]["drop_reason"] == "reward > 0.5" and data["samples"][1]["generator"] == "gen-b"
    # Record 5 could not be read, so this hand-made file (no sample_id field, unlike score's) cannot name it.
    assert [s["keep"] for s in data["samples"]] == [False, True, True, False, False, None, False]
    assert data["samples"][0]["original"] == records[0]  # every original field, for export
    assert embed({"x": "</script>&"}) == '{"x": "\\u003c/script\\u003e\\u0026"}'


def browser(tmp_path: Path):  # noqa: ANN201  (a selenium driver; selenium loads only in the browser tests)
    """Headless Chromium with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    options.binary_location = CHROME
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.mark.slow
@pytest.mark.skipif(
    CHROME is None or DRIVER is None, reason="no Chromium and chromedriver (scripts/setup.sh installs them)"
)
def test_the_page_sorts_filters_opens_and_exports_in_a_browser(
    explorer: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    page, records = explorer
    driver = browser(tmp_path)
    try:
        driver.get(page.as_uri())
        rows = lambda: driver.find_elements(By.CSS_SELECTOR, "#rows tr")  # noqa: E731
        column = lambda key: [r.find_elements(By.TAG_NAME, "td")[2 + COLUMNS.index(key)].text for r in rows()]  # noqa: E731
        COLUMNS = driver.execute_script("return DATA.columns")  # noqa: N806
        assert len(rows()) == 7
        similarity = [float(t) for t in column("target_similarity") if t]  # --first: sorted by it, highest first
        assert similarity == sorted(similarity, reverse=True) and len(similarity) == 6

        header = driver.find_element(By.CSS_SELECTOR, 'th[data-key="n_response_tokens"]')
        header.click()  # ascending, undefined last
        tokens = [float(t) for t in column("n_response_tokens") if t]
        assert tokens == sorted(tokens) and len(tokens) == 6
        driver.find_element(By.CSS_SELECTOR, 'th[data-key="n_response_tokens"]').click()  # descending
        assert [float(t) for t in column("n_response_tokens") if t] == sorted(tokens, reverse=True)

        assert "2 checked" in driver.find_element(By.ID, "count").text  # ticked from the keep column
        Select(driver.find_element(By.ID, "rangefield")).select_by_value("reward")
        driver.find_element(By.ID, "rangemin").send_keys("2")
        driver.find_element(By.ID, "rangemax").send_keys("4.5")
        assert sorted(int(i) for i in column("index")) == [2, 3, 4]
        driver.find_element(By.ID, "rangemin").clear()
        driver.find_element(By.ID, "rangemax").clear()
        driver.execute_script("document.getElementById('rangemin').dispatchEvent(new Event('input'))")
        Select(driver.find_element(By.ID, "rangefield")).select_by_value("")
        assert len(rows()) == 7
        driver.find_element(By.ID, "filter").send_keys("cats")
        assert sorted(int(i) for i in column("index")) == [0, 2, 4, 6]
        driver.find_element(By.ID, "filter").clear()
        driver.find_element(By.ID, "filter").send_keys("gen-b")  # a text column of the scored file
        assert sorted(int(i) for i in column("index")) == [1, 3]  # 5 is the unreadable record, not joined
        driver.find_element(By.ID, "filter").clear()
        driver.execute_script("document.getElementById('filter').dispatchEvent(new Event('input'))")
        Select(driver.find_element(By.ID, "status")).select_by_visible_text("error")
        assert column("index") == ["5"]
        Select(driver.find_element(By.ID, "status")).select_by_visible_text("every status")

        target = next(r for r in rows() if r.find_elements(By.TAG_NAME, "td")[2 + COLUMNS.index("index")].text == "3")
        target.click()
        assert driver.find_element(By.ID, "prompt").get_attribute("textContent") == HOSTILE
        assert driver.execute_script("return window.pwned") is None  # shown as text, never run
        assert driver.find_elements(By.CSS_SELECTOR, "#detail svg path")  # its layer-wise curves
        plots = driver.find_elements(By.CSS_SELECTOR, "#detail svg.plot")
        assert len(plots) == 2 and all(p.find_elements(By.CSS_SELECTOR, "path.axis") for p in plots)
        assert plots[0].get_attribute("data-legend") == "q,k,v,o" and "layer" in plots[0].text

        for index in ("1", "2"):  # untick the keep column's two, tick 0 and 4
            row = next(
                r for r in rows() if r.find_elements(By.TAG_NAME, "td")[2 + COLUMNS.index("index")].text == index
            )
            row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
        for index in ("0", "4"):
            row = next(
                r for r in rows() if r.find_elements(By.TAG_NAME, "td")[2 + COLUMNS.index("index")].text == index
            )
            row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
        driver.find_element(By.ID, "export").click()
        exported = [json.loads(line) for line in driver.execute_script("return window.gradspecExport").splitlines()]
        assert exported == [records[0], records[4]]  # the records as the data file holds them, every field
    finally:
        driver.quit()


STEP_RECORDS = [
    {"instruction": "Think it through.", "output": "First, read it. Then " + HOSTILE + " check!\nWait, verify. Done."},
    {"instruction": "Short.", "output": "One sentence only."},
]


@pytest.fixture(scope="module")
def step_explorer(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("explore-steps")
    data = write_json(tmp / "d.json", STEP_RECORDS)
    compute(ComputeConfig.of(data=data, out=tmp / "run", model=str(tiny_llama_dir), device="cpu", progress=False,
                             prompt=PromptConfig("plain", max_length=256), steps="sentence"))  # fmt: skip
    out = tmp / "explore.html"
    result = CliRunner().invoke(app, ["explore", str(tmp / "run"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def page_data(page: Path) -> dict:
    text = page.read_text()
    start = text.index('type="application/json">') + len('type="application/json">')
    return json.loads(text[start : text.index("</script>", start)])


def test_the_page_holds_each_steps_span_numbers_and_curves(step_explorer: Path) -> None:
    data = page_data(step_explorer)
    assert data["step_rule"] == "sentence"
    first, second = data["samples"]
    spelt = [first["response"][t["char_start"] : t["char_end"]] for t in first["steps"]]
    assert spelt == ["First, read it.", "Then " + HOSTILE + " check!", "Wait, verify.", "Done."]
    assert len(second["steps"]) == 1 and second["steps"][0]["tokens"][1] > second["steps"][0]["tokens"][0]
    for t in first["steps"]:
        assert t["nuclear_norm"] > 0 and t["loss"] > 0 and len(t["curves"]["q"]["effective_rank"]) == 3
    # Two float32 sums of the same per-token losses in another order: equal within LOSS_RTOL.
    assert sum(t["loss"] for t in first["steps"]) == pytest.approx(first["loss"], rel=LOSS_RTOL)


@pytest.mark.slow
@pytest.mark.skipif(
    CHROME is None or DRIVER is None, reason="no Chromium and chromedriver (scripts/setup.sh installs them)"
)
def test_the_page_shades_steps_and_shows_a_steps_curves(step_explorer: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser(tmp_path)
    try:
        driver.get(step_explorer.as_uri())
        driver.find_elements(By.CSS_SELECTOR, "#rows tr")[0].click()
        spans = driver.find_elements(By.CSS_SELECTOR, "#response span.step")
        assert len(spans) == 4
        assert driver.find_element(By.ID, "response").get_attribute("textContent") == STEP_RECORDS[0]["output"]
        assert driver.execute_script("return window.pwned") is None  # a step's text is text, never markup
        shades = {s.value_of_css_property("background-color") for s in spans}
        assert len(shades) == 4  # four different nuclear norms, four shades
        values = [float(s.get_attribute("data-value")) for s in spans]
        Select(driver.find_element(By.ID, "shade")).select_by_value("loss")
        spans = driver.find_elements(By.CSS_SELECTOR, "#response span.step")
        losses = [float(s.get_attribute("data-value")) for s in spans]
        assert losses != values and all(v > 0 for v in losses)
        spans[1].click()
        assert "step 1" in driver.find_element(By.ID, "stepdetail").text
        assert len(driver.find_elements(By.CSS_SELECTOR, "#stepdetail svg.plot")) == 2
        assert "picked" in driver.find_elements(By.CSS_SELECTOR, "#response span.step")[1].get_attribute("class")
    finally:
        driver.quit()
