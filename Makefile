# Westron developer commands. `make demo` and `make test` work on a fresh machine:
# they create .venv and install everything from PyPI (torch pinned to its CPU build).
# The test environment is pinned: constraints.txt holds the exact version of every package the
# suite was run against, so `make test` builds the same environment next month as today.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSTRAINTS := constraints.txt

.PHONY: setup fonts quickstart demo test test-latest lock check-copies fix-copies benchmark benchmark-train benchmark-env clean

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade -c $(CONSTRAINTS) pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# Fonts for attention-map labels in other scripts (Hebrew, Georgian, CJK...); tests that need them
# skip without them. Installs only where apt-get exists, we are root and a font is missing.
fonts:
	@if fc-list 2>/dev/null | grep -q "NotoSansCJK" && fc-list 2>/dev/null | grep -q "NotoSansHebrew"; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-noto-core fonts-noto-cjk >/dev/null; \
	else echo "make fonts: install fonts-noto-core and fonts-noto-cjk to test attention labels in every script"; fi

# The main job: a corpus from this machine's gettext catalogs, one model trained in PyTorch and in
# TensorFlow, both scored on held-out software, and the comparison report (westron-quickstart/).
quickstart: setup
	$(VENV)/bin/westron quickstart

# A tiny random-weight checkpoint translated in both frameworks: the machinery in a minute.
demo: setup
	$(VENV)/bin/westron demo

test: setup
	$(PY) utils/check_copies.py
	$(PY) -m pytest -q

# The same suite against the newest transformers 5.x and tensorflow-cpu (by hand, not in CI): to see
# upstream drift before it bites. Findings go to docs/testing.md.
test-latest:
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/pip install --quiet --upgrade pip
	.venv-latest/bin/pip install --quiet --upgrade --upgrade-strategy eager -e ".[test]"
	.venv-latest/bin/pip list 2>/dev/null | grep -iE '^(torch|tensorflow-cpu|keras|transformers|tokenizers|numpy|sentencepiece|safetensors|huggingface-hub) '
	.venv-latest/bin/python utils/check_copies.py
	.venv-latest/bin/python -m pytest -q

# Rewrites constraints.txt from a fresh resolution of pyproject.toml's test extras (after changing
# a dependency). Run the suite on the result before committing it.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e ".[test]"
	{ echo "# Exact versions the test suite runs against (make lock writes this file; make test and .ci/run use it)."; \
	  echo "# Python 3.11, Linux x86_64. torch is the CPU build (2.13.0+cpu, from the local wheel)."; \
	  .venv-lock/bin/pip freeze --all --exclude-editable | grep -v '^westron' | sed -e 's/+cpu$$//' ; } > $(CONSTRAINTS)
	rm -rf .venv-lock

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

# CTranslate2 for the benchmark's ct2 rows: the bench extra, in the main environment.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[bench]"
	touch $@

benchmark-env: setup $(VENV)/.bench-installed .venv-hf4/.installed

benchmark: benchmark-env
	$(PY) benchmarks/generate.py

# One training step of each trainer against HF (a few minutes; see docs/benchmarks.md).
benchmark-train: benchmark-env
	$(PY) benchmarks/train.py

clean:
	rm -rf $(VENV) .venv-hf4 .venv-latest .venv-lock demo-model westron-quickstart .pytest_cache benchmarks/.cache
