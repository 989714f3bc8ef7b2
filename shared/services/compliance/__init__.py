"""Compliance scans: one finding schema over the Pod Security Standards, the platform's own rules, Kyverno's
reports, checkov on ``infra/`` and the rendered ``gitops/`` overlays, with history and exceptions in git.

The chat (issue #13) and the CLI call ``run_scan(ctx, env=, now=)`` and ``last_scan(ctx, env=)``;
``ScanReport.as_dict()`` is the Scan JSON contract and ``ScanReport.chat_summary()`` its short text.
Modules: ``findings`` (schema, report), ``rules`` (pure engine), ``history`` (exceptions, new/persisting/fixed),
``scan`` (gather, record, alert, SARIF).
"""

from shared.services.compliance.findings import Finding, ReportedFinding, ScanReport
from shared.services.compliance.scan import last_scan, run_scan, sarif, scan_manifests

__all__ = ["Finding", "ReportedFinding", "ScanReport", "last_scan", "run_scan", "sarif", "scan_manifests"]
