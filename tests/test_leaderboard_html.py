"""The leaderboard pages in headless Chromium: they render offline, fit 1400 px, sort, fold, link
to the item browser, and run nothing from the inputs.

Needs the Debian package ``chromium`` (/usr/bin/chromium) and ``pip install playwright``
(never ``playwright install``: the system browser is used). Without them the tests are
skipped locally and fail where ``$CI`` is set. Set ``ROLEBENCH_SCREENSHOT_DIR`` to keep the
screenshots.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rolebench_eval.leaderboard import build_leaderboard
from rolebench_eval.leaderboard.build import Options
from rolebench_eval.outputs.models import read_models

FIX = Path(__file__).resolve().parent / "fixtures" / "leaderboard"
RUNS, JUDGES = FIX / "runs", FIX / "judges"
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
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    board = build_leaderboard([RUNS], judges=[JUDGES], out=out, options=Options(
        baseline=MODEL_B, n_boot=200, models=read_models(FIX / "models.yaml")))  # described rows: every width
    return board.outputs["html"].parent


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _open(browser, url: str, width: int = 1400):
    page = browser.new_page(viewport={"width": width, "height": 900})
    events = {"dialogs": [], "errors": [], "requests": []}
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: events["errors"].append(str(e)))
    page.on("console", lambda m: events["errors"].append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: events["requests"].append(r.url))
    page.goto(url)
    page.wait_for_load_state("load")
    page.events = events
    return page


@pytest.fixture()
def page(browser, site):
    page = _open(browser, (site / "index.html").as_uri())
    yield page
    page.close()


@pytest.fixture()
def items(browser, site):
    page = _open(browser, (site / "items.html").as_uri())
    yield page
    page.close()


def _shot(page, name: str, tmp_path: Path) -> tuple[int, int]:
    """A full-page PNG of ``page``; returns its (width, height) in pixels, read from the PNG header."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    if os.environ.get("ROLEBENCH_SCREENSHOT_DIR"):  # kept as artifacts (.ci/run sets it)
        keep = Path(os.environ["ROLEBENCH_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / name)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _column(page, key: str) -> list[str]:
    index = page.eval_on_selector_all("#board thead tr.cols th", f"(ths) => ths.findIndex(th => th.dataset.key === {key!r})")
    assert index >= 0, key
    return page.eval_on_selector_all("#board tbody tr:not([hidden])",
                                     f"(rows) => rows.filter(r => r.offsetParent !== null)"
                                     f".map(r => r.cells[{index}].getAttribute('data-sort'))")


def _names(page) -> list[str]:
    return page.eval_on_selector_all("#board tbody tr td.name .model",
                                     "(els) => els.filter(e => e.offsetParent !== null).map(e => e.textContent)")


@pytest.mark.slow
def test_page_renders_offline_and_fits_1400_px(page):
    assert page.title() == "RoleBench leaderboard"
    assert _names(page)[:6] == ["model-a", "RoleGPT", "model-c", "base-7b+model-b", "model-i", XSS]  # one order
    widths = page.evaluate("""() => { const w = document.querySelector('.table-wrap'), d = document.documentElement;
                                      return [d.scrollWidth, d.clientWidth, w.scrollWidth, w.clientWidth]; }""")
    assert widths[0] <= widths[1] and widths[2] <= widths[3], widths  # no horizontal scroll, page or table
    visible = page.eval_on_selector_all("#board thead tr.cols th", "(ths) => ths.filter(t => t.offsetParent !== null)"
                                                                   ".map(t => t.textContent.trim())")
    assert visible[:7] == ["#", "Model", "Score", "Δ above", "Δ baseline", "RAW", "Drop"]
    assert {"Win", "LC win", "Rank /3", "Rubric", "Breaks"} <= set(visible) and "SPE" not in visible
    assert page.get_attribute("#board tbody tr:first-child td.name", "title") == "org/model-a"
    assert page.locator("tr.measured .bar .range").count() >= 4  # the Score's intervals
    assert page.locator(".heatmap tbody tr").count() == 7
    assert page.locator("section.depth img").count() == 1  # score against depth, inline (no file fetched)
    assert all(url.startswith("file://") or url.startswith("data:") for url in page.events["requests"])
    assert page.events["errors"] == []  # the script ran under the page's Content-Security-Policy


def test_per_split_columns_and_paper_rows_fold(page):
    assert page.locator("th[data-key='en_spe']").is_hidden()
    reported = page.locator("tr.reported").count()
    shown_reported = page.eval_on_selector_all("tr.reported", "(rows) => rows.filter(r => r.offsetParent).length")
    assert 0 < shown_reported < reported  # paper rows without a value on the ranked tasks wait for the toggle
    page.check("#show-splits")
    assert page.locator("th[data-key='en_spe']").is_visible()
    assert page.eval_on_selector_all("tr.reported", "(rows) => rows.filter(r => r.offsetParent).length") == reported
    page.uncheck("#show-reported")
    assert page.eval_on_selector_all("tr.reported", "(rows) => rows.filter(r => r.offsetParent).length") == 0


def test_clicking_a_header_sorts_the_rows(page):
    page.click("#board thead th[data-key='score'] button")
    scores = [float(v) for v in _column(page, "score") if v]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 6
    page.click("#board thead th[data-key='score'] button")
    assert [float(v) for v in _column(page, "score") if v] == sorted(scores)
    page.click("#board thead th[data-key='judge:mean_rank:rolebench_specific_en:rank'] button")  # lower is better
    ranks = [float(v) for v in _column(page, "judge:mean_rank:rolebench_specific_en:rank") if v]
    assert ranks == sorted(ranks) and len(ranks) == 2
    page.click("#board thead tr.cols th.name button")
    names = _names(page)
    assert names == sorted(names, key=str.lower)


def test_hostile_model_name_is_text_and_runs_nothing(page, site):
    assert XSS in _names(page)
    assert page.locator("img:not(section.depth img)").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
    page.wait_for_timeout(300)
    assert page.events["dialogs"] == []
    html = (site / "index.html").read_text(encoding="utf-8")
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    bold = page.locator(".heatmap tbody th", has_text='<b>Bold & "Quoted"</b>')
    assert bold.count() == 1 and page.locator(".heatmap b").count() == 0


def test_a_heatmap_cell_opens_that_role_in_the_item_browser(page):
    page.click(".heatmap tbody tr:has(th:text-is('老船长')) td:nth-of-type(2) a")  # model-c's cell
    page.wait_for_load_state("load")
    assert page.url.split("#")[0].endswith("/items.html")
    assert page.input_value("#role") == "老船长"
    metas = page.eval_on_selector_all("#list li .meta", "(els) => els.map(e => e.textContent)")
    assert metas and all(m.startswith("老船长 · ") for m in metas)
    assert page.text_content("#detail article.answer.chosen b.model") == "model-c"  # its answer comes first


def test_item_browser_filters_by_role_and_opens_an_item(items, tmp_path):
    assert items.title() == "RoleBench items"
    assert items.locator("#list li").count() == 42  # every item of the fixture runs (fewer than 20 per role)
    items.select_option("#task", "rolebench_specific_en")
    items.select_option("#role", "Lighthouse Keeper")
    assert items.locator("#list li").count() == 4
    items.fill("#q", "Question 7")
    assert items.locator("#list li").count() == 1
    items.click("#list li button")
    detail = items.locator("#detail")
    assert detail.locator("h2.question").text_content() == "Question 7: what do you see at sea?"
    assert detail.locator(".refs li").all_text_contents() == [" I see waves, number 7."]
    cards = {c.locator("b.model").text_content(): c for c in detail.locator("article.answer").all()}
    assert list(cards) == ["model-a", "model-c", "base-7b+model-b", XSS]
    assert cards["model-a"].locator(".score").text_content() == "SPE 0.510"  # 0.31 + 0.2 (make_fixtures.py)
    verdicts = cards["model-a"].locator("details.verdict summary").all_text_contents()
    assert verdicts == ["pairwise: tie (orders: tie, tie)", "rank: loss (rank 2)",
                        "rubric: parse_error: no scores found"]  # a failed parse is shown as one, never a score
    assert "#task=rolebench_specific_en&role=Lighthouse+Keeper&q=Question+7&item=" in items.url
    _shot(items, "items.png", tmp_path)


def test_item_browser_shows_hostile_answers_and_reasons_as_text(items, site):
    items.select_option("#task", "rolebench_specific_en")
    items.select_option("#role", "Old Captain")
    items.click("#list li:first-child button")
    card = items.locator("#detail article.answer", has=items.locator("b.model", has_text="<img"))
    assert card.locator(".text").text_content() == f"{XSS}<script>alert(0)</script> & that is all"
    card.locator("details.verdict summary").click()
    assert XSS in card.locator(".reason").first.text_content()
    items.wait_for_timeout(300)
    assert items.locator("img").count() == 0 and items.locator("#detail script").count() == 0
    assert items.evaluate("document.querySelectorAll('[onerror]').length") == 0
    assert items.events["dialogs"] == [] and items.events["errors"] == []
    assert all(url.startswith("file://") for url in items.events["requests"])
    data = (site / "items-data.js").read_text(encoding="utf-8")
    assert data.startswith("// RoleBench item browser data") and "</script>" in data  # JSON, never markup


def test_screenshots_are_the_whole_page_at_1400_px_folded_or_not(page, tmp_path):
    size = "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    folded = page.evaluate(size)
    assert _shot(page, "leaderboard.png", tmp_path) == (1400, folded[1]) and folded[0] == 1400
    page.check("#show-splits")
    unfolded = page.evaluate(size)
    assert unfolded[0] == 1400  # the wider table scrolls inside its frame; the page itself never does
    assert _shot(page, "leaderboard-splits.png", tmp_path) == (1400, unfolded[1]) and unfolded[1] >= folded[1]


WIDTHS = (1400, 800, 390)  # a desktop, half a screen, a phone
FITS = """() => { const d = document.documentElement, w = document.querySelector('#board')?.closest('.table-wrap');
                   return [d.scrollWidth, d.clientWidth, w ? w.scrollWidth : 0, w ? w.clientWidth : 0]; }"""


def _reachable(page, selectors: list[str], width: int) -> None:
    """Each control is shown, inside the screen's width, and takes input."""
    for selector in selectors:
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("splits", [False, True], ids=["main", "per-split"])
def test_the_board_fits_every_width_in_both_views(browser, site, tmp_path, width, splits):
    page = _open(browser, (site / "index.html").as_uri(), width)
    if splits:
        page.check("#show-splits")
    page_width, client, table, frame = page.evaluate(FITS)
    assert page_width == client == width  # the page never scrolls sideways
    if width == 1400:
        assert table <= frame, (table, frame)  # no column needs scrolling on a desktop, in either view
    _reachable(page, ["#filter", "#show-reported", "#show-measured", "#size-min", "#size-max", "#license",
                      "#show-splits", "#board thead th[data-key='score'] button"], width)
    shown = page.eval_on_selector_all("#board thead tr.cols th", "(ths) => ths.filter(t => t.offsetParent !== null)"
                                                                 ".map(t => t.dataset.key || t.textContent.trim())")
    if splits:  # the paper's tables in place of the tests and judges
        assert {"en_spe", "zh_cus", "rougeL_f"} <= set(shown) and "Δ above" not in shown
        assert not any(k.startswith("judge:") for k in shown)
    else:
        assert "Δ above" in shown and "en_spe" not in shown and any(k.startswith("judge:") for k in shown)
    name = f"board-{width}{'-splits' if splits else ''}.png"
    assert _shot(page, name, tmp_path)[0] == width
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_item_browser_fits_every_width(browser, site, tmp_path, width):
    page = _open(browser, (site / "items.html").as_uri(), width)
    page_width, client, _, _ = page.evaluate(FITS)
    assert page_width == client == width
    _reachable(page, ["#task", "#role", "#q", "#list li:first-child button"], width)
    page.fill("#q", "Question 7")
    page.click("#list li:first-child button")
    assert page.locator("#detail h2.question").text_content().startswith("Question 7")
    assert page.evaluate(FITS)[0] == width  # an open item with long answers does not widen the page either
    assert _shot(page, f"items-{width}.png", tmp_path)[0] == width
    page.close()


def test_the_search_box_keeps_the_rows_whose_name_holds_every_word(page):
    page.fill("#filter", "model")
    assert _names(page) == ["model-a", "model-c", "base-7b+model-b", "model-i"]  # not the paper rows
    page.fill("#filter", "7B MODEL")  # any case; the run's full name counts too
    assert _names(page) == ["base-7b+model-b"]
    page.fill("#filter", "")
    assert len(_names(page)) > 3


def test_the_filters_keep_rows_by_size_license_and_source(page):
    everything = _names(page)
    page.fill("#size-min", "7")
    assert _names(page) == ["model-a", "model-c", "base-7b+model-b"]  # 7B, 13B, 7,000,000,000; no size: out
    page.fill("#size-max", "10")
    assert _names(page) == ["model-a", "base-7b+model-b"]
    page.select_option("#license", "apache-2.0")
    assert _names(page) == ["base-7b+model-b"]
    page.fill("#size-min", "")
    page.fill("#size-max", "")
    assert _names(page) == ["model-c", "base-7b+model-b"]
    page.select_option("#license", "")
    page.uncheck("#show-measured")
    measured = ["model-a", "model-c", "base-7b+model-b", "model-i", XSS]
    assert _names(page) == [n for n in everything if n not in measured] and "RoleGPT" in _names(page)
    page.check("#show-measured")
    page.uncheck("#show-reported")
    assert _names(page) == measured
    assert page.events["dialogs"] == [] and page.events["errors"] == []
