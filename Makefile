# `make demo` and `make test` work on a fresh clone: the first use creates .venv
# in the repository root (Python >= 3.11) and installs ddsp into it; later runs reuse it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-slow test-all bench bench-quick venv clean

$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ddsp needs Python >= 3.11: set PYTHON=python3.11 (or newer)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,data_preparation]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m ddsp.demo --output_dir=demo_out

test: $(STAMP)
	$(PY) -m pytest -q -m 'not slow' tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

test-all: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/run_bench.py

bench-quick: $(STAMP)
	$(PY) bench/run_bench.py --quick

clean:
	rm -rf $(VENV) demo_out bench_out .pytest_cache *.egg-info
