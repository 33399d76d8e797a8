# Two entry points: `make demo` (install, then run the full demo) and `make test`.
# Everything installs into a virtual environment in .venv (Debian's Python refuses system-wide
# pip installs); torch is pinned to the CPU build so pip never pulls the CUDA wheels, and
# constraints.txt pins the rest to the versions last verified.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: system venv install install-test demo test mutants

system:
	bash scripts/install-system.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: system $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[models,export]" -c constraints.txt

install-test: system $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]" -c constraints.txt

demo: install
	$(BIN)/stpe demo

test: install-test
	$(BIN)/python -m pytest -q

# Mutation testing (docs/mutation.md): slow, not part of CI; run before each release.
# `make mutants MUTANTS='pipeline.camera.*'` runs only the mutants whose names match.
mutants: install-test
	$(BIN)/pip install -q -e ".[test,mutation]"
	$(BIN)/mutmut run $(MUTANTS)
	$(BIN)/mutmut results
