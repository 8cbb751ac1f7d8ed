"""Every figure of every lesson shows as an image in an executed notebook, never as ``<Figure size ...>``.

Each lesson's solution notebook (the student notebook with every answer filled in, less the quiz
widget, which draws nothing) runs headless in a fresh kernel with a probe cell first: the probe counts the matplotlib figures each cell creates (lesson cells, course
helpers and widgets alike). A last cell prints those counts. Every cell that created a figure must
have an ``image/png`` output, and no output may be a bare ``<Figure size ...>`` text.
"""

import json

import nbformat
import pytest

from course_tools.notebooks import read_notebook
from tests.conftest import LESSONS
from tests.helpers import ROOT, error_outputs, execute

pytestmark = pytest.mark.notebook

PROBE = '''import matplotlib.figure as _figure_module
from IPython import get_ipython as _get_ipython

_figures_by_source = {}
_running = [""]
_original_figure_init = _figure_module.Figure.__init__


def _remember_the_running_cell(info):
    _running[0] = info.raw_cell


def _counting_figure_init(self, *args, **kwargs):
    _original_figure_init(self, *args, **kwargs)
    _figures_by_source[_running[0]] = _figures_by_source.get(_running[0], 0) + 1


_get_ipython().events.register("pre_run_cell", _remember_the_running_cell)
_figure_module.Figure.__init__ = _counting_figure_init'''
REPORT = "import json as _json\nprint(_json.dumps(_figures_by_source))"


def bare_figure_texts(cell) -> list[str]:
    """The outputs of ``cell`` that show a figure only as its repr text."""
    found = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        text = "".join(data.get("text/plain", "")) if output.get("output_type") != "stream" else output.get("text", "")
        if "<Figure size" in text and "image/png" not in data:
            found.append(text.strip()[:80])
    return found


def has_image(cell) -> bool:
    return any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_figure_renders_as_an_image(lesson, tmp_path):
    solved = read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb")
    solved.cells.insert(0, nbformat.v4.new_code_cell(PROBE, id="figure-probe"))
    solved.cells.append(nbformat.v4.new_code_cell(REPORT, id="figure-report"))
    notebook = execute(solved, cwd=tmp_path)
    assert error_outputs(notebook) == {}
    report = "".join(output.get("text", "") for output in notebook.cells[-1].outputs)
    created = json.loads(report)  # cell source -> figures it created
    lesson_cells = [cell for cell in notebook.cells[1:-1] if cell.cell_type == "code"]

    bare = {cell.id: texts for cell in lesson_cells if (texts := bare_figure_texts(cell))}
    assert bare == {}, f"{lesson}: figures shown only as text (end the cell with plt.show() or use show_figure)"
    drawing = [cell for cell in lesson_cells if created.get(cell.source)]
    missing = [cell.id for cell in drawing if not has_image(cell)]
    assert missing == [], f"{lesson}: cells that create a figure but show no image"
    if lesson.startswith(("01_", "07_")):  # the playground (01) and the history plot (07) draw through course_utils
        assert drawing, f"{lesson}: the probe saw no figure at all"
