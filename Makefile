# Two commands: `make run` starts the whole platform on embedded defaults, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[edge,camera,server]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[edge,camera,server,dev]'
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/yiwang up

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Two workers, one test file each at a time (every server a test needs is started on free ports by
# its own fixtures, so the workers share nothing); the slowest tests are listed at the end.
test: lint
	$(BIN)/pytest -n 2 --dist loadfile --durations=25

# The unit tests, in under a minute: no server starts (a test that needs one is marked integration, e2e
# or browser) and the long property-based and schema-driven runs (slow) wait for `make test`.
test-fast: install-dev
	$(BIN)/pytest -q -n 2 -m "not integration and not e2e and not browser and not slow"

clean:
	rm -rf var/demo
