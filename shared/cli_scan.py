"""``platformctl scan``: compliance findings (Pod Security Standards, platform rules, Kyverno, gitops, checkov).

- ``platformctl scan [--env ENV] [--json] [--sarif FILE]``: the live cluster and Kyverno's reports, plus the
  repository's rendered ``gitops/`` overlays (the default repository scan; ``--no-gitops`` leaves them out),
  classified against the stored history (new/persisting/fixed) and ``infra/compliance-exceptions.yaml``, and
  recorded (``--no-record`` for a look that changes nothing).
- ``--iac``: also checkov on ``infra/`` (offline, ``--skip-download``; minutes, so not by default).
- ``--manifests PATH [PATH ...]``: the cluster rules on YAML files or folders (multi-document, ``*List``),
  with no cluster and no settings; ``--env`` adds the platform.yaml rules (registry, model serving).

Exit code (the Scan JSON contract): 1 when an open (new or persisting) finding is high or critical, else 0;
2 for bad usage or configuration (a malformed exceptions file included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from shared import cli


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sarif", metavar="FILE", help="also write the findings as SARIF 2.1.0 to FILE")
    parser.add_argument("--manifests", metavar="PATH", nargs="+",
                        help="evaluate the cluster rules on YAML files or folders (offline: no cluster, no settings)")
    parser.add_argument("--iac", action="store_true", help="also run checkov on infra/ (offline; slow)")
    parser.add_argument("--no-gitops", dest="gitops", action="store_false",
                        help="leave out the rendered gitops/ overlays (kubectl kustomize)")
    parser.add_argument("--no-record", dest="record", action="store_false",
                        help="do not record history or alert (findings are still classified against it)")


def cmd_scan(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    from shared.services.compliance import scan

    if args.manifests:
        import os

        env = args.env or os.environ.get("PLATFORM_ENV") or None
        report = scan.scan_manifests(args.manifests, env=env, now=dt.datetime.now(dt.UTC))
    else:
        report = scan.run_scan(ctx, env=ctx.platform.name, now=ctx.clock(), gitops=args.gitops, iac=args.iac,
                               record=args.record, notify=args.record, actor="platformctl")
    if args.sarif:
        Path(args.sarif).write_text(json.dumps(scan.sarif(report), indent=2), encoding="utf-8")
    return report.exit_code, report.as_dict(), report.text()


cli.command("scan", "compliance scan: Pod Security Standards, platform rules, Kyverno reports, gitops, checkov",
            needs_context=lambda args: not getattr(args, "manifests", None))(cmd_scan)
cli.COMMAND_OPTIONS["scan"] = _options
