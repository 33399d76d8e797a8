# Two entry points: `make demo` (install, then run the full demo) and `make test`.
PYTHON ?= python3

.PHONY: system install install-test demo test

system:
	bash scripts/install-system.sh

install: system
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[models,export]"

install-test: system
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[test]"

demo: install
	stpe demo

test: install-test
	$(PYTHON) -m pytest -q
