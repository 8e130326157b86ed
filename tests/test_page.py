"""The results folder's page (`index.html`, runners.analysis.page) in a real browser: Debian's chromium, headless,
driven by Playwright, opening the page from disk. One folder (three committed experiments, with a failed, a cancelled
and an out-of-memory seed, and baselines), one browser, one page for the module."""
from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from runners import report
from runners.analysis.experiment import experiments
from runners.analysis.tables import summarize
from runners.store.records import load_records

from pages import CHROMIUM, POINT, SMALL, browser, small_folder, write

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra has it)")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no chromium at {CHROMIUM}: "
                                "apt-get install chromium (.ci/run installs it)")

ROWS = "#comparison tbody tr:not([hidden])"
SHOWN = f"""() => Array.from(document.querySelectorAll("{ROWS}")).map((tr) => ({{
  exp: +tr.dataset.exp, label: tr.dataset.label, status: tr.dataset.status,
  v: Array.from(tr.cells).map((c) => c.dataset.v),
  text: Array.from(tr.cells).map((c) => c.tagName === "TH" ? c.firstChild.textContent : c.textContent),
  bold: Array.from(tr.cells).map((c) => c.querySelector("strong") !== null)}}))"""
HEADERS = "() => Array.from(document.querySelectorAll('#comparison thead button')).map((b) => b.textContent)"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    results = small_folder(tmp_path_factory.mktemp("page"))
    assert report.main(["--results", str(results), "--html"]) == 0
    return results / "tweets"


@pytest.fixture(scope="module")
def exps(folder) -> list[tuple]:
    """Each experiment with its summary frame, as the tables make them, in the page's order."""
    return [(e, summarize(e)[0]) for e in experiments(load_records(folder.parent, "tweets")) if e.records]


@pytest.fixture(scope="module")
def seen(folder):
    """The page, open; every request it made and every error it logged are kept."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = browser(p)
        tab = b.new_page(viewport={"width": 1400, "height": 1000})
        requests, errors = [], []
        tab.on("request", lambda r: requests.append(r.url))
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        url = (folder / "index.html").as_uri()
        tab.goto(url)
        tab.wait_for_selector("body[data-ready]", timeout=30_000)
        yield SimpleNamespace(browser=b, tab=tab, requests=requests, errors=errors, url=url)
        b.close()


def shown(tab) -> list[dict]:
    return tab.evaluate(SHOWN)


def test_the_page_is_one_file_that_opens_offline(folder, seen):
    html = (folder / "index.html").read_text()
    assert (folder / "index.html").stat().st_size < 10 * 2**20
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html), "the page refers to another file"
    assert seen.requests == [seen.url] and seen.errors == []
    assert "Okabe–Ito" in html
    buttons = seen.tab.eval_on_selector_all("#pareto .modebar-btn", "(bs) => bs.map((b) => b.dataset.title)")
    assert "Download plot as a PNG" in buttons and not [b for b in buttons if "Share" in b or "Cloud" in b]


def test_the_table_shows_the_chosen_experiment_and_filters(seen, exps):
    tab = seen.tab
    first, _ = exps[0]
    assert sorted(r["label"] for r in shown(tab)) == sorted(first.rows)  # the most recent experiment, at first
    tab.select_option("#f-exp", "")
    tab.fill("#f-method", "lora")
    want = sorted((i, label) for i, (e, _) in enumerate(exps) for label in e.rows if "lora" in label)
    assert sorted((r["exp"], r["label"]) for r in shown(tab)) == want
    tab.fill("#f-method", "")
    budget, index = next((e.config.budget, i) for i, (e, _) in enumerate(exps) if e.config.budget == "1.6e12flops")
    tab.select_option("#f-budget", budget)
    assert {r["exp"] for r in shown(tab)} == {index} and len(shown(tab)) == len(exps[index][0].rows)
    tab.select_option("#f-budget", "")
    tab.select_option("#f-status", "cancelled")
    assert [r["status"] for r in shown(tab)] == ["cancelled"]
    tab.select_option("#f-status", "oom")
    assert [r["status"] for r in shown(tab)] == ["ok oom"]
    tab.select_option("#f-status", "")
    every = sum(len(e.rows) for e, _ in exps)
    assert tab.inner_text("#count") == f"{every} of {every} rows"


def test_a_header_sorts_by_its_column_the_missing_last(seen):
    tab = seen.tab
    col = tab.evaluate(HEADERS).index("test acc ↑")
    button = tab.locator("#comparison thead button", has_text="test acc ↑")
    for direction in ("ascending", "descending"):
        button.click()
        assert tab.get_attribute(f"#comparison thead th:nth-child({col + 1})", "aria-sort") == direction
        values = [r["v"][col] for r in shown(tab)]
        numbers = [float(v) for v in values if v != ""]
        assert numbers == sorted(numbers, reverse=direction == "descending")
        assert values == [str(v) for v in values if v != ""] + [""] * values.count("")  # a row with none: last


def test_failed_cancelled_and_baseline_rows_read_as_the_markdown_says(seen, folder, exps):
    """Every cell the markdown table has is the page's cell for the same row, the bold top group included."""
    tab = seen.tab
    tab.select_option("#f-exp", "")
    headers = tab.evaluate(HEADERS)
    rows = {(r["exp"], r["label"]): r for r in shown(tab)}
    markdown = (folder / "comparison.md").read_text()
    kinds = set()
    for i, (exp, _) in enumerate(exps):
        section = markdown.split(f"## Experiment {exp.id}\n")[1].split("\n## ")[0]
        lines = [line for line in section.splitlines() if line.startswith("|")]
        names = _cells(lines[0])
        for line in lines[2:]:
            md = dict(zip(names, _cells(line)))
            label = md["method"].removesuffix(" (baseline)")
            page = dict(zip(headers, zip(rows[(i, label)]["text"], rows[(i, label)]["bold"])))
            kinds.add(("baseline" if md["method"] != label else "method", rows[(i, label)]["status"]))
            for name, text in md.items():
                shown_text, bold = page[name]
                if name == "status":  # the markdown cuts a long reason and escapes its `|`
                    assert shown_text.startswith(text.replace("\\|", "|").removesuffix("…")), (label, name)
                elif name == "budget to target ↓":  # the page adds the unit (its rows mix experiments)
                    assert shown_text.startswith(text), (label, name)
                else:
                    assert (shown_text, bold) == (text.strip("*"), text.startswith("**")), (label, name)
    assert {("baseline", "ok"), ("method", "cancelled"), ("method", "failed ok"), ("method", "ok oom")} <= kinds


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_picking_two_columns_redraws_the_pareto_plot(seen, exps):
    tab = seen.tab
    tab.select_option("#experiment", "0")
    first, df = exps[0]
    for x, y in (("train time (s)", "macro-F1"), ("train FLOPs", "AUC"), ("peak mem (MiB)", "test acc")):
        tab.select_option("#x-metric", x)
        tab.select_option("#y-metric", y)
        flops = pd.Series([any(r.measurements.flops for r in first.rows[m].ok) for m in df["method"]])
        has = df[f"{y} center"].notna() & (df[f"{x} center"].notna() if f"{x} center" in df else flops)
        drawn = tab.evaluate("() => document.getElementById('pareto').data.filter((t) => t.mode === 'markers')"
                             ".map((t) => t.meta)")
        assert sorted(drawn) == sorted(df["method"][has]) and tab.get_attribute("#pareto", "data-points") == str(
            int(has.sum()))
        assert 1 <= int(tab.get_attribute("#pareto", "data-front")) <= has.sum()


def test_the_curves_the_search_and_the_budgets_are_drawn(seen, exps):
    tab = seen.tab
    index, (tuned, _) = next((i, x) for i, x in enumerate(exps) if x[0].id == SMALL[0])  # tuned, a row cancelled
    tab.select_option("#experiment", str(index))
    lines = "(id) => document.getElementById(id).data.filter((t) => t.mode === 'lines+markers').map((t) => t.name)"
    with_curves = [label for label, row in tuned.rows.items() if row.ok]
    assert sorted(tab.evaluate(lines, "curves")) == sorted(with_curves)
    cancelled = next(label for label, row in tuned.rows.items() if not row.ok)
    assert f"Not drawn: {cancelled} (seed 0: cancelled" in tab.inner_text("#curves-note")
    assert sorted(name.split(" (")[0] for name in tab.evaluate(lines, "search")) == sorted(tuned.choices)
    stars = tab.evaluate("() => document.getElementById('search').data.filter((t) => t.marker?.symbol === 'star')"
                         ".length")
    assert stars == sum(c.lr is not None for c in tuned.choices.values())
    tab.locator("#families .plot").first.scroll_into_view_if_needed()  # drawn when it comes near the screen
    tab.wait_for_selector("#families .plot[data-drawn]")
    assert tab.locator("#families .family").count() == 1  # 4e11flops and 1.6e12flops of the same comparison
    assert "The best method" in tab.inner_text("#families .family p")


def test_a_row_or_a_point_opens_its_runs_details(seen, exps):
    tab = seen.tab
    tab.select_option("#experiment", "0")
    first, _ = exps[0]
    row = tab.locator(ROWS).first
    label = row.get_attribute("data-label")
    row.click()
    dialog = tab.locator("#details")
    assert dialog.is_visible()
    text = dialog.inner_text()
    runs = first.rows[label].runs
    assert all(r.run_id in text for r in runs) and "Config" in text and "Versions" in text
    assert runs[0].versions["torch"] in text and first.config.model in text  # versions and the model's identity
    tab.keyboard.press("Escape")
    assert not dialog.is_visible()
    tab.locator(ROWS).nth(1).focus()  # by keyboard: a row takes the focus and Enter opens it
    tab.keyboard.press("Enter")
    assert dialog.is_visible() and tab.locator(ROWS).nth(1).get_attribute("data-label") in tab.inner_text(
        "#details-title")
    tab.keyboard.press("Escape")
    tab.locator("#pareto").scroll_into_view_if_needed()
    point = tab.evaluate(POINT)
    tab.mouse.click(point["x"], point["y"])
    dialog.wait_for(state="visible")
    assert tab.inner_text("#details-title").startswith(point["label"])
    tab.keyboard.press("Escape")


def test_a_screenshot_is_not_blank(seen):
    from PIL import Image

    tab = seen.tab
    tab.locator("#plots").scroll_into_view_if_needed()
    image = Image.open(io.BytesIO(tab.screenshot())).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50 and max(n for n, _ in colours) < 0.95 * image.width * image.height


def test_a_folder_of_searches_not_yet_reported_has_a_page_that_says_so(seen, folder, tmp_path):
    trials = [r for r in load_records(folder.parent, "tweets") if r.config.search and r.experiment_id == SMALL[1]]
    results = write(trials, tmp_path)
    assert report.main(["--results", str(results), "--html"]) == 0
    tab = seen.browser.new_page()
    errors = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto((results / "tweets" / "index.html").as_uri())
    tab.wait_for_selector("body[data-ready]")
    assert f"{len(trials)} learning-rate search trial(s), no reported run yet" in tab.inner_text("#experiments")
    assert tab.inner_text("#count") == "0 of 0 rows" and not tab.is_visible("#plots") and errors == []
    tab.close()


def test_nothing_was_fetched_and_nothing_failed(seen):
    """Last: every click and redraw above stayed inside the file."""
    assert [u for u in seen.requests if not u.startswith(("data:", "blob:"))] == [seen.url]
    assert seen.errors == []
