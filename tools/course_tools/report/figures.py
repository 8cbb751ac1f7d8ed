"""The report's figures: matplotlib, drawn with the Agg renderer, returned as ``data:image/png`` URIs.

Figures are built as :class:`matplotlib.figure.Figure` on an Agg canvas, never through pyplot:
no global state, no GUI backend, nothing left open after a report.
"""

from __future__ import annotations

import base64
import io
import textwrap

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from course_tools.report.across import CourseReport
from course_tools.report.summary import ExerciseSummary, Scores

WIDTH_IN = 8.0
DPI = 110
BAR = "#4c72b0"
FULL = "#55a868"
UNEXPLAINED = "#9a9a9a"
LABEL_CHARACTERS = 48  # a diagnosis's one-line explanation, wrapped to this width beside its bar


def data_uri(figure: Figure) -> str:
    """The figure as a base64 PNG data URI (the figure is rendered once, then dropped)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(text: str) -> str:
    """Text as matplotlib should print it: a '$' is a dollar sign, never the start of mathtext."""
    return text.replace("$", r"\$")


def _points(value: float) -> str:
    return f"{round(value, 2):g}"


def score_histogram(scores: Scores) -> str:
    """Students per score, full marks in green, the median as a dashed line."""
    figure = Figure(figsize=(WIDTH_IN, 3.2))
    axes = figure.add_subplot()
    bins = scores.histogram
    one_per_point = bool(bins) and bins[-1].low == bins[-1].high
    for bar in bins:
        full = one_per_point and bar is bins[-1]
        width = 1.0 if full else bar.high - bar.low
        axes.bar(bar.low, bar.students, width=width * 0.92, align="edge", color=FULL if full else BAR)
    if scores.median is not None:
        # With one bar per point, a score's bar is centred at score + 0.46: draw the median on that scale.
        axes.axvline(scores.median + (0.46 if one_per_point else 0.0), color="#c44e52", linestyle="--", linewidth=1.5,
                     label=f"median {_points(scores.median)}")
        axes.legend(loc="upper left", frameon=False)
    if one_per_point:
        axes.set_xticks([bar.low + max(bar.high - bar.low, 1.0) * 0.46 for bar in bins],
                        [_points(bar.low) for bar in bins])
    full_marks = "; green: full marks" if one_per_point else ""
    axes.set_xlabel(f"score (points out of {_points(scores.max_score)}{full_marks})")
    axes.set_ylabel("students")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    return data_uri(figure)


def diagnosis_bars(exercise: ExerciseSummary) -> str:
    """One horizontal bar per diagnosis: the share of graded students who lost points to it, largest on top."""
    counts = exercise.diagnoses
    figure = Figure(figsize=(WIDTH_IN, 0.9 + 0.48 * len(counts)))
    axes = figure.add_subplot()
    labels = [_label(textwrap.fill(c.what if c.known else f"{c.code} (not in the catalogue)", LABEL_CHARACTERS))
              for c in counts]
    positions = range(len(counts))
    colours = [UNEXPLAINED if c.code is None or not c.known else BAR for c in counts]
    axes.barh(list(positions), [c.share for c in counts], color=colours, height=0.7)
    for position, count in zip(positions, counts):
        axes.annotate(f" {count.students} ({_points(count.points_lost)} pts)", (count.share, position), va="center",
                      fontsize=9)
    axes.set_yticks(list(positions), labels, fontsize=9)
    axes.invert_yaxis()
    axes.set_xlim(0, min(1.0, max(c.share for c in counts) * 1.25 + 0.05))
    axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.set_xlabel("share of graded students who lost points to it (students, points lost)")
    axes.set_ylabel("diagnosis")
    axes.spines[["top", "right"]].set_visible(False)
    return data_uri(figure)


def family_trends(course: CourseReport) -> str:
    """One line per diagnosis family: the share of students who lost points to it, lesson by lesson."""
    figure = Figure(figsize=(WIDTH_IN, 3.8))
    axes = figure.add_subplot()
    ticks = list(range(len(course.lessons)))
    markers = "osD^v<>pP*Xh"
    for number, trend in enumerate(course.families):
        values = [float("nan") if point.share is None else point.share for point in trend.points]
        axes.plot(ticks, values, marker=markers[number % len(markers)], linewidth=1.6, label=_label(trend.family))
    axes.set_xticks(ticks, [_label(lesson.replace("_", " ", 1)) for lesson in course.lessons], rotation=20,
                    ha="right", fontsize=9)
    axes.set_xlim(-0.3, len(ticks) - 0.7)
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.set_xlabel("lesson")
    axes.set_ylabel("students who lost points to it")
    if course.families:
        axes.legend(title="diagnosis family", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    return data_uri(figure)
