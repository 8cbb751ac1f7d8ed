"""Launch anywhere: one repository address, Colab and Binder links from it, Binder and lab set-up."""

import os
import re
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


# --- the contributor docs lead somewhere: every relative link, and every file they name, exists ---------

DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
COURSE_PATH = re.compile(r"(?<![\w/.-])((?:course_utils|tools|tests|solutions|notebooks|docs)/[\w./-]*)")
TEMPLATE = re.compile(r"NN|exN|09|99")  # lessonNN, exN.py, the recipe's lesson 09 and the test's lesson 99


def prose(page: Path) -> str:
    """The page without its code: code blocks and inline code hold no links."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings."""
    headings = re.findall(r"^#+\s+(.+)$", page.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", DOCS, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_of_the_docs_resolve(page):
    for target in LINK.findall(prose(page)):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        assert resolved.exists(), f"{page.name}: {target} leads nowhere"
        assert not anchor or anchor in anchors(resolved), f"{page.name}: no heading for #{anchor}"


@pytest.mark.parametrize("page", [ROOT / "CONTRIBUTING.md", ROOT / "docs" / "architecture.md"], ids=lambda page: page.name)
def test_the_files_the_contributor_docs_name_exist(page):
    named = {path.rstrip(".") for path in COURSE_PATH.findall(page.read_text(encoding="utf-8"))}
    missing = sorted(path for path in named if not TEMPLATE.search(path) and not (ROOT / path).exists())
    assert named and not missing, f"{page.name} names files that are not there: {missing}"
