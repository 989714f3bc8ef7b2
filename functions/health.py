"""GET /api/health: anonymous liveness with version and configured dependencies (no secrets, no I/O)."""

from __future__ import annotations

import azure.functions as func

from shared.context import get_context
from shared.invocation import http_function, json_response
from shared.services import health

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_function
def health_check(req: func.HttpRequest) -> func.HttpResponse:
    # A ConfigError raised here becomes a 503 listing the problems: the probe tells the truth.
    return json_response(health.describe(get_context()))
