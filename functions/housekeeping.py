"""Hourly housekeeping of the automation's own state: forget de-duplication ids past their expiry, delete
audit records older than the retention (``AUDIT_RETENTION_DAYS``, default 400 days), and delete ChatOps
approval rows expired for more than a day (the audit trail keeps what was asked and approved)."""

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
    from shared.services.chatops import approvals  # lazily: the app's cold start imports only what runs

    approvals_purged = approvals.purge_expired(ctx.storage, ctx.state.clock())
    log.info("purged %d expired de-duplication ids, %d audit records older than %d days and %d expired approvals",
             purged, expired, retention, approvals_purged,
             extra={"purged": purged, "audit_purged": expired, "audit_retention_days": retention,
                    "approvals_purged": approvals_purged})
