"""Drift: the hourly check, the GitLab webhook and its queue, and the Azure events that trigger checks.

Thin triggers: parse, call ``shared.services.drift_actions`` / ``platform_events``, map the outcome.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import azure.functions as func

from shared.context import get_context
from shared.errors import BadInputError
from shared.invocation import background_function, http_function, json_response

bp = func.Blueprint()
log = logging.getLogger("platform_core.drift")


@bp.function_name("drift_check")
@bp.timer_trigger(arg_name="timer", schedule="0 5 * * * *", run_on_startup=False)
@background_function
def drift_check(timer: func.TimerRequest) -> None:
    from shared.services import drift_actions

    ctx = get_context()
    report = drift_actions.run_check(ctx, now=ctx.clock(), dry_run=ctx.settings.drift_dry_run, open_mr=True,
                                     revert=True, actor="drift_check")
    log.info("drift check: %d finding(s)%s", len(report.findings),
             f", merge request {report.change.plan.reason}" if report.change else "",
             extra={"findings": len(report.findings), "dry_run": report.dry_run})


@bp.function_name("gitlab_webhook")
@bp.route(route="gitlab/webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_function
def gitlab_webhook(req: func.HttpRequest) -> func.HttpResponse:
    # Anonymous at the platform: GitLab authenticates with X-Gitlab-Token, checked in constant time.
    from shared.services import platform_events

    answer = platform_events.accept_gitlab_webhook(get_context(), req.headers, req.get_body() or b"")
    return json_response(answer.body, answer.status)


def _json_message(msg: func.QueueMessage) -> dict:
    try:
        data = json.loads(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadInputError("queue message is not JSON", code="MalformedEvent") from None
    if not isinstance(data, dict):
        raise BadInputError("queue message is not a JSON object", code="MalformedEvent")
    return data


@bp.function_name("gitlab_events")
@bp.queue_trigger(arg_name="msg", queue_name="gitlab-events", connection="AzureWebJobsStorage")
@background_function
def gitlab_events(msg: func.QueueMessage) -> None:
    from shared.services import platform_events

    ctx = get_context()
    outcome = platform_events.handle_gitlab_message(ctx, _json_message(msg), now=ctx.clock())
    log.info("gitlab event: %s", outcome, extra={"outcome": outcome[:200]})


@bp.function_name("drift_checks")
@bp.queue_trigger(arg_name="msg", queue_name="drift-checks", connection="AzureWebJobsStorage")
@background_function
def drift_checks(msg: func.QueueMessage) -> None:
    from shared.services import platform_events

    ctx = get_context()
    report = platform_events.handle_drift_message(ctx, _json_message(msg), now=ctx.clock(),
                                                  dry_run=ctx.settings.drift_dry_run)
    log.info("scoped drift check %s: %d finding(s)", ",".join(report.scope), len(report.findings),
             extra={"findings": len(report.findings)})


@bp.function_name("resource_events")
@bp.event_grid_trigger(arg_name="event")
@background_function
def resource_events(event: func.EventGridEvent) -> None:
    from shared.services import platform_events

    ctx = get_context()
    outcome = platform_events.handle_resource_event(ctx, event, now=ctx.clock())
    log.info("resource event: %s", outcome, extra={"outcome": outcome[:200]})


@bp.function_name("aks_events")
@bp.event_grid_trigger(arg_name="event")
@background_function
def aks_events(event: func.EventGridEvent) -> None:
    from shared.services import platform_events

    ctx = get_context()
    outcome = platform_events.handle_aks_event(
        ctx, event, now=ctx.clock(), soak=dt.timedelta(days=ctx.settings.kubernetes_version_soak_days),
        dry_run=ctx.settings.drift_dry_run)
    log.info("aks event: %s", outcome, extra={"outcome": outcome[:200]})
