"""ChatOps: Slack slash commands and buttons, Teams outgoing webhooks, and the queue that runs the work.

Anonymous at the platform: Slack and Teams cannot send a function key; every request is authenticated by
its signature on the raw bytes instead (``shared.services.chatops.verify``). The size limit is checked on
``Content-Length`` before the body is read, and on the body itself. Thin triggers: the work is in
``shared.services.chatops.service``.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.context import get_context
from shared.errors import BadInputError
from shared.invocation import background_function, http_function, json_response

bp = func.Blueprint()
log = logging.getLogger("platform_core.chatops")

#: Mirrors ``shared.services.chatops.service.MAX_BODY_BYTES`` without importing the service at indexing.
MAX_BODY_BYTES = 64 * 1024


def _body(req: func.HttpRequest) -> bytes:
    length = req.headers.get("Content-Length")
    if length and length.strip().isdigit() and int(length) > MAX_BODY_BYTES:
        raise BadInputError("request body too large", status=413, code="PayloadTooLarge")
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        raise BadInputError("request body too large", status=413, code="PayloadTooLarge")
    return body


def _answer(answer) -> func.HttpResponse:  # service.Answer, imported lazily
    if answer.body is None:
        return func.HttpResponse(b"", status_code=answer.status)
    return json_response(answer.body, answer.status)


@bp.function_name("chatops_slack_commands")
@bp.route(route="chatops/slack/commands", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_function
def chatops_slack_commands(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.chatops import service

    ctx = get_context()
    return _answer(service.accept_slack_command(ctx, req.headers, _body(req), now=ctx.clock()))


@bp.function_name("chatops_slack_interactions")
@bp.route(route="chatops/slack/interactions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_function
def chatops_slack_interactions(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.chatops import service

    ctx = get_context()
    return _answer(service.accept_slack_interaction(ctx, req.headers, _body(req), now=ctx.clock()))


@bp.function_name("chatops_teams")
@bp.route(route="chatops/teams", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_function
def chatops_teams(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.chatops import service

    ctx = get_context()
    return _answer(service.accept_teams(ctx, req.headers, _body(req), now=ctx.clock()))


@bp.function_name("chatops_commands")
@bp.queue_trigger(arg_name="msg", queue_name="chatops-commands", connection="AzureWebJobsStorage")
@background_function
def chatops_commands(msg: func.QueueMessage) -> None:
    from shared.services.chatops import service

    try:
        message = json.loads(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadInputError("queue message is not JSON", code="MalformedEvent") from None
    if not isinstance(message, dict):
        raise BadInputError("queue message is not a JSON object", code="MalformedEvent")
    ctx = get_context()
    outcome = service.handle_message(ctx, message, now=ctx.clock())
    log.info("chat command: %s", outcome, extra={"outcome": outcome[:200]})
