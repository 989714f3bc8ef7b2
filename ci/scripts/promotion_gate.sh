#!/bin/sh
# Gather the target environment's evidence and let `platformctl gate` decide (exit 1 refuses the promotion).
# Usage: ci/scripts/promotion_gate.sh ENV. Needs platformctl installed and Azure credentials (OIDC) for ENV:
# PLATFORM_ENV and PLATFORM_STORAGE_ACCOUNT are read from infra/envs/ENV/platform.yaml.
set -eu
ENV="$1"
OUT="gate-${ENV}"
mkdir -p "$OUT"
export PLATFORM_ENV="$ENV"
PLATFORM_STORAGE_ACCOUNT="${PLATFORM_STORAGE_ACCOUNT:-$(python3 -c 'import sys; from shared.platform import load_environment; print(load_environment(sys.argv[1]).storage_account)' "$ENV" 2>/dev/null || true)}"
export PLATFORM_STORAGE_ACCOUNT
# drift exits 1 when it finds anything: the gate, not this script, decides what blocks.
platformctl drift --json > "$OUT/drift.json" || test -s "$OUT/drift.json"
set -- --drift "$OUT/drift.json"
if platformctl scan --help >/dev/null 2>&1; then
  # scan exits 1 on open high/critical findings (Scan JSON contract); again the gate decides.
  platformctl scan --json > "$OUT/scan.json" || test -s "$OUT/scan.json"
  set -- "$@" --scan "$OUT/scan.json"
else
  echo "platformctl scan is not available: compliance is not checked (documented no-op, README \"Delivery\")"
fi
platformctl gate --env "$ENV" "$@" --json > "$OUT/decision.json" && status=0 || status=$?
platformctl gate --env "$ENV" "$@" || true
exit "$status"
