"""Make student-controlled text safe for the files people open: grades.csv and feedback HTML.

- :func:`safe_csv_cell`: no control characters or terminal escapes, and no cell that a
  spreadsheet would read as a formula (OWASP "CSV injection"); :func:`safe_terminal_text` for
  whatever is printed to the instructor's terminal.
- :func:`without_surrogates`: lone surrogates (``"\\ud800"`` in a notebook's JSON) become U+FFFD,
  so no file can make writing a notebook fail with ``UnicodeEncodeError``.
- :func:`sanitize_notebook_outputs`: what nbconvert would render from a graded notebook, made
  inert before feedback is written. HTML goes through ``nh3`` (the Rust ``ammonia`` sanitiser)
  with a safelist: no scripts, event handlers, iframes, objects, forms or style attributes,
  links only to http, https and mailto, and images only as ``data:`` URIs (a remote image would
  be a beacon fired when the page opens; the feedback page loads nothing from anywhere). Markdown (outputs and cells) is rendered to HTML first,
  with nbconvert's own renderer, and then sanitised the same way, so ``[x](javascript:...)`` dies
  too. Active mime types (JavaScript, widgets, SVG, LaTeX, anything not on the list) are dropped,
  and every value that nbconvert's templates paste into an attribute unescaped (image data and
  sizes, stream names, cell tags) is checked. The instructor's ``autograded/`` copy keeps everything.
"""

from __future__ import annotations

import re
import unicodedata

import nbformat
import nh3
from nbformat import NotebookNode

# --- text that cannot be encoded ---------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (a str holds surrogates only unpaired)."""
    return _SURROGATE.sub("\ufffd", text)


def without_surrogates(value: object) -> object:
    """``value`` (JSON-like data: dicts, lists, strings) with lone surrogates replaced in every string and key.

    Iterative, so a deeply nested file cannot exhaust the stack here.
    """
    if isinstance(value, str):
        return replace_surrogates(value)
    root: list = [value]
    stack: list = [root]
    while stack:
        container = stack.pop()
        if isinstance(container, dict):
            for key in list(container):
                item = container[key]
                if isinstance(key, str) and _SURROGATE.search(key):
                    del container[key]
                    key = replace_surrogates(key)
                    container[key] = item
                if isinstance(item, str):
                    container[key] = replace_surrogates(item)
                elif isinstance(item, (dict, list)):
                    stack.append(item)
        elif isinstance(container, list):
            for index, item in enumerate(container):
                if isinstance(item, str):
                    container[index] = replace_surrogates(item)
                elif isinstance(item, (dict, list)):
                    stack.append(item)
    return root[0]


# --- grades.csv and the terminal --------------------------------------------------------------

_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[PX^_][^\x1b]*(\x1b\\)?|[@-Z\\-_])")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def strip_control(text: str) -> str:
    """``text`` without terminal escape sequences, control characters or bidirectional overrides.

    Line breaks and tabs become spaces: a grades file holds one line per student.
    """
    text = _ANSI.sub("", text)
    return "".join(" " if c in "\t\r\n" else c for c in text
                   if c in "\t\r\n" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))


def strip_escapes(text: str) -> str:
    """``text`` without terminal escapes, control characters or bidirectional overrides, keeping its lines.

    For multi-line text a kernel sent (an exception's value): line breaks and tabs stay, ``\\r`` goes.
    """
    text = _ANSI.sub("", text)
    return "".join(c for c in text
                   if c in "\t\n" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))


_SGR = re.compile(r"(\x1b\[[0-9;]{0,32}m)")


def keep_colours(text: str) -> str:
    """Multi-line kernel text (a traceback, a stream) with its colours (SGR escapes) and nothing else active.

    nbconvert renders colour escapes as HTML; every other escape (titles, clearing, links) and
    control character goes, as in :func:`strip_escapes`.
    """
    return "".join(piece if index % 2 else strip_escapes(piece) for index, piece in enumerate(_SGR.split(text)))


def safe_terminal_text(text: object, limit: int = 200) -> str:
    """``text`` as one printable line of at most ``limit`` characters: no escapes, controls or surrogates.

    Cut before it is cleaned, so a 20 MB exception name costs no more than ``limit`` characters' work.
    """
    raw = str(text)[: limit * 4]
    clean = strip_control(raw)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def safe_csv_cell(text: str) -> str:
    """A value that is safe in a CSV cell: printable, and never read as a formula.

    A cell that starts with ``= + - @``, a tab or a line break (after escapes are removed) gets a
    leading ``'``; a plain number such as ``-1.5`` is left as it is.
    """
    text = str(text)
    raw_start = text[:1]
    clean = strip_control(text)
    if _NUMBER.fullmatch(clean.strip()):
        return clean.strip()
    if raw_start in _FORMULA_START or clean.lstrip()[:1] in _FORMULA_START[:4]:
        return "'" + clean
    return clean


# --- feedback HTML ----------------------------------------------------------------------------

_TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align"}, "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"}, "table": {"border"}, "tr": {"align"}, "col": {"span"}, "colgroup": {"span"},
    "abbr": {"title"}, "code": {"class"}, "span": {"class"}, "div": {"class"}, "pre": {"class"},
}
_URL_SCHEMES = {"http", "https", "mailto", "data"}  # data: only for <img src> (see _attribute)
_DROPPED_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math", "form",
                    "textarea", "select", "button"}
_SAFE_CLASS = re.compile(r"[A-Za-z0-9 _-]*")
_MATHJAX_LINKS = re.compile(r"\\(href|url)(?![A-Za-z])")  # MathJax would turn these into live links

KEPT_MIME_TYPES = ("text/plain", "text/html", "text/markdown", "image/png", "image/jpeg", "image/gif")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
_SAFE_TAG = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*", re.I)


def _attribute(tag: str, name: str, value: str) -> str | None:
    if tag == "img" and name == "src":  # only inline images: a remote one is fetched when the page opens
        return value if _DATA_IMAGE.fullmatch(value.strip()) else None
    if name == "href" and value.strip().lower().startswith("data:"):
        return None
    if name == "class":
        return value if _SAFE_CLASS.fullmatch(value) else None
    if name in ("width", "height", "colspan", "rowspan", "start", "span", "border"):
        return value if value.strip().isdigit() else None
    return value


def clean_html(html: str) -> str:
    """``html`` with only inert markup left (see the module docstring)."""
    cleaned = nh3.clean(str(html), tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_URL_SCHEMES,
                        clean_content_tags=_DROPPED_CONTENT, attribute_filter=_attribute,
                        link_rel="noopener noreferrer nofollow", strip_comments=True)
    return _MATHJAX_LINKS.sub(r"\\mathrm{\1}", cleaned)


def markdown_to_safe_html(markdown: str) -> str:
    """Render ``markdown`` as nbconvert would, then sanitise the HTML."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return clean_html(markdown2html_mistune(str(markdown)))


def _as_markdown_block(html: str) -> str:
    """Sanitised HTML in a form that renders as itself when nbconvert treats it as Markdown again.

    One line inside one ``<div>``: CommonMark passes an HTML block through untouched until a blank
    line, and ``&#10;`` keeps line breaks inside ``<pre>``.
    """
    return '<div class="sanitized-markdown">' + html.replace("\r", "").replace("\n", "&#10;") + "</div>"


def _text(value: object) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _image(value: object) -> str | None:
    text = _text(value)
    return text if _BASE64.fullmatch(text) else None


def _clean_metadata(metadata: object) -> dict:
    """Only whole-number sizes: nbconvert pastes them into ``<img width=...>`` unquoted."""
    kept: dict = {}
    if not isinstance(metadata, dict):
        return kept
    for key in ("width", "height"):
        if isinstance(metadata.get(key), int) and not isinstance(metadata.get(key), bool):
            kept[key] = metadata[key]
    for mime in ("image/png", "image/jpeg", "image/gif"):
        inner = _clean_metadata(metadata.get(mime)) if isinstance(metadata.get(mime), dict) else {}
        if inner:
            kept[mime] = inner
    return kept


def _clean_data(data: object) -> dict:
    bundle: dict = {}
    if not isinstance(data, dict):
        return {"text/plain": "[output removed: not a valid output]"}
    for mime in KEPT_MIME_TYPES:
        if mime not in data:
            continue
        if mime == "text/plain":
            bundle[mime] = _text(data[mime])
        elif mime == "text/html":
            bundle[mime] = clean_html(_text(data[mime]))
        elif mime == "text/markdown":
            bundle.setdefault("text/html", markdown_to_safe_html(_text(data[mime])))
        elif (image := _image(data[mime])) is not None:
            bundle[mime] = image
    if not bundle:
        dropped = ", ".join(sorted(str(k) for k in data))[:200]
        bundle["text/plain"] = f"[output removed from feedback: {dropped or 'empty'}]"
    return bundle


def _clean_output(output: object) -> NotebookNode | None:
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return nbformat.v4.new_output("stream", name=name, text=keep_colours(_text(output.get("text"))))
    if kind == "error":
        traceback = output.get("traceback")
        return nbformat.v4.new_output("error", ename=strip_control(_text(output.get("ename"))),
                                      evalue=strip_escapes(_text(output.get("evalue"))),
                                      traceback=[keep_colours(_text(t)) for t in traceback] if isinstance(traceback, list) else [])
    if kind in ("display_data", "execute_result"):
        cleaned = nbformat.v4.new_output(kind, data=_clean_data(output.get("data")),
                                         metadata=_clean_metadata(output.get("metadata")))
        if kind == "execute_result":
            count = output.get("execution_count")
            cleaned["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
        return cleaned
    return None


def _clean_tags(metadata: dict) -> None:
    tags = metadata.get("tags")
    if tags is not None:
        metadata["tags"] = [t for t in tags if isinstance(t, str) and _SAFE_TAG.fullmatch(t)] \
            if isinstance(tags, list) else []


def sanitize_notebook_outputs(notebook: NotebookNode) -> NotebookNode:
    """A copy of ``notebook`` that is safe to render as feedback (see the module docstring).

    Code cells keep their source (nbconvert escapes it) and get sanitised outputs; Markdown cells
    are rendered and sanitised; raw cells lose their format, so nbconvert leaves them out;
    attachments and the notebook's widget state are dropped.
    """
    clean = nbformat.from_dict(notebook)
    clean.metadata.pop("widgets", None)
    for cell in clean.cells:
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = nbformat.from_dict({})
        _clean_tags(cell.metadata)
        cell.pop("attachments", None)
        if cell.get("cell_type") == "code":
            outputs = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
            cell["outputs"] = [o for o in (_clean_output(out) for out in outputs) if o is not None]
        elif cell.get("cell_type") == "markdown":
            cell["source"] = _as_markdown_block(markdown_to_safe_html(_text(cell.get("source"))))
        elif cell.get("cell_type") == "raw":
            cell.metadata.pop("format", None)
            cell.metadata.pop("raw_mimetype", None)
    return clean
