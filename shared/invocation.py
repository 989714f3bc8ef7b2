"""What every trigger function shares: a correlation id, structured logs, and errors mapped to
responses. Trigger modules stay thin: parse, call a service, map the outcome.

``azure.functions`` is imported here (it is part of the cold-start baseline); nothing heavier is.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from shared import logs
from shared.errors import BadInputError, ConfigError, PermanentError, PlatformError, TemporaryError

log = logging.getLogger("platform_core")

#: Largest HTTP body any function accepts (bytes). Webhooks and ChatOps payloads are far smaller;
#: anything bigger is refused before it is parsed.
MAX_BODY_BYTES = 256 * 1024


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str, indent=None), status_code=status,
                             mimetype="application/json", headers=headers)


def error_response(error: Exception) -> func.HttpResponse:
    """Map our error tree onto HTTP: 4xx for the caller's mistakes, 503 + Retry-After for 'later'."""
    if isinstance(error, BadInputError):
        return json_response({"error": error.code, "message": logs.redact_text(error.message)}, error.status)
    if isinstance(error, TemporaryError):
        headers = {"Retry-After": str(int(error.retry_after or 30))}
        return json_response({"error": error.code, "message": logs.redact_text(error.message)}, 503, headers)
    if isinstance(error, ConfigError):
        return json_response({"error": error.code, "problems": [logs.redact_text(p) for p in error.problems]}, 503)
    if isinstance(error, PermanentError):
        return json_response({"error": error.code, "message": logs.redact_text(error.message),
                              "remediation": error.remediation}, 500)
    return json_response({"error": "InternalError", "message": "unexpected error; see the logs"}, 500)


def _invocation_id(context: Any) -> str | None:
    return getattr(context, "invocation_id", None) if context is not None else None


def http_function(handler: Callable[[func.HttpRequest], func.HttpResponse]) -> Callable[..., func.HttpResponse]:
    """Wrap an HTTP handler: correlation id, body-size guard, error mapping, one log line per call."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        cid = req.headers.get("x-correlation-id") or req.headers.get("x-ms-client-request-id")
        with logs.correlation(cid):
            try:
                body = req.get_body() or b""
                if len(body) > MAX_BODY_BYTES:
                    raise BadInputError(f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}",
                                        status=413, code="PayloadTooLarge")
                response = handler(req)
            except PlatformError as error:
                level = logging.WARNING if isinstance(error, BadInputError | TemporaryError) else logging.ERROR
                log.log(level, "%s failed: %s", handler.__name__, error,
                        extra={"function": handler.__name__, "error_code": error.code})
                response = error_response(error)
            except Exception:
                log.exception("%s crashed", handler.__name__, extra={"function": handler.__name__})
                response = error_response(RuntimeError())
            response.headers["x-correlation-id"] = logs.correlation_id() or ""
            return response

    return wrapper


def background_function(handler: Callable[..., None]) -> Callable[..., None]:
    """Wrap a timer/queue/Event Grid handler: correlation id and logging. Errors propagate, so the
    host retries (queue dequeue count, Event Grid redelivery) — nothing is dropped silently."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with logs.correlation():
            try:
                handler(*args, **kwargs)
            except BadInputError as error:
                # Redelivering a malformed event cannot help: log it and let it go.
                log.warning("%s rejected its input: %s", handler.__name__, error,
                            extra={"function": handler.__name__, "error_code": error.code})
            except PlatformError as error:
                log.error("%s failed: %s", handler.__name__, error,
                          extra={"function": handler.__name__, "error_code": error.code})
                raise

    return wrapper
