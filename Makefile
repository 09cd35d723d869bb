# The two commands: `make run` runs Patchbay, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test install lint bench bench-events bench-lists bench-workflows clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,test]'
	@touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m app.devservices run

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check app tasks sensors tests bench

bench: install
	$(PY) -m bench.executions $(BENCH_ARGS)

bench-events: install
	$(PY) -m bench.events

bench-workflows: install
	$(PY) -m bench.workflows $(BENCH_ARGS)

bench-lists: install
	$(PY) -m bench.lists

clean:
	rm -rf $(VENV) .patchbay
