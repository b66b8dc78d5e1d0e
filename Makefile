# Westron developer commands. `make demo` and `make test` work on a fresh machine:
# they create .venv and install everything from PyPI (torch pinned to its CPU build).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test check-copies fix-copies benchmark benchmark-env clean

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

# The copy checker is standard library only: it needs no virtual environment.
check-copies:
	$(PYTHON) utils/check_copies.py

fix-copies:
	$(PYTHON) utils/check_copies.py --fix

# HF transformers 4.57 (the last release with TensorFlow models) needs tf-keras: keep it apart.
.venv-hf4/.installed:
	$(PYTHON) -m venv .venv-hf4
	.venv-hf4/bin/pip install --quiet "transformers==4.57.*" tf-keras "tensorflow-cpu==2.21.*" safetensors sentencepiece
	touch $@

benchmark-env: setup .venv-hf4/.installed

benchmark: benchmark-env
	$(PY) benchmarks/generate.py

clean:
	rm -rf $(VENV) .venv-hf4 demo-model .pytest_cache benchmarks/.cache
