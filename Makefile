# steertui: `make run` sets up .venv and starts the console; `make test` sets up .venv and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is installed first with an exact pin: on a CPU box it comes from the local wheel,
# on a GPU box the same pin brings the CUDA build from the registry.
TORCH  ?= torch==2.13.0

.PHONY: run test setup bench clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/steertui $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

# BENCH_ARGS="--shape starcoderbase-1b --json bench-1b.json" for the 1B-shape run
BENCH_ARGS ?= --quick
bench: $(VENV)/.installed
	$(VENV)/bin/steertui bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
