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

# One pytest run covers everything: tests/unit, tests/integration (Azurite + sandbox), tests/infra, tests/gitops.
test: $(VENV_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP) ## the whole suite: unit, integration, infra and gitops checks
	$(PY) -m pytest

lint: $(VENV_STAMP) ## ruff
	$(VENV)/bin/ruff check .

# TRACE="conv.csv code.csv" adds the GPU scaling benchmark (Azure LLM inference traces 2023; README "GPU scaling").
bench: $(VENV_STAMP) ## benchmarks (print numbers); TRACE="conv.csv code.csv" adds GPU scaling
	$(PY) bench/cold_start.py
	@if [ -n "$(TRACE)" ]; then $(PY) bench/scaling.py $(TRACE); \
	else echo "bench/scaling.py skipped: give TRACE=\"AzureLLMInferenceTrace_conv.csv AzureLLMInferenceTrace_code.csv\""; fi
	$(PY) bench/drift.py

clean: ## remove virtualenvs, node_modules and local state
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .local

