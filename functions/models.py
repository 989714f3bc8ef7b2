"""The inference gateway's proactive fallback: once a minute, per model, point its traffic at the first fit
entry of its fallback list (``shared.services.model_routing``; README "AI stack").

The schedule is fixed here (every minute): the decision's own timers (``breach_seconds``, ``recover_seconds``
in platform.yaml ``models[]``) are minutes long, so a faster timer would only re-read the same signals.
``MODEL_ROUTING_ENABLED=false`` is the environment's kill switch (the gateway's own error fallback keeps
working); ``MODEL_ROUTING_DRY_RUN=true`` decides and audits as ``planned`` without patching anything.
"""

from __future__ import annotations

import logging
import os

import azure.functions as func

from shared.context import get_context
from shared.invocation import background_function

bp = func.Blueprint()
log = logging.getLogger("platform_core.model_routing")

SCHEDULE = "0 * * * * *"


def _flag(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes")


@bp.function_name("model_routing")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False)
@background_function
def model_routing(timer: func.TimerRequest) -> None:
    if not _flag("MODEL_ROUTING_ENABLED", True):
        return
    from shared.services import model_routing as routing

    ctx = get_context()
    for plan in routing.tick(ctx, now=ctx.clock(), dry_run=_flag("MODEL_ROUTING_DRY_RUN", False)):
        log.info("model %s: %s -> %s (%s)", plan.model, plan.current, plan.target, plan.reason,
                 extra={"model": plan.model, "reason": plan.reason})
