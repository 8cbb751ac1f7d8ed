"""One place pins versions: pyproject.toml names them, constraints.txt pins them, environment.yml follows."""

import re
import tomllib

from tests.helpers import ROOT

CONDA_NAMES = {"torch": "pytorch-cpu"}  # conda-forge's CPU-only PyTorch keeps the Binder image small


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])


PYPROJECTS = (ROOT / "pyproject.toml", ROOT / "tools" / "pyproject.toml")  # student, instructor
OUR_DISTRIBUTIONS = {"course-utils", "course-tools"}


def pyproject_names() -> set[str]:
    names = set()
    for path in PYPROJECTS:
        project = tomllib.loads(path.read_text())["project"]
        requirements = project["dependencies"] + [r for extra in project.get("optional-dependencies", {}).values()
                                                  for r in extra]
        names |= {requirement_name(r) for r in requirements}
    return names - OUR_DISTRIBUTIONS


def constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonical(name)] = version.strip()
    return pins


def conda_pins() -> dict[str, str]:
    pins = {}
    for match in re.finditer(r"^\s+- ([A-Za-z0-9_.-]+)=([^\s=]+)\s*$", (ROOT / "environment.yml").read_text(), re.M):
        pins[canonical(match.group(1))] = match.group(2)
    return pins


def test_every_dependency_is_pinned_and_every_pin_is_a_dependency():
    assert pyproject_names() == set(constraint_pins())


def test_pyproject_pins_no_versions_itself():
    for path in PYPROJECTS:
        project = tomllib.loads(path.read_text())["project"]
        requirements = project["dependencies"] + [r for extra in project.get("optional-dependencies", {}).values()
                                                  for r in extra]
        assert not [r for r in requirements if re.search(r"[<>=~]", r)], f"{path}: versions live in constraints.txt only"


def test_student_package_needs_no_jupyter():
    """Colab installs the root distribution alone: only what a lesson notebook and a grading kernel need."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {requirement_name(r) for r in project["dependencies"]} == {
        "torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "scikit-learn"}


def test_environment_yml_lists_the_same_packages_and_versions():
    expected = {canonical(CONDA_NAMES.get(name, name)): version for name, version in constraint_pins().items()}
    found = {name: version for name, version in conda_pins().items() if name != "python"}
    assert found == expected


def test_make_and_ci_use_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert "--constraint constraints.txt" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "CI=true" in ci and "set -euo pipefail" in ci


def test_readme_gives_exactly_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
