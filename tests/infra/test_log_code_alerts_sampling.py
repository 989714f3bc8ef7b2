"""The log-code alerts (infra/modules/monitoring/alerts.tf) count traces: none may be sampled away."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_application_insights_never_samples_the_traces_the_log_code_alerts_count():
    sampling = json.loads((ROOT / "host.json").read_text())["logging"]["applicationInsights"]["samplingSettings"]
    excluded = {t.strip() for t in sampling.get("excludedTypes", "").split(";")}
    assert not sampling.get("isEnabled", True) or {"Trace", "Exception", "Request"} <= excluded, sampling
    alerts = (ROOT / "infra/modules/monitoring/alerts.tf").read_text()
    assert "traces\n" in alerts and "severityLevel >= 3" in alerts  # what this test protects
