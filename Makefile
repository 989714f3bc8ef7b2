# Platform Core: every entry point a developer or CI needs. `make run` and `make test` bootstrap what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
ENV ?= dev-uaenorth

# Feature targets (infra-*, gitops-*): included before the rules that name their stamps.
include infra/infra.mk
include gitops/gitops.mk
include ci/delivery.mk

.PHONY: help venv node run test test-py lint bench clean infra-check gitops-check

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# The virtualenv is rebuilt only when a requirements file changes, so a second run is quick.
# Not --no-compile: with PYTHONDONTWRITEBYTECODE set (as on this project's machines) nothing would ever cache the
# byte code, and every worker and subprocess of the suite would compile the SDKs it imports again.
$(VENV_STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@# platformctl on the venv PATH, pointing at this checkout (no build isolation: works offline)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

venv: $(VENV_STAMP) ## create/refresh the Python virtualenv

# Azurite (Storage emulator) and the offline schema packages come from the npm lock file.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: $(NODE_STAMP) ## install the npm tools (Azurite) from the lock file

run: $(VENV_STAMP) $(NODE_STAMP) ## run the app locally on the sandbox (127.0.0.1:7071); Ctrl-C stops everything
	$(PY) -m shared.local.run --env $(ENV)

# pytest-xdist workers for `make test`, chosen by measurement on the 2-core machine (README "Tests"): most tests
# wait on sockets and child processes, so more workers than cores pay. PYTEST_ARGS=-n0 runs serially (debugging).
PYTEST_WORKERS ?= 3
PYTEST_ARGS ?=

# One pytest run covers everything: tests/unit, tests/integration (Azurite + sandbox), tests/infra, tests/gitops.
# The three environments it needs are independent and mostly wait on downloads: built side by side (-j3).
# --dist loadfile: a module's tests share module-scoped emulators and fixtures, so a module stays on one worker;
# --no-loadscope-reorder: modules are handed out in the order tests/conftest.py gives them (longest first).
test: ## the whole suite: unit, integration, infra and gitops checks (PYTEST_ARGS=-n0: serially)
	@$(MAKE) --no-print-directory -j3 --output-sync=target $(VENV_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: $(VENV_STAMP) ## ruff
	$(VENV)/bin/ruff check .

# TRACE="conv.csv code.csv" adds the GPU scaling benchmark (Azure LLM inference traces 2023; README "GPU scaling").
bench: $(VENV_STAMP) ## benchmarks (print numbers); TRACE="conv.csv code.csv" adds GPU scaling
	$(PY) bench/cold_start.py
	@if [ -n "$(TRACE)" ]; then $(PY) bench/scaling.py $(TRACE); \
	else echo "bench/scaling.py skipped: give TRACE=\"AzureLLMInferenceTrace_conv.csv AzureLLMInferenceTrace_code.csv\""; fi
	$(PY) bench/drift.py
	$(PY) bench/compliance.py
	$(PY) bench/chatops.py

clean: ## remove virtualenvs, node_modules and local state
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .local

