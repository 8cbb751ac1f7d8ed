"""Hostile student output and names made inert for grades.csv and feedback HTML."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from course_tools.grade.sanitize import (clean_html, keep_colours, safe_csv_cell, safe_terminal_text, sanitize_notebook_outputs,
                                         strip_control, without_surrogates)

MARK = "PWNED"


@pytest.mark.parametrize(("text", "expected"), [
    ("alice", "alice"),
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "' =1"),
    ("\r=1", "' =1"),
    ("\x1b[31m=red\x1b[0m", "'=red"),
    ("-1.5", "-1.5"),
    ("12", "12"),
    ("a\x1b]0;title\x07b", "ab"),
    ("bell\x07 and \x00nul", "bell and nul"),
    ("line\nbreak", "line break"),
    ("right\u202eleft", "rightleft"),
    ("\x9b31mcsi", "31mcsi"),
])
def test_csv_cells(text, expected):
    assert safe_csv_cell(text) == expected


def test_csv_cells_survive_a_round_trip_without_control_characters():
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_csv_cell("=1+1"), safe_csv_cell("\x1b[2J\x1b[Hcleared"), safe_csv_cell("ok, fine")])
    [row] = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert row == ["'=1+1", "cleared", "ok, fine"]
    assert all(ch >= " " for ch in buffer.getvalue().rstrip("\r\n"))


def test_strip_control_keeps_ordinary_text():
    assert strip_control("Ünïcödé text · 1 ≤ 2") == "Ünïcödé text · 1 ≤ 2"


HOSTILE_HTML = [
    f"<script>alert('{MARK}')</script>",
    f"<img src=x onerror=\"alert('{MARK}')\">",
    f"<a href=\"javascript:alert('{MARK}')\">click</a>",
    f"<a href=\"JaVaScRiPt:alert('{MARK}')\">click</a>",
    f"<iframe src=\"data:text/html,<script>{MARK}</script>\"></iframe>",
    f"<object data=\"x.swf\">{MARK}</object><embed src=\"{MARK}.swf\">",
    f"<form action=\"http://evil\"><input name=\"{MARK}\"></form>",
    f"<div style=\"background:url(javascript:{MARK})\">x</div>",
    f"<svg onload=\"{MARK}\"><script>{MARK}</script></svg>",
    f"<style>body{{background:url('{MARK}')}}</style>",
    f"<body onload=\"{MARK}\">",
    f"<details open ontoggle=\"{MARK}\">",
]


class Active(HTMLParser):
    """Finds the marker wherever it could run: scripts, event handlers, javascript: URLs, embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag in ("iframe", "object", "embed", "form", "input", "frame", "base", "meta", "link") and MARK in str(attrs):
            self.found.append(tag)
        self._in_script = tag in ("script", "style")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") and MARK in value:
                self.found.append(f"{tag} {name}")
            if name in ("href", "src", "action", "data", "style", "formaction") and MARK in value:
                self.found.append(f"{tag} {name}={value}")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and MARK in data:
            self.found.append("script")


def active(html: str) -> list[str]:
    parser = Active()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("payload", HOSTILE_HTML)
def test_clean_html_leaves_nothing_active(payload):
    assert active(payload), "the checker itself must see the payload"
    cleaned = clean_html(payload)
    assert active(cleaned) == [], cleaned
    assert "<script" not in cleaned and "onerror" not in cleaned and "javascript:" not in cleaned.lower()


def test_clean_html_keeps_ordinary_markup():
    table = "<table border=\"1\"><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>"
    assert "<td>1</td>" in clean_html(table) and "<th>a</th>" in clean_html(table)
    assert clean_html("<b>bold</b> <a href=\"https://pytorch.org\">docs</a>").startswith("<b>bold</b>")


def hostile_notebook() -> nbformat.NotebookNode:
    outputs = [
        new_output("display_data", data={"text/html": payload, "text/plain": "<HTML>"}) for payload in HOSTILE_HTML
    ] + [
        new_output("display_data", data={"application/javascript": f"alert('{MARK}')", "text/plain": "js"}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": MARK}}),
        new_output("display_data", data={"image/svg+xml": f"<svg onload='{MARK}'/>", "text/plain": "svg"}),
        new_output("display_data", data={"text/latex": f"$\\href{{javascript:{MARK}}}{{x}}$"}),
        new_output("display_data", data={"text/markdown": f"[x](javascript:alert('{MARK}')) <script>{MARK}</script>"}),
        new_output("display_data", data={"image/png": f"\" onerror=\"{MARK}"}),
        new_output("display_data", data={"image/png": "iVBORw0KGgo="}, metadata={"image/png": {"width": f"1 onerror={MARK}"}}),
        new_output("execute_result", data={"text/html": f"<img src=x onerror={MARK}>"}, execution_count=1),
        new_output("stream", name="stdout", text=f"<script>{MARK}</script>"),
    ]
    code = new_code_cell("display(HTML(payload))", outputs=outputs)
    code.outputs.append(nbformat.from_dict({"output_type": "stream", "name": f"x\" onclick=\"{MARK}", "text": "hi"}))
    code.metadata["tags"] = [f"x\" onclick=\"{MARK}", "fine-tag"]
    markdown = new_markdown_cell(f"# Answer\n\n[link](javascript:alert('{MARK}')) <img src=x onerror=\"{MARK}\">\n\n"
                                 f"$\\href{{javascript:{MARK}}}{{click}}$ and <script>{MARK}</script>")
    markdown["attachments"] = {"a.png": {"image/png": "iVBORw0KGgo="}}
    raw = new_raw_cell(f"<script>{MARK}</script>", metadata={"format": "text/html"})
    notebook = new_notebook(cells=[markdown, code, raw])
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {MARK: {}}}}
    return notebook


def test_sanitised_notebook_keeps_no_active_content():
    original = hostile_notebook()
    clean = sanitize_notebook_outputs(original)
    assert original.cells[1].outputs[0].data["text/html"] == HOSTILE_HTML[0], "the input is not changed"
    mimes = {mime for o in clean.cells[1].outputs for mime in o.get("data", {})}
    assert mimes <= {"text/plain", "text/html", "image/png"}
    assert "widgets" not in clean.metadata and "attachments" not in clean.cells[0]
    assert clean.cells[1].metadata["tags"] == ["fine-tag"]
    assert {o.name for o in clean.cells[1].outputs if o.output_type == "stream"} == {"stdout"}
    assert "format" not in clean.cells[2].metadata
    images = [o for o in clean.cells[1].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1 and images[0].metadata == {}
    for output in clean.cells[1].outputs:
        assert active(output.get("data", {}).get("text/html", "")) == []
    source = clean.cells[0].source
    assert "<script" not in source and "href=\"javascript" not in source and "\\href{" not in source
    assert active(source) == []
    nbformat.validate(clean)


def test_rendered_feedback_html_has_no_active_student_content():
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter(template_name="classic").from_notebook_node(sanitize_notebook_outputs(hostile_notebook()))
    found = active(html)
    assert found == [], found
    assert f"javascript:alert('{MARK}')" not in html and "javascript:alert(&#39;" not in html
    assert "\\href{javascript" not in html, "MathJax would make this a live link"
    for tag in ("<iframe", "<object", "<embed", "<form"):
        assert tag not in html.lower()


def test_an_ordinary_notebook_keeps_its_outputs():
    cell = new_code_cell("print(1)", outputs=[
        new_output("stream", name="stdout", text="1\n"),
        new_output("execute_result", data={"text/plain": "tensor([1.])"}, execution_count=3),
        new_output("error", ename="CheckFailed", evalue="expected 3, found 2 [l01-shape]", traceback=["tb"]),
        new_output("display_data", data={"image/png": "iVBORw0KGgo=\n", "text/plain": "<Figure>"},
                   metadata={"image/png": {"width": 600}}),
    ])
    clean = sanitize_notebook_outputs(new_notebook(cells=[cell, new_markdown_cell("## Exercise 1 · `make_loader`")]))
    assert clean.cells[0].outputs == cell.outputs
    assert "<h2" in clean.cells[1].source and "make_loader" in clean.cells[1].source


# --- issue 18: images only inline, surrogates, the terminal ------------------------------------

PNG_URI = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize("html", [
    '<img src="http://127.0.0.1:9/beacon.png">', '<img src="https://example.org/x.gif">', '<img src="//cdn/x.png">',
    '<img src="beacon.png">', '<img src="data:text/html;base64,PHNjcmlwdD4=">', '<img srcset="http://x/y.png 1x">',
])
def test_images_are_kept_only_as_inline_data(html):
    cleaned = clean_html(html)
    assert "src" not in cleaned.replace("srcset", "src"), cleaned


def test_inline_images_and_ordinary_links_stay():
    assert f'src="{PNG_URI}"' in clean_html(f'<img src="{PNG_URI}" alt="plot">')
    assert 'href="https://pytorch.org"' in clean_html('<a href="https://pytorch.org">docs</a>')
    assert "href" not in clean_html('<a href="data:text/html,x">x</a>')


def test_lone_surrogates_become_replacement_characters_everywhere():
    import json

    data = json.loads('{"cells": [{"source": "x = \\"\\ud800\\"", "metadata": {"\\udfff": ["\\ud800a"]}}], '
                      '"ok": "\\ud83d\\ude00"}')
    clean = without_surrogates(data)
    text = json.dumps(clean, ensure_ascii=False)
    text.encode("utf-8")  # would raise UnicodeEncodeError with a lone surrogate left
    assert clean["cells"][0]["source"] == 'x = "\ufffd"' and clean["cells"][0]["metadata"] == {"\ufffd": ["\ufffda"]}
    assert clean["ok"] == "\U0001f600", "a proper pair is one character and stays"
    deep: list = []
    nested = deep
    for _ in range(5000):
        nested.append([])
        nested = nested[0]
    nested.append("\ud800")
    without_surrogates(deep)  # iterative: no RecursionError


def test_terminal_text_is_one_short_printable_line():
    hostile = "\x1b]0;owned\x07\x1b[2J\x1b[31mRed\x1b[0m\nnext\ud800" + "E" * 20_000_000
    line = safe_terminal_text(hostile, limit=80)
    assert len(line) == 80 and line.startswith("Red next") and "\x1b" not in line and "\ud800" not in line


def test_kernel_text_keeps_its_colours_and_lines_and_loses_every_other_escape():
    traceback = "\x1b[0;31mValueError\x1b[0m: bad\n\x1b]0;title\x07\x1b[2J\x1b]8;;http://x/\x07link\x1b]8;;\x07\r\x00"
    assert keep_colours(traceback) == "\x1b[0;31mValueError\x1b[0m: bad\nlink"
    hostile = nbformat.from_dict({"output_type": "error", "ename": "\x1b]0;t\x07Name", "evalue": "a\n\x1b[2Jb",
                                  "traceback": [traceback]})
    notebook = new_notebook(cells=[new_code_cell("x", outputs=[hostile])])
    [clean] = sanitize_notebook_outputs(notebook).cells[0].outputs
    assert (clean.ename, clean.evalue) == ("Name", "a\nb") and clean.traceback == [keep_colours(traceback)]
