# gitops/ checks, included by the top-level Makefile (which defines PY and VENV_STAMP).
# The checks themselves are pytest tests in tests/gitops/ (also run by plain `pytest`); gitops/validate.sh is
# the same thing for CI jobs and people without make.

.PHONY: gitops-check gitops-schemas

gitops-check: $(VENV_STAMP) ## offline GitOps checks: YAML, kustomize builds, schemas, policies, platform.yaml cross-checks
	PY=$(PY) gitops/validate.sh

gitops-schemas: $(VENV_STAMP) ## re-extract CRD schemas from the npm packages in gitops/schemas/versions.yaml (needs npm)
	$(PY) gitops/schemas/update.py
