"""The two shapes every capability's "act" step takes, so that none of them re-implements them:

- ``mutate``: one change to one resource — leased (one actor per resource), retried on temporary
  errors, and audited whatever the outcome. Dry runs are audited as ``planned`` and change nothing.
- ``once``: process an at-least-once delivery exactly once per event id — claim, run, complete; on a
  temporary failure the claim is released so the redelivery runs again; on a permanent one it is
  completed as ``failed`` (redelivering cannot help) and the error propagates to be seen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from shared.errors import PlatformError, TemporaryError
from shared.retry import RetryPolicy, retry

T = TypeVar("T")
log = logging.getLogger("platform_core.actuation")


def mutate(
    ctx: Any, *, actor: str, action: str, target: str, reason: str, inputs: dict[str, Any],
    change: Callable[[], T], dry_run: bool = False, policy: RetryPolicy = RetryPolicy(),
    lease_seconds: int = 60, sleep: Callable[[float], None] | None = None,
) -> T | None:
    """Run ``change`` under the lease of ``target``; audit ``succeeded``/``failed``/``planned``."""
    state = ctx.state
    if dry_run:
        state.audit(actor=actor, action=action, target=target, reason=reason, outcome="planned", inputs=inputs,
                    message="dry run: nothing changed")
        return None
    with state.lease(target, seconds=lease_seconds):
        try:
            kwargs = {"sleep": sleep} if sleep is not None else {}
            result = retry(change, policy, **kwargs)
        except PlatformError as error:
            outcome = "deferred" if isinstance(error, TemporaryError) else "failed"
            state.audit(actor=actor, action=action, target=target, reason=reason, outcome=outcome, inputs=inputs,
                        message=f"{error.code}: {error}")
            raise
        except Exception as error:
            state.audit(actor=actor, action=action, target=target, reason=reason, outcome="failed", inputs=inputs,
                        message=f"unexpected {type(error).__name__}")
            raise
    state.audit(actor=actor, action=action, target=target, reason=reason, outcome="succeeded", inputs=inputs)
    return result


def once(ctx: Any, *, source: str, event_id: str, handle: Callable[[], T]) -> tuple[bool, T | None]:
    """Run ``handle`` unless this event id was already processed. Returns (ran, result)."""
    state = ctx.state
    claim = state.claim(source, event_id)
    if claim is None:
        log.info("skipping duplicate delivery %s/%s", source, event_id,
                 extra={"source": source, "event_id": event_id})
        return False, None
    try:
        result = handle()
    except TemporaryError:
        state.release(claim)  # let the redelivery try again
        raise
    except Exception:
        state.complete(claim, outcome="failed")
        raise
    state.complete(claim)
    return True, result
