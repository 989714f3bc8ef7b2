"""Compliance scans on a timer: daily by default, per environment (each app manages one).

The schedule is the app setting ``COMPLIANCE_SCHEDULE`` (NCRONTAB), resolved by the Functions host from
``%COMPLIANCE_SCHEDULE%``; Terraform sets it (``infra/modules/automation``, default ``0 30 4 * * *``). The timer
scans the live cluster and Kyverno's reports, records history in ``compliancefindings`` and alerts on new
high/critical findings; the repository scans (``gitops``, ``checkov``) run in CI with ``platformctl scan``.
The work is in ``shared.services.compliance``.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.context import get_context
from shared.invocation import background_function

bp = func.Blueprint()
log = logging.getLogger("platform_core.compliance")

#: The default the sandbox and the sample settings use; Azure reads the app setting.
DEFAULT_SCHEDULE = "0 30 4 * * *"


@bp.function_name("compliance_scan")
@bp.timer_trigger(arg_name="timer", schedule="%COMPLIANCE_SCHEDULE%", run_on_startup=False)
@background_function
def compliance_scan(timer: func.TimerRequest) -> None:
    from shared.services import compliance

    ctx = get_context()
    report = compliance.run_scan(ctx, env=ctx.platform.name, now=ctx.clock())
    summary = report.summary()
    log.info("compliance scan %s: %d critical, %d high open; %d new, %d fixed", report.env, summary["critical"],
             summary["high"], summary["new"], summary["fixed"],
             extra={"summary": summary, "unavailable": [s for s, _ in report.unavailable]})
