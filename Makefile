# One entry point for people and CI. Every target sets itself up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint doctor pytest bench reliability clean

setup: $(STAMP) node_modules/.package-lock.json

# Azurite (the Azure Storage emulator) comes from npm, pinned in package.json/package-lock.json.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

## The whole service, live: Azurite + graphsim (Contoso) + the function app on the dev host,
## a short scenario and a timeline of what the service saw and did (python -m devhost.demo).
demo: setup
	$(BIN)/python -m devhost.demo

## Everything CI checks: lint, types, import contracts, then the test suite.
test: lint pytest

lint: setup doctor
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared functions function_app.py
	$(BIN)/lint-imports

## azure-functions-doctor on the files `azd deploy` ships; only the checks tools/doctor.py lists
## as expected (Core Tools cannot be installed here) may warn, anything else fails.
doctor: setup
	$(BIN)/python tools/doctor.py

pytest: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/evaluate.py
	$(BIN)/python bench/graphsim_scale.py
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/incremental.py
	$(BIN)/python bench/reconcile.py

## Nothing lost, nothing doubled: chaos, crash points, fuzz, soak, reconcile twice - one table,
## each line pass/fail against its target; non-zero exit on any fail (docs/reliability.md).
reliability: setup
	$(BIN)/python bench/reliability.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
