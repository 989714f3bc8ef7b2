"""GPU node pools scaled ahead of inference demand: one tick per pool on a timer (every 15 s by default).

The schedule is the app setting ``GPU_SCALING_SCHEDULE`` (NCRONTAB, e.g. ``*/15 * * * * *``), resolved by
the Functions host from ``%GPU_SCALING_SCHEDULE%``. ``GPU_SCALING_ENABLED=false`` is the environment's kill
switch, ``GPU_SCALING_DRY_RUN=true`` decides and audits without changing anything. The work is in
``shared.services.scaling.tick``.
"""

from __future__ import annotations

import logging
import os

import azure.functions as func

from shared.context import get_context
from shared.invocation import background_function

bp = func.Blueprint()
log = logging.getLogger("platform_core.gpu_scaling")

#: The default the sandbox and the sample settings use; Azure reads the app setting.
DEFAULT_SCHEDULE = "*/15 * * * * *"


@bp.function_name("gpu_scaling")
@bp.timer_trigger(arg_name="timer", schedule="%GPU_SCALING_SCHEDULE%", run_on_startup=False)
@background_function
def gpu_scaling(timer: func.TimerRequest) -> None:
    from shared.services.scaling import tick

    ctx = get_context()
    switches = tick.switches_from(os.environ)
    results = tick.tick(ctx, now=ctx.clock(), switches=switches)
    for r in results:
        log.info("gpu pool %s: %d -> %d %s (%s)", r.pool, r.current, r.target, r.action, r.reason,
                 extra={"pool": r.pool, "reason": r.reason, "action": r.action})
