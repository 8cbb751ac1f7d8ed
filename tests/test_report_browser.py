"""The class report as an instructor sees it: Debian's Chromium, driven by Playwright, opens the file.

Every figure must have loaded (``naturalWidth > 0``), the console must stay free of errors, and the
page must not try to reach anything beyond its own file and data URIs. A full-page screenshot is
saved under the test's tmp dir and its path printed (``pytest -s`` or ``-rA`` shows it).

Skipped, with the reason, when Chromium or Playwright is missing; a failure instead under ``CI=true``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from course_tools.grade.results import save_results
from course_tools.report.write import write_lessons
from tests.report_class import L07, L08, diagnoses, lesson07_class, lesson08_class
from tests.helpers import missing_tool

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
# Off the network: no background fetches, no component updates, no sync (as tests/test_browser.py).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
TIMEOUT_MS = 30_000


@pytest.fixture
def report(tmp_path: Path) -> Path:
    """The lesson 07 report of the synthetic class, with lesson 08 graded too (so "Across lessons" shows)."""
    if not CHROMIUM.exists():
        missing_tool(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing_tool("playwright is not installed (pip install -e '.[test]')")
    root = tmp_path / "course"
    save_results(root, L07, lesson07_class())
    save_results(root, L08, lesson08_class())
    write_lessons(root, diagnoses=diagnoses())
    return root / "reports" / f"{L07}.html"


def test_the_report_opens_offline_with_every_figure_and_no_console_error(report, tmp_path, record_property):
    from playwright.sync_api import sync_playwright

    console_errors: list[str] = []
    outside: list[str] = []
    screenshot = tmp_path / "class-report.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})

            def only_the_file(route) -> None:
                if route.request.url.startswith(("file:", "data:")):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", only_the_file)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            page.goto(report.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}))")
            headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
            scripts = page.locator("script").count()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    print(f"\nscreenshot of the class report: {screenshot}")
    record_property("screenshot", str(screenshot))  # in --junitxml reports too
    # 1 histogram + 3 exercises' diagnosis charts + 1 family trend
    assert len(images) == 5, images
    assert all(image["ok"] for image in images), [image["alt"] for image in images if not image["ok"]]
    assert console_errors == []
    assert outside == []
    assert scripts == 0
    assert headings[:5] == ["Scores", "Per exercise", "Common confusions", "Students who may need help",
                            "Across lessons"]
    assert screenshot.stat().st_size > 50_000
