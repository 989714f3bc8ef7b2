"""Health, in two functions:

- ``GET /api/health`` (anonymous, for load balancers and Azure's health check): status and version only,
  200 ``ok`` or 503 ``unhealthy`` when the settings are invalid. It names nothing: no environment,
  resource, URL or settings problem reaches an anonymous caller of a public app.
- ``GET /api/health/details`` (function key): what is configured (environment, dependencies and their
  targets, GPU pools, certificates), the settings problems (503), and with ``?probe=true`` one cheap
  read against each dependency, each bounded (``health.PROBE_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.context import get_context
from shared.errors import ConfigError
from shared.invocation import http_function, json_response
from shared.services import health

bp = func.Blueprint()
log = logging.getLogger("platform_core.health")


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_function
def health_check(req: func.HttpRequest) -> func.HttpResponse:
    try:
        get_context()
    except ConfigError as error:
        # The problems go to the log (and to /api/health/details), never to the anonymous caller.
        log.error("health: the settings are invalid: %s", error, extra={"error_code": error.code})
        return json_response(health.public_status(healthy=False), 503)
    return json_response(health.public_status(healthy=True))


@bp.function_name("health_details")
@bp.route(route="health/details", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@http_function
def health_details(req: func.HttpRequest) -> func.HttpResponse:
    # A ConfigError raised here becomes a 503 listing the problems: behind the key, the probe tells all.
    probe = (req.params.get("probe") or "").lower() in ("1", "true", "yes")
    return json_response(health.report(get_context(), with_probes=probe))
