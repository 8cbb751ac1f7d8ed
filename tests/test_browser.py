"""Lesson 01 as a student uses it: JupyterLab in Debian's Chromium, driven by Playwright.

The test starts JupyterLab on a free localhost port with a fresh token, on a temporary copy of
lesson 01's student notebook (with the exercises answered, as a student who solved them would
have it), opens it, runs all cells from the Run menu, answers two quiz questions by clicking and
reads the feedback (right or wrong, and why; code in the choices rendered as code), moves the playground's batch-size slider and checks that the loss plot changes,
and saves screenshots under the test's tmp dir. JupyterLab is stopped at the end, whatever happens.

Skipped, with the reason, when Chromium (``apt-get install chromium``) or Playwright is missing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from course_tools.notebooks import read_notebook
from course_tools.workspace import install_lab_settings, lab_settings_dir, student_lab_command
from course_utils.playground import PLOT_CLASS, STATUS_CLASS
from course_utils.widgets import FEEDBACK_CLASS, QUESTION_CLASS, QUIZ_CLASS
from tests.helpers import ROOT, fill_answers, missing_tool

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
LESSON = "01_dataloader_batching"
START_TIMEOUT_S = 90
RUN_ALL_TIMEOUT_MS = 180_000
STEP_TIMEOUT_MS = 60_000
NOTIFICATION_PLUGIN = "@jupyterlab/apputils-extension:notification"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A running JupyterLab on a temp copy of lesson 01 (answers filled in); yields (base URL, token)."""
    if not CHROMIUM.exists():
        missing_tool(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium) to run the browser test")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing_tool("playwright is not installed (pip install -e '.[test]')")
    root = tmp_path / "notebooks"
    (root / LESSON).mkdir(parents=True)
    student = read_notebook(ROOT / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    nbformat.write(fill_answers(student, source), str(root / LESSON / f"{LESSON}.ipynb"))
    # Quiet, isolated JupyterLab: the course's own settings overrides (what `make lab` installs into the
    # venv, here into a temporary prefix) turn the news and update toasts off; user settings start empty.
    install_lab_settings(tmp_path / "prefix")
    settings = tmp_path / "lab-settings"
    port, token = _free_port(), uuid.uuid4().hex
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_PLATFORM_DIRS="1", OMP_NUM_THREADS="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # The student's server, as `make lab` starts it: none of nbgrader's server extensions.
    command = student_lab_command(root, [
        "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        f"--LabApp.app_settings_dir={lab_settings_dir(tmp_path / 'prefix')}"])
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "jupyterlab.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                                   start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(f"{base}/api/status?token={token}", process, log)
        yield base, token
    finally:
        _stop(process)


def _notification_defaults(base: str, token: str) -> dict:
    """The notification plugin's defaults as JupyterLab serves them (overrides change the schema's defaults)."""
    url = f"{base}/lab/api/settings/{NOTIFICATION_PLUGIN}?token={token}"
    with urllib.request.urlopen(url, timeout=10) as response:
        properties = json.load(response)["schema"]["properties"]
    return {key: spec.get("default") for key, spec in properties.items()}


def _run_all_cells(page) -> None:
    """Run > Run All Cells from the menu; once more if no cell started (the kernel was still connecting)."""
    started = ("() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
               ".some(p => /\\[(\\d+|\\*)\\]/.test(p.textContent))")
    for attempt in range(2):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(started, timeout=20_000)
            return
        except Exception:
            if attempt:
                raise


def test_a_student_runs_lesson_01_answers_the_quiz_and_plays(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, token = lab
    assert _notification_defaults(base, token)["fetchNews"] == "false", "the course settings turn the news off"
    server_log = (tmp_path / "jupyterlab.log").read_text()
    assert "nbgrader" not in server_log, "the student's server loaded an nbgrader server extension"
    expect.set_options(timeout=STEP_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.goto(f"{base}/lab/tree/{LESSON}/{LESSON}.ipynb?token={token}")
            notebook = page.locator(".jp-NotebookPanel").first
            expect(notebook).to_be_visible()
            # Wait, as a person does, until the status bar says the kernel is ready.
            expect(page.locator("#jp-main-statusbar")).to_contain_text(re.compile(r"Python 3 \(ipykernel\)\s*\|\s*Idle"))
            # No nbgrader menu or panel: its lab extension is disabled for students (make install, postBuild).
            expect(page.get_by_role("menuitem", name=re.compile("nbgrader|formgrader|assignment", re.I))).to_have_count(0)
            _run_all_cells(page)

            quiz = page.locator(f".{QUIZ_CLASS}")
            quiz.scroll_into_view_if_needed(timeout=RUN_ALL_TIMEOUT_MS)
            expect(quiz).to_be_visible(timeout=RUN_ALL_TIMEOUT_MS)
            page.wait_for_function(
                "() => ![...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'))",
                timeout=RUN_ALL_TIMEOUT_MS)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                  has_text="Traceback")
            assert errors.count() == 0, errors.first.inner_text()

            # The quiz: a right and a wrong choice, each with its explanation; code renders as code.
            feedback = quiz.locator(f".{FEEDBACK_CLASS}")
            questions = quiz.locator(f".{QUESTION_CLASS}")
            expect(questions).to_have_count(3)
            assert "`" not in quiz.inner_text(), "literal backticks in the quiz"
            expect(questions.nth(2).locator("code", has_text="generator")).to_have_count(1)
            questions.nth(0).get_by_role("button", name="(b)", exact=True).click()
            expect(feedback.nth(0)).to_contain_text("✓ (b) is right")
            expect(feedback.nth(0)).to_contain_text("1000 / 100 = 10")
            questions.nth(1).get_by_role("button", name="(a)", exact=True).click()
            expect(feedback.nth(1)).to_contain_text("✗ (a) is not right")
            expect(feedback.nth(1).locator("code", has_text="drop_last=True")).to_have_count(1)
            expect(feedback.nth(1)).not_to_contain_text("quiz_answers")
            quiz.screenshot(path=str(tmp_path / "quiz.png"))

            # The playground: move the batch-size slider one step, see the plot change.
            plot = page.locator(f".{PLOT_CLASS}")
            plot.scroll_into_view_if_needed()
            expect(plot).to_be_visible()
            status = page.locator(f".{STATUS_CLASS}")
            expect(status).to_contain_text("trained in")
            before_status = status.inner_text()
            before_image = plot.screenshot()
            batch_slider = page.locator(".widget-hslider", has_text="batch size").locator(".noUi-handle").first
            batch_slider.focus()
            batch_slider.press("ArrowLeft")  # batch size 100 -> 50
            expect(page.locator(".widget-hslider", has_text="batch size")).to_contain_text("50")
            expect(status).not_to_have_text(before_status)
            expect(status).to_contain_text("trained in")
            deadline = time.monotonic() + 15  # the new PNG is set before the status line; allow it to paint
            after_image = plot.screenshot()
            while after_image == before_image and time.monotonic() < deadline:
                page.wait_for_timeout(250)
                after_image = plot.screenshot()
            assert after_image != before_image, "the loss plot did not change after moving the slider"
            status.scroll_into_view_if_needed()  # the whole playground: sliders, plot and status line
            page.screenshot(path=str(tmp_path / "lesson01-playground.png"))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
            raise
        finally:
            browser.close()
    assert (tmp_path / "lesson01-playground.png").stat().st_size > 10_000
