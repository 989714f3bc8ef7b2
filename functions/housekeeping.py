"""Hourly housekeeping of the automation's own state: forget de-duplication ids past their expiry."""

from __future__ import annotations

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
    purged = get_context().state.purge_expired()
    log.info("purged %d expired de-duplication ids", purged, extra={"purged": purged})
