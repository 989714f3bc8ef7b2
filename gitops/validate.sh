#!/usr/bin/env bash
# Offline validation of gitops/ (the flux2-kustomize-helm-example's validate script, as pytest): every YAML file
# parses, `kubectl kustomize` builds every overlay, every built object validates against the Kubernetes
# schemas of platform.yaml's cluster.kubernetes_version or the CRD schemas in gitops/schemas/, Helm values
# match the vendored chart values schemas, and the platform's policy, egress, version and cross-check tests pass.
# Same checks as `make gitops-check`; extra arguments go to pytest (e.g. -k schema, -x).
# Needs: the repo venv (make venv) and kubectl (kustomize v5) on PATH. No network, no cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
exec "$PY" -m pytest tests/gitops -q "$@"
