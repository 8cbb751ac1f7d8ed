"""Launch anywhere: one repository address, Colab and Binder links from it, Binder and lab set-up."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from course_tools import links
from tests.conftest import LESSONS
from tests.helpers import ROOT


def test_the_address_lives_in_links_and_pyproject_repeats_it():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == links.REPOSITORY_URL
    assert links.github_slug() == "torch-loop-course/pytorch-training-loop"


def test_colab_and_binder_urls():
    assert links.colab_url("notebooks/01_x/01_x.ipynb") == (
        f"https://colab.research.google.com/github/{links.github_slug()}/blob/main/notebooks/01_x/01_x.ipynb")
    assert links.binder_url() == f"https://mybinder.org/v2/gh/{links.github_slug()}/main?urlpath=lab%2Ftree%2Fnotebooks"
    assert links.pip_requirement() == f"course-utils @ git+{links.REPOSITORY_URL}@main"


@pytest.mark.parametrize("url", ["https://gitlab.com/a/b", "https://github.com/only-owner", "https://github.com/a/b/c"])
def test_bad_repository_addresses_are_refused(url):
    with pytest.raises(ValueError, match="repository address"):
        links.github_slug(url)


@pytest.mark.parametrize("path", ["", "/", "../secret.ipynb"])
def test_colab_url_needs_a_path_inside_the_repository(path):
    with pytest.raises(ValueError, match="inside the repository"):
        links.colab_url(path)


def test_readme_has_the_binder_badge_and_a_colab_badge_per_lesson():
    readme = (ROOT / "README.md").read_text()
    assert links.binder_badge_markdown() in readme.split("## Two commands")[0], "the Binder badge belongs at the top"
    for lesson in LESSONS:
        assert links.colab_url(f"notebooks/{lesson}/{lesson}.ipynb") in readme, f"README: no Colab link for {lesson}"


def test_binder_installs_the_course_and_hides_the_broken_extension():
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists(), \
        "a binder/ folder would make Binder ignore environment.yml and postBuild at the root"
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK), "postBuild must be executable"
    text = post_build.read_text()
    assert "pip install --no-deps --editable ." in text
    assert "labextension disable --level=sys_prefix @jupyter/nbgrader" in text
    assert "-e ." not in (ROOT / "environment.yml").read_text(), \
        "Binder builds environment.yml before the repository is copied in: install the package in postBuild"


def test_make_disables_nbgrader_lab_extension():
    makefile = (ROOT / "Makefile").read_text()
    assert "labextension disable --level=sys_prefix $(LAB_DISABLED)" in makefile
    assert makefile.count("$(DISABLE_LAB_EXTENSIONS)") == 2, "both install steps (lab and test) disable it"


def test_the_installed_lab_shows_no_nbgrader_extension_enabled():
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists() or Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip("checks the course's .venv as `make lab` installs it")
    result = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True, timeout=120)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "@jupyter/nbgrader" in line and " v" in line]
    assert lines and all("disabled" in line for line in lines), "run `make install`: " + "\n".join(lines)


def test_ci_installs_chromium_and_bubblewrap_only_when_missing():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "command -v chromium" in ci and "command -v bwrap" in ci
    assert "apt-get update" in ci and "apt-get install -y" in ci
    assert ci.index("apt-get install") < ci.index("make test")
