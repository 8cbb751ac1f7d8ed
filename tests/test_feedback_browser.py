"""A student's feedback page opens offline and calls nothing: Debian's Chromium, driven by Playwright, opens it.

The page is rendered as ``course grade`` renders it (the course's nbgrader config: the student view,
the sanitiser and the course template) from a notebook whose output tries every way of calling out
that survives sanitising: a remote ``<img>`` in HTML and Markdown outputs and in a Markdown cell (a
beacon), ``srcset``, a CSS class that would load a web font, and LaTeX that MathJax would need. Every
request the page makes, other than the page itself and ``data:`` URIs, is recorded and refused.

Skipped, with the reason, when Chromium or Playwright is missing; a failure instead under ``CI=true``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbgrader
import pytest
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from traitlets.config import Config

from course_tools.grade.feedback import SanitizeOutputs, StudentFeedbackView, configure_feedback
from tests.helpers import missing_tool

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
BEACON = "http://127.0.0.1:9/beacon"
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


def calling_out_notebook():
    """Outputs and cells that would make the page call out, and one inline image that must still show."""
    outputs = [
        new_output("display_data", data={"text/html": f'<img src="{BEACON}.png" alt="html beacon">',
                                         "text/plain": "<HTML>"}),
        new_output("display_data", data={"text/html": f'<img srcset="{BEACON}-set.png 1x" src="{BEACON}-2.png">'}),
        new_output("display_data", data={"text/markdown": f"![markdown beacon]({BEACON}-md.png)"}),
        new_output("display_data", data={"text/html": '<span class="glyphicon glyphicon-star">font</span>'}),
        new_output("display_data", data={"text/html": f'<img src="data:image/png;base64,{PNG}" alt="inline">'}),
        new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
    ]
    code = new_code_cell("show()", outputs=outputs)
    markdown = new_markdown_cell(f"# Answer\n\n![cell beacon]({BEACON}-cell.png) and math: $x^2 + \\frac{{1}}{{2}}$\n\n"
                                 "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                                 "(https://colab.research.google.com/github/x/y/blob/main/z.ipynb)")
    return new_notebook(cells=[markdown, code])


def feedback_page(notebook, path: Path) -> Path:
    """Render ``notebook`` as course grade's feedback step does (nbgrader's exporter set-up, the course's config)."""
    config = Config()
    configure_feedback(config)
    # as nbgrader's GenerateFeedback adds it: the folder bootstrap.min.css is inlined from
    config.HTMLExporter.extra_template_paths = [
        str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "static" / "node_modules" /
            "bootstrap" / "dist" / "css")]
    exporter = HTMLExporter(config=config)
    for step in (StudentFeedbackView(), SanitizeOutputs()):
        exporter.register_preprocessor(step, enabled=True)
    resources = {"nbgrader": {"notebook": "lesson", "score": 0.0, "max_score": 0.0, "late_penalty": 0.0}}
    html, _ = exporter.from_notebook_node(notebook, resources=resources)
    path.write_text(html)
    return path


@pytest.fixture
def page(tmp_path: Path) -> Path:
    if not CHROMIUM.exists():
        missing_tool(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing_tool("playwright is not installed (pip install -e '.[test]')")
    return feedback_page(calling_out_notebook(), tmp_path / "feedback.html")


def test_the_feedback_page_opens_offline_and_makes_no_request(page):
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()

            def record(route) -> None:
                url = route.request.url
                if url == page.as_uri() or url.startswith("data:"):
                    route.continue_()
                else:
                    requests.append(url)
                    route.abort()

            context.route("**/*", record)
            tab = context.new_page()
            tab.goto(page.as_uri(), wait_until="load")
            tab.wait_for_timeout(500)  # late requests (fonts, lazy images) have their chance
            images = tab.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
            scripts = tab.eval_on_selector_all("script[src]", "s => s.map(x => x.src)")
            text = tab.inner_text("body")
        finally:
            browser.close()
    assert requests == [], f"expected no request when the feedback page opens, found {requests}"
    assert scripts == []
    assert images.count(True) == 2, "the two inline images (HTML and PNG output) still show"
    assert "x^2" in text, "math stays readable as its text"


def test_the_page_names_no_remote_resource(page):
    html = page.read_text()
    assert BEACON not in html and "cdnjs" not in html and "colab-badge.svg" not in html
    assert "@font-face" not in html
