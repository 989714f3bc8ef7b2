"""MCP server for platform operations: ``/api/mcp`` (streamable HTTP, stateless, JSON responses).

Thin trigger: the SDK and the tools are in ``shared.services.mcp``, imported on the first request (never when
the app is indexed). Function key at the platform, and App Service Authentication in front for the caller's
identity (``X-MS-CLIENT-PRINCIPAL-ID``): README "MCP server".
"""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func

from shared.context import get_context
from shared.errors import BadInputError
from shared.invocation import http_function

bp = func.Blueprint()

#: An MCP request is one JSON-RPC message with a few arguments.
MAX_BODY_BYTES = 256 * 1024


@bp.function_name("mcp")
@bp.route(route="mcp", methods=["GET", "POST", "DELETE"])
@http_function
def mcp(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services import mcp as service

    length = req.headers.get("Content-Length")
    body = req.get_body() or b""
    if (length and length.strip().isdigit() and int(length) > MAX_BODY_BYTES) or len(body) > MAX_BODY_BYTES:
        raise BadInputError("request body too large", status=413, code="PayloadTooLarge")
    url = urlsplit(req.url)
    status, headers, payload = service.handle_http(get_context(), req.method, url.path, url.query.encode(),
                                                   dict(req.headers), body)
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    keep = {k: v for k, v in headers if k.lower() not in ("content-type", "content-length")}
    return func.HttpResponse(payload, status_code=status, headers=keep, mimetype=content_type)
