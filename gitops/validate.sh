#!/usr/bin/env bash
# Offline validation of gitops/ (the flux2-kustomize-helm-example's validate script, as pytest): every YAML file
# parses, `kubectl kustomize` builds every overlay, every built object validates against the Kubernetes 1.32
# schemas or the CRD schemas in gitops/schemas/, and the platform's policy and cross-check tests pass.
# Same checks as `make gitops-check`; extra arguments go to pytest (e.g. -k schema, -x).
# Needs: the repo venv (make venv) and kubectl (kustomize v5) on PATH. No network, no cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
exec "$PY" -m pytest tests/gitops -q "$@"
