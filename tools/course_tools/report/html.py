"""Render the class report as one self-contained HTML page: inline CSS, PNG data URIs, no scripts at all.

Every text that comes from a student or a result (student ids, reasons, repairs, messages) and
every catalogue text is escaped with :func:`html.escape`. The page's Content-Security-Policy forbids
scripts and any fetch: it reads the same offline, from a USB stick or an e-mail attachment.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from urllib.parse import quote

from course_tools.report.figures import diagnosis_bars, family_trends, score_histogram
from course_tools.report.across import CourseReport, LessonScore
from course_tools.report.summary import ClassReport, Confusion, ExerciseSummary, Loss, StudentLine

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0;
       background: #fafafa; }
main { max-width: 980px; margin: 0 auto; padding: 1.2rem 1.5rem 3rem; background: #fff; }
h1 { font-size: 1.6rem; margin: 0.2rem 0 0.4rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #e4e4e4; padding-bottom: 0.2rem; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 0.3rem; }
nav a { margin-right: 1rem; }
.lead { color: #444; margin: 0 0 0.8rem; }
.tiles { display: flex; gap: 0.8rem; flex-wrap: wrap; margin: 0.8rem 0; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: 0.4rem 0.9rem; min-width: 7rem; }
.tile b { display: block; font-size: 1.4rem; }
.tile.warn { border-color: #e0a800; background: #fff8e1; }
figure { margin: 0.6rem 0; }
figure img { max-width: 100%; height: auto; }
figcaption, .meta, .note { color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #e6e6e6; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; white-space: nowrap; }
code { background: #f2f2f2; padding: 0 0.25rem; border-radius: 3px; font-size: 0.88em; }
ol.confusions { padding-left: 1.2rem; }
ol.confusions li { margin-bottom: 1rem; }
.hint { border-left: 4px solid #4c72b0; background: #f4f7fc; padding: 0.3rem 0.7rem; margin: 0.3rem 0; }
.status { font-weight: 600; color: #a33; }
.unknown { color: #a33; }
details summary { cursor: pointer; color: #355; }
ul.losses { margin: 0; padding-left: 1.1rem; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _pts(value: float | None) -> str:
    """Points as people write them: 7, 2.5, 2.89 (the JSON keeps more digits)."""
    return "–" if value is None else f"{round(value, 2):g}"


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _figure(uri: str, alt: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{_e(alt)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], numeric: Iterable[int] = ()) -> str:
    """A table; ``headers`` are plain text, each cell is HTML the caller has already escaped."""
    right = set(numeric)
    head = "".join(f'<th{" class=num" if i in right else ""}>{_e(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in right else ""}>{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _diagnosis(code: str | None, what: str, known: bool) -> str:
    if code is None:
        return f"<em>{_e(what)}</em>"
    if not known:
        return f'<code>{_e(code)}</code> <span class="unknown">(not in the catalogue)</span>'
    return f"{_e(what)} <code>{_e(code)}</code>"


def _scores(report: ClassReport) -> str:
    scores = report.scores
    not_graded = scores.submissions - scores.graded
    tiles = [("graded", f"{scores.graded} of {scores.submissions}", ""),
             ("median score", f"{_pts(scores.median)} / {_pts(scores.max_score)}", ""),
             ("full marks", f"{scores.full_marks} ({_pct(_ratio(scores.full_marks, scores.graded))})", ""),
             ("not graded", str(not_graded), " warn" if not_graded else "")]
    html = '<div class="tiles">' + "".join(f'<div class="tile{cls}">{_e(label)}<b>{_e(value)}</b></div>'
                                           for label, value, cls in tiles) + "</div>"
    if scores.graded:
        html += _figure(score_histogram(scores), "histogram of the graded students' scores",
                        f"Scores of the {scores.graded} graded submissions; dashed line: the median.")
    else:
        html += '<p class="note">No submission could be graded.</p>'
    return html


def _exercise(exercise: ExerciseSummary, graded: int) -> str:
    html = (f"<h3>{_e(exercise.title)} <code>{_e(exercise.grade_id)}</code></h3>"
            f'<p class="meta">{_pts(exercise.max_points)} points · mean {_pts(exercise.mean_points)} · '
            f"full points: {exercise.full_points} of {graded} ({_pct(exercise.full_share)})</p>")
    if not exercise.diagnoses:
        return html + '<p class="note">Every graded student got full points.</p>'
    html += _figure(diagnosis_bars(exercise), f"bar chart of why students lost points in {exercise.title}",
                    "Why students lost points here: each lost exercise counts for its main diagnosis.")
    rows = [[_diagnosis(c.code, c.what, c.known), str(c.students), _pct(c.share), _pts(c.points_lost)]
            for c in exercise.diagnoses]
    return html + ("<details><summary>the numbers</summary>"
                   + _table(["diagnosis", "students", "share", "points lost"], rows, numeric=(1, 2, 3))
                   + "</details>")


def _confusion(confusion: Confusion) -> str:
    where = ", ".join(confusion.exercises)
    head = _diagnosis(confusion.code, confusion.what, confusion.known)
    html = (f"<li><b>{head}</b>"
            f'<div class="meta">{confusion.students} students ({_pct(confusion.share)}) · '
            f"{_pts(confusion.points_lost)} points lost, {_pct(confusion.share_of_lost)} of all points the class lost"
            f" · {_e(where)} · family: {_e(confusion.family)}</div>")
    if confusion.hint:
        html += f'<div class="hint">Hint students received: {_e(confusion.hint)}</div>'
    if confusion.section:
        html += f"<div>Section to revisit: <b>{_e(confusion.section)}</b></div>"
    return html + "</li>"


def _losses(losses: tuple[Loss, ...]) -> str:
    if not losses:
        return ""
    items = []
    for loss in losses:
        why = _diagnosis(loss.code, loss.what, loss.known)
        if loss.message:
            why += f": <code>{_e(loss.message)}</code>"
        items.append(f"<li>{_e(loss.exercise)} (−{_pts(loss.points_lost)}): {why}</li>")
    return '<ul class="losses">' + "".join(items) + "</ul>"


def _repairs(line: StudentLine) -> str:
    return "<br>".join(_e(repair) for repair in line.repairs) or "–"


def _help(report: ClassReport) -> str:
    html = "<h3>Lowest scores</h3>"
    if report.lowest:
        rows = [[_e(line.student), f"{_pts(line.score)} / {_pts(line.max_score)}", _losses(line.losses)]
                for line in report.lowest]
        html += _table(["student", "score", "where the points went"], rows, numeric=(1,))
        if report.also_at_cutoff:
            html += (f'<p class="note">{report.also_at_cutoff} more graded students also scored '
                     f"{_pts(report.lowest[-1].score)} / {_pts(report.lowest[-1].max_score)}.</p>")
    else:
        html += '<p class="note">Every graded student got full marks.</p>'
    html += ("<h3>Not ok: invalid (no score), crashed, timed out, tampered or lost</h3>"
             '<p class="note">All but the invalid ones are scored with the points of the cells that finished.</p>')
    if report.not_graded:
        rows = [[_e(line.student), f'<span class="status">{_e(line.status)}</span>', _e(line.reason or "–"),
                 _repairs(line)] for line in report.not_graded]
        html += _table(["student", "status", "reason", "repairs"], rows)
    else:
        html += '<p class="note">Every submission ran to its end.</p>'
    if report.late:
        html += "<h3>Late work</h3>"
        rows = [[_e(line.student), _e(line.submitted_at or "–"),
                 f"{line.late_by:g} h" if line.late_by > 0 else "late (LMS; no due date in the gradebook)",
                 _pts(line.penalty), f"{_pts(line.score)} / {_pts(line.max_score)}"] for line in report.late]
        html += _table(["student", "handed in (UTC)", "late by", "penalty", "score"], rows, numeric=(3, 4))
    if report.stale_overrides:
        html += ("<h3>Stale formgrader grades: a new attempt came in</h3>"
                 '<p class="note">Review these students in formgrader: the grade given for the earlier attempt '
                 "was cleared.</p>")
        rows = [[_e(line.student), "<br>".join(_e(note) for note in line.stale_overrides)]
                for line in report.stale_overrides]
        html += _table(["student", "cleared"], rows)
    if report.renamed:
        html += (f'<p class="note">{report.renamed} notebook(s) were handed in under another name: recorded, '
                 "graded as the lesson's notebook, and not counted as repairs.</p>")
    if report.repaired:
        html += "<h3>Graded after a repair</h3>"
        rows = [[_e(line.student), f"{_pts(line.score)} / {_pts(line.max_score)}", _repairs(line)]
                for line in report.repaired]
        html += _table(["student", "score", "repairs"], rows, numeric=(1,))
    return html


def _score_cell(score: LessonScore) -> str:
    if score.fraction is not None:
        hue = round(120 * score.fraction)
        return (f'<span style="background:hsl({hue},65%,85%);padding:0 0.3rem;border-radius:3px">'
                f"{_pct(score.fraction)}</span>")
    if score.status == "missing":
        return '<span class="note">–</span>'
    return f'<span class="status">{_e(score.status)}</span>'


def across_section(course: CourseReport) -> str:
    """The cross-lesson view: each family's trend (figure and numbers) and one line per student."""
    html = ""
    if course.families:
        html += _figure(family_trends(course), "line chart of diagnosis families across lessons",
                        "Share of each lesson's graded students who lost points to a family of mistakes "
                        "(no point: that lesson cannot diagnose the family).")
        rows = [[_e(trend.family)] + [f"{_pct(p.share)} ({p.students})" for p in trend.points]
                for trend in course.families]
        html += ("<details><summary>the numbers</summary>"
                 + _table(["family"] + list(course.lessons), rows, numeric=range(1, len(course.lessons) + 1))
                 + "</details>")
    rows = [[_e(row.student)] + [_score_cell(score) for score in row.lessons] + [_pct(row.mean_fraction)]
            for row in course.students]
    html += "<h3>One line per student</h3>"
    return html + _table(["student"] + list(course.lessons) + ["mean"], rows,
                         numeric=range(1, len(course.lessons) + 2))


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


FOOTER = ("<footer class=note><h2>How these numbers are made</h2><p>Scores, shares, the median and the mean are "
          "over the graded submissions: every status but <code>invalid</code>, as in the gradebook (a timed-out or "
          "crashed notebook keeps the points of the cells that finished; scores are after late penalties). "
          "The mean is the same in <code>course-grades.csv</code>, this page, its JSON and "
          "<code>course grade</code>'s summary. An untouched exercise (<code>not-attempted</code>) is no "
          "confusion. An exercise that lost points charges them to the main "
          "diagnosis its failure message names (the first); one that names none counts as “no diagnosis named”. "
          "The explanations, hints and sections come from the course's diagnosis catalogue "
          "(<code>course_utils.diagnoses</code>), the same text the students' feedback shows.</p>")


def render_lesson(report: ClassReport, across: str | None = None) -> str:
    """The lesson's class report page; ``across`` is :func:`across_section`'s HTML when 2+ lessons are graded.

    The cross-lesson section is rendered once and shared by every lesson's page.
    """
    scores = report.scores
    links = [("scores", "Scores"), ("exercises", "Per exercise"), ("confusions", "Common confusions"),
             ("help", "Students who may need help")] + ([("across", "Across lessons")] if across else [])
    body = [f"<h1>Class report · {_e(report.lesson)}</h1>",
            f'<p class="lead">{scores.submissions} submissions, {scores.graded} graded · mean '
            f"{_pts(scores.mean)} · median {_pts(scores.median)} of {_pts(scores.max_score)} points · "
            f"{scores.full_marks} with full marks</p>",
            "<nav>" + "".join(f'<a href="#{anchor}">{_e(text)}</a>' for anchor, text in links) + "</nav>",
            '<section id="scores"><h2>Scores</h2>' + _scores(report) + "</section>",
            '<section id="exercises"><h2>Per exercise</h2>'
            + ("".join(_exercise(e, scores.graded) for e in report.exercises)
               or '<p class="note">No graded exercise.</p>') + "</section>",
            '<section id="confusions"><h2>Common confusions</h2>'
            + ('<p class="lead">The diagnoses that cost the class the most points.</p><ol class="confusions">'
               + "".join(_confusion(c) for c in report.confusions) + "</ol>"
               if report.confusions else '<p class="note">No points were lost to a named diagnosis.</p>')
            + "</section>",
            '<section id="help"><h2>Students who may need help</h2>' + _help(report) + "</section>"]
    if across:
        body.append('<section id="across"><h2>Across lessons</h2>' + across + "</section>")
    footer = FOOTER
    if report.unknown_codes:
        footer += ("<p>Codes named in the results but missing from today's catalogue (shown by their code): "
                   + ", ".join(f"<code>{_e(code)}</code>" for code in report.unknown_codes) + ".</p>")
    body.append(footer + f"<p>Source: <code>.course-grade/{_e(report.lesson)}/results.json</code>.</p></footer>")
    return _page(f"Class report · {report.lesson}", "".join(body))


def render_course(course: CourseReport, across: str | None = None) -> str:
    """The course page: the cross-lesson view alone, with links to each lesson's report."""
    links = " · ".join(f'<a href="{_e(quote(lesson))}.html">{_e(lesson)}</a>' for lesson in course.lessons)
    across = across_section(course) if across is None else across
    body = (f"<h1>Course report · {len(course.lessons)} lessons</h1><p class=\"lead\">Lesson reports: {links}</p>"
            '<section id="across"><h2>Across lessons</h2>' + across + "</section>" + FOOTER
            + "</footer>")
    return _page("Course report", body)
