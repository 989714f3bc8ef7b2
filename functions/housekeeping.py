"""Hourly housekeeping of the automation's own state: forget de-duplication ids past their expiry, and
delete audit records older than the retention (``AUDIT_RETENTION_DAYS``, default 400 days)."""

from __future__ import annotations

import datetime as dt
import logging

import azure.functions as func

from shared.context import get_context
from shared.invocation import background_function

bp = func.Blueprint()
log = logging.getLogger("platform_core.housekeeping")


@bp.function_name("state_housekeeping")
@bp.timer_trigger(arg_name="timer", schedule="0 17 * * * *", run_on_startup=False)
@background_function
def state_housekeeping(timer: func.TimerRequest) -> None:
    ctx = get_context()
    purged = ctx.state.purge_expired()
    retention = ctx.settings.audit_retention_days
    expired = ctx.state.purge_audit(older_than=dt.timedelta(days=retention))
    log.info("purged %d expired de-duplication ids and %d audit records older than %d days", purged, expired,
             retention, extra={"purged": purged, "audit_purged": expired, "audit_retention_days": retention})
