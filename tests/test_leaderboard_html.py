"""The leaderboard page in headless Chromium: it renders, sorts, and runs nothing from the inputs.

Needs the Debian package ``chromium`` (/usr/bin/chromium) and ``pip install playwright``
(never ``playwright install``: the system browser is used). Without them the tests are
skipped locally and fail where ``$CI`` is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rolebench_eval.leaderboard import build_leaderboard
from rolebench_eval.leaderboard.build import Options

RUNS = Path(__file__).resolve().parent / "fixtures" / "leaderboard" / "runs"
JUDGES = Path(__file__).resolve().parent / "fixtures" / "leaderboard" / "judges"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS = "<img src=x onerror=alert(1)>"
MODEL_B = "org/base-7b+org/model-b"


def _require_browser():
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("pip install playwright")
    if not Path(CHROMIUM).exists():
        missing.append("apt-get install -y chromium")
    if missing:
        message = "headless browser not available: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    board = build_leaderboard([RUNS], judges=[JUDGES], out=out,
                              options=Options(baseline=MODEL_B, n_boot=200, include_incomparable=True))
    return board.outputs["html"]


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, page_file):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    events = {"dialogs": [], "errors": [], "requests": []}
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: events["errors"].append(str(e)))
    page.on("console", lambda m: events["errors"].append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: events["requests"].append(r.url))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    page.events = events
    yield page
    page.close()


def _column(page, header: str) -> list[str]:
    index = page.eval_on_selector_all(
        "#board thead tr.cols th", f"(ths) => ths.findIndex(th => th.textContent.trim() === {header!r})")
    assert index >= 0, header
    return page.eval_on_selector_all(
        "#board tbody tr", f"(rows) => rows.map(r => r.cells[{index}].getAttribute('data-sort'))")


def _names(page) -> list[str]:
    return page.eval_on_selector_all("#board tbody tr td.name .model", "(els) => els.map(e => e.textContent)")


def test_page_renders_offline_with_every_row(page, page_file):
    assert page.title() == "RoleBench leaderboard"
    names = _names(page)
    assert names[:5] == ["org/model-a", "org/model-c", MODEL_B, "org/model-i", XSS]
    assert {"org/model-d", "RoleGPT", "RoleLLaMA"} <= set(names)
    assert page.locator("tr.reported").count() >= 9
    assert page.locator(".heatmap tbody tr").count() == 7
    ranked_bars = page.locator("tr.measured td[data-sort] .bar .range")
    assert ranked_bars.count() > 20  # CI bars on the measured cells with intervals
    assert page.locator("tr.reported .bar .range").count() == 0  # reported values have no interval
    assert all(url.startswith("file://") for url in page.events["requests"])  # nothing from the network
    assert page.events["errors"] == []  # the script ran under the page's Content-Security-Policy


def test_clicking_a_header_sorts_the_rows(page):
    page.click("#board thead th[data-key='score'] button")
    scores = [float(v) for v in _column(page, "Score") if v]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 6
    assert _column(page, "Score")[-1] == ""  # rows without a Score stay last
    page.click("#board thead th[data-key='score'] button")
    ascending = [float(v) for v in _column(page, "Score") if v]
    assert ascending == sorted(ascending)
    assert _column(page, "Score")[-1] == ""
    page.click("#board thead th[data-key='en_spe'] button")
    spe = [float(v) for v in _column(page, "SPE") if v]
    assert spe == sorted(spe, reverse=True)
    assert _names(page)[0] == "org/model-a"
    page.click("#board thead tr.cols th.name button")
    names = _column(page, "Model")
    assert names == sorted(names)


def test_hostile_model_name_is_text_and_runs_nothing(page, page_file):
    assert XSS in _names(page)
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
    page.wait_for_timeout(300)
    assert page.events["dialogs"] == []
    html = page_file.read_text(encoding="utf-8")
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    bold = page.locator(".heatmap tbody th", has_text='<b>Bold & "Quoted"</b>')
    assert bold.count() == 1 and page.locator(".heatmap b").count() == 0


def test_screenshot(page, tmp_path):
    shot = tmp_path / "leaderboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("ROLEBENCH_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["ROLEBENCH_SCREENSHOT_DIR"]) / shot.name)
