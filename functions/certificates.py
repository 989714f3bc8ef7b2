"""Origin certificate rotation: Key Vault's certificate events and a daily check of every certificate.

- ``keyvault_certificate_events`` (the name infra/modules/automation/events.tf subscribes): NearExpiry and
  Expired lead to a check of that certificate; NewVersionCreated is compared with what we imported. Other
  vaults, object types, unmanaged names and malformed events are ignored with one log line (2xx). Each event
  id is handled once (``once``); a temporary failure answers 500 so Event Grid redelivers; a permanent one is
  logged with its alert code and not redelivered.
- ``certificate_daily_check``: every managed certificate (the near-expiry event fires once and may be lost),
  then retirement and the orphan sweep (revoking only where ``orphan_cleanup: revoke``).
- ``certificate_retirement``: every 10 minutes, revoke superseded certificates whose time has come.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.context import get_context
from shared.errors import BadInputError, PermanentError, PlatformError, TemporaryError
from shared.invocation import background_function

bp = func.Blueprint()
log = logging.getLogger("platform_core.certificates")
EVENT_SOURCE = "keyvault-certificate-events"


def _raw(event: func.EventGridEvent) -> dict:
    """The fields we read, whatever schema the event came in (the host maps CloudEvents onto these)."""
    try:
        data = event.get_json()
    except Exception:
        data = None
    return {"id": event.id, "type": event.event_type, "subject": event.subject, "topic": event.topic, "data": data}


@bp.function_name("keyvault_certificate_events")
@bp.event_grid_trigger(arg_name="event")
@background_function
def keyvault_certificate_events(event: func.EventGridEvent) -> None:
    from shared.services import certificates_rotation as rotation
    from shared.services.actuation import once
    from shared.services.certificates import NEW_VERSION, Ignored, parse_event

    ctx = get_context()
    parsed = parse_event(_raw(event), ctx.platform.key_vault_name)
    if isinstance(parsed, Ignored):
        log.info("ignored Key Vault event %s: %s", getattr(event, "id", "?"), parsed.message,
                 extra={"reason": parsed.reason, "event_type": getattr(event, "event_type", None)})
        return
    if parsed.name not in {c.name for c in ctx.platform.certificates}:
        log.info("ignored Key Vault event %s: certificate %s is not managed here", parsed.id, parsed.name,
                 extra={"reason": "Unmanaged", "certificate": parsed.name})
        return

    def handle() -> str:
        if parsed.kind == NEW_VERSION:
            return rotation.observe_new_version(ctx, parsed.name, parsed.version, actor="keyvault-event")
        return rotation.check(ctx, parsed.name, actor="keyvault-event", trigger=parsed.kind).action

    try:
        once(ctx, source=EVENT_SOURCE, event_id=parsed.id, handle=handle)
    except TemporaryError:
        raise  # logged by check; Event Grid redelivers later
    except (PermanentError, BadInputError) as error:
        # Logged with its alert code already; redelivering cannot help, so answer 2xx.
        log.info("event %s for %s not acted on: %s", parsed.id, parsed.name, error.code)


@bp.function_name("certificate_daily_check")
@bp.timer_trigger(arg_name="timer", schedule="0 40 3 * * *", run_on_startup=False)
@background_function
def certificate_daily_check(timer: func.TimerRequest) -> None:
    run_daily_check()


def run_daily_check() -> dict:
    from shared.services import certificates_rotation as rotation

    ctx = get_context()
    summary: dict = {"checked": {}, "retired": [], "orphans": []}
    for spec in ctx.platform.certificates:
        try:
            summary["checked"][spec.name] = rotation.check(ctx, spec.name, actor="daily-check", trigger="timer").action
        except PlatformError as error:  # logged with its code; the other certificates still get checked
            summary["checked"][spec.name] = f"error:{error.code}"
    try:
        summary["retired"] = rotation.retire(ctx, actor="daily-check")
        summary["orphans"] = rotation.sweep_orphans(
            ctx, actor="daily-check", apply=ctx.platform.certificate_rotation.orphan_cleanup == "revoke")
    except PlatformError as error:
        rotation.report_error("*", error)
    return summary


@bp.function_name("certificate_retirement")
@bp.timer_trigger(arg_name="timer", schedule="0 */10 * * * *", run_on_startup=False)
@background_function
def certificate_retirement(timer: func.TimerRequest) -> None:
    from shared.services import certificates_rotation as rotation

    try:
        rotation.retire(get_context(), actor="retirement")
    except PlatformError as error:
        rotation.report_error("*", error)
