# One entry point for people and CI. Every target sets itself up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
PROD_VENV := .venv-prod
PROD_STAMP := $(PROD_VENV)/.installed

.PHONY: setup demo test lint doctor checkov pytest bench reliability clean lock

setup: $(STAMP) node_modules/.package-lock.json

# Azurite (the Azure Storage emulator) comes from npm, pinned in package.json/package-lock.json.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# Installs exactly the locks (requirements.txt: runtime, requirements-dev.txt: dev/test), then
# the project itself without dependencies, and fails if the installed set is inconsistent.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

## Regenerate the locks from requirements.in / requirements-dev.in (pip-tools). Run after editing
## an .in file (or with PIP_COMPILE_ARGS=--upgrade to move every pin), then `make setup`.
LOCK_FLAGS := --quiet --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/pip-compile || $(BIN)/python -m pip install --quiet pip-tools==7.6.2
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_FLAGS) $(PIP_COMPILE_ARGS) --output-file=requirements.txt requirements.in
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_FLAGS) $(PIP_COMPILE_ARGS) --output-file=requirements-dev.txt requirements-dev.in

## The whole service, live: Azurite + graphsim (Contoso) + the function app on the dev host,
## a short scenario and a timeline of what the service saw and did (python -m devhost.demo).
demo: setup
	$(BIN)/python -m devhost.demo

## Everything CI checks: lint, types, import contracts and the test suite. The checks run while
## the tests do (the suite mostly waits on its servers); each one's output is printed whole when
## it ends (--output-sync), and any failure fails `make test`.
test: setup
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest lint

lint: setup doctor checkov
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared functions function_app.py
	$(BIN)/lint-imports

## azure-functions-doctor on the files `azd deploy` ships; only the checks tools/doctor.py lists
## as expected (Core Tools cannot be installed here) may warn, anything else fails.
doctor: setup
	$(BIN)/python tools/doctor.py

## checkov, an outside check of the Bicep templates (it parses Bicep itself; no compiler needed).
## Every failed check is fixed or skipped inline in the template with its reason
## (`// checkov:skip=CKV_AZURE_NN: why`); --skip-download: no calls to Prisma Cloud.
checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov -d infra --framework bicep --skip-download --quiet --compact

# checkov in its own venv, from its own lock (its pins, e.g. packaging, conflict with ours).
$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-checkov.txt
	$(CHECKOV_VENV)/bin/python -m pip check
	touch $(CHECKOV_STAMP)

## The suite on every core (pytest-xdist, one worker per CPU; each worker starts its own session
## Azurite on free ports). Tests that must share one process (Chromium's install, a module's own
## Azurite) carry an xdist_group mark, which --dist loadgroup keeps on one worker. The 10 slowest
## tests are listed at the end. PYTEST_ARGS="-n 0" runs it in one process. Bytecode is written
## even where the environment sets PYTHONDONTWRITEBYTECODE: every worker and every Python
## subprocess a test starts would otherwise compile the project again.
PYTEST_ARGS ?= -n auto --dist loadgroup --durations=10
pytest: setup
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest $(PYTEST_ARGS)

## Every benchmark prints its figures with the target and pass/fail (docs/performance.md), and
## exits non-zero on a fail (a missed target, or a run that did not do its work). All of them
## run whatever an earlier one gave; `make bench` then fails naming the ones that failed.
BENCHMARKS := evaluate.py coldstart.py:--python:$(PROD_VENV)/bin/python graphsim_scale.py \
	webhook.py incremental.py reconcile.py reconcile.py:--dry-run member_writes.py read_users.py
bench: setup $(PROD_STAMP)
	@failed=""; \
	for benchmark in $(BENCHMARKS); do \
		script=$${benchmark%%:*}; args=$$(echo "$${benchmark#$$script}" | tr ':' ' '); \
		echo "== bench/$$script$$args"; \
		$(BIN)/python bench/$$script $$args || failed="$$failed $$script$$args"; \
	done; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed" >&2; exit 1; fi

# The production lock alone (what `azd deploy` installs), for the cold start's import figures.
$(PROD_STAMP): requirements.txt
	test -x $(PROD_VENV)/bin/python || $(PYTHON) -m venv $(PROD_VENV)
	$(PROD_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
	$(PROD_VENV)/bin/python -m pip check
	touch $(PROD_STAMP)

## Nothing lost, nothing doubled: chaos, crash points, fuzz, soak, reconcile twice - one table,
## each line pass/fail against its target; non-zero exit on any fail (docs/reliability.md).
reliability: setup
	$(BIN)/python bench/reliability.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(PROD_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
