# Westron developer commands. `make demo` and `make test` work on a fresh machine:
# they create .venv and install everything from PyPI (torch pinned to its CPU build).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test check-copies fix-copies benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# The main job until training lands: build a tiny demo checkpoint and translate with it.
demo: setup
	$(VENV)/bin/westron demo

test: setup
	$(PY) utils/check_copies.py
	$(PY) -m pytest -q

check-copies: setup
	$(PY) utils/check_copies.py

fix-copies: setup
	$(PY) utils/check_copies.py --fix

clean:
	rm -rf $(VENV) demo-model .pytest_cache
