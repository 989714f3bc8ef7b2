"""The monthly cost summary: at 08:00 UTC on the 1st, last month's cost by namespace (OpenCost) posted to the
notification channel through ChatOps' ``chat_notify``; once per environment and month (a claim in the state
table), skipped and logged while ChatOps is not installed or ``OPENCOST_URL`` is unset."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.context import get_context
from shared.invocation import background_function

bp = func.Blueprint()
log = logging.getLogger("platform_core.cost")


@bp.function_name("cost_monthly_summary")
@bp.timer_trigger(arg_name="timer", schedule="0 0 8 1 * *", run_on_startup=False)
@background_function
def cost_monthly_summary(timer: func.TimerRequest) -> None:
    from shared.services import cost

    ctx = get_context()
    if not ctx.settings.opencost_url:
        log.info("monthly cost summary skipped: OPENCOST_URL is not set", extra={"outcome": "no-opencost"})
        return
    outcome = cost.post_monthly_summary(ctx, now=ctx.clock())
    log.info("monthly cost summary: %s", outcome, extra={"outcome": outcome})
