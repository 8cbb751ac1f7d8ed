# Two commands for a fresh machine: `make lab` and `make test` (see README.md).
# Everything installs into .venv with the versions pinned in constraints.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
PIP_INSTALL := $(BIN)/python -m pip install --constraint constraints.txt
# One file per worker: a file's module fixtures (a graded class) are built once, and a file's tests keep their order.
PYTEST_ARGS ?= -n auto --dist loadfile
LAB_ARGS ?=
# Jupyter refuses to run as root without a flag; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

# nbgrader starts `alembic` as a subprocess, so the venv's bin/ must be on PATH.
export PATH := $(BIN):$(PATH)

# nbgrader's JupyterLab extension does not work with JupyterLab >= 4.3 (nbgrader issue #1948): students
# would see a broken extension. It is disabled (and locked) for this venv only; instructors use the
# nbgrader command line, which is unaffected. Check with `.venv/bin/jupyter labextension list`.
LAB_DISABLED := @jupyter/nbgrader
DISABLE_LAB_EXTENSIONS := $(BIN)/jupyter labextension disable --level=sys_prefix $(LAB_DISABLED) >/dev/null 2>&1

LAB_STAMP := $(VENV)/.installed-lab
TEST_STAMP := $(VENV)/.installed-test

.PHONY: lab test notebooks clean-notebooks install install-test benchmark help

help:
	@echo "make lab        install into .venv and start JupyterLab on your own copy, my-notebooks/"
	@echo "make test       install into .venv (with test tools) and run the whole suite"
	@echo "make notebooks  regenerate notebooks/ from solutions/ through nbgrader"
	@echo "make benchmark  time the lessons, the loops (07, 08), grading (local and Dask) and the class report"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(LAB_STAMP): $(BIN)/python pyproject.toml tools/pyproject.toml constraints.txt
	$(PIP_INSTALL) --editable ".[lab]" --editable ./tools
	$(DISABLE_LAB_EXTENSIONS)
	@touch $@

$(TEST_STAMP): $(BIN)/python pyproject.toml tools/pyproject.toml constraints.txt
	$(PIP_INSTALL) --editable ".[lab,test]" --editable ./tools
	$(DISABLE_LAB_EXTENSIONS)
	@touch $@ $(LAB_STAMP)

install: $(LAB_STAMP)
install-test: $(TEST_STAMP)

# Students work in their own git-ignored copy, made on the first run and only topped up with new files
# later, so `git pull` never conflicts with their answers; the same step turns JupyterLab's news pop-up off.
MY_NOTEBOOKS ?= my-notebooks

# The student's server loads none of nbgrader's server extensions (course_tools.workspace --lab).
lab: $(LAB_STAMP)
	$(BIN)/python -m course_tools.workspace --source notebooks --target $(MY_NOTEBOOKS) --lab $(ROOT_FLAG) $(LAB_ARGS)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

notebooks: $(LAB_STAMP)
	$(BIN)/course release

clean-notebooks: $(LAB_STAMP)
	$(BIN)/course clean

benchmark: $(TEST_STAMP)
	$(BIN)/python benchmarks/lesson_notebooks.py
	$(BIN)/python benchmarks/epoch_loop.py
	$(BIN)/python benchmarks/loop_at_scale.py
	$(BIN)/python benchmarks/grading.py
	$(BIN)/python benchmarks/report.py
