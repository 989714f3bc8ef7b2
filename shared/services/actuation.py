"""The two shapes every capability's "act" step takes, so that none of them re-implements them:

- ``mutate``: one change to one resource — leased (one actor per resource), retried on temporary
  errors, and audited whatever the outcome. Dry runs are audited as ``planned`` and change nothing.
  The lease is renewed in the background for as long as the change runs (a ``Keeper`` at a third of
  ``lease_seconds``); when a renewal is lost the change is stopped at its next step: the backoff
  between attempts wakes and raises, every attempt checks first, and long changes call
  ``check_lease()`` between their own steps. A lost lease ends as ``TemporaryError(code="LeaseLost")``
  audited ``deferred``. ``OutcomeUnknownError`` is never retried here: the caller reconciles.
- ``once``: process an at-least-once delivery exactly once per event id — claim, run, complete; the
  claim is renewed while the handler runs, so a slow handler is never taken over by a redelivery; on
  a temporary failure the claim is released so the redelivery runs again; on a permanent one it is
  completed as ``failed`` (redelivering cannot help) and the error propagates to be seen.

Fencing: a lease excludes our own actors, not a human with the portal. Where the target offers an
ETag, ``fenced`` reads it and makes the write conditional on it (AKS agent pools, Storage tables), so
a change decided on a stale read fails with ``ConflictError`` instead of overwriting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from shared.errors import PlatformError, TemporaryError
from shared.retry import RetryPolicy, retry

T = TypeVar("T")
S = TypeVar("S")
log = logging.getLogger("platform_core.actuation")

#: The keepers (leases, claims) the running change holds, innermost last.
_keepers: ContextVar[tuple[Any, ...]] = ContextVar("platform_core_keepers", default=())


def check_lease() -> None:
    """Raise ``TemporaryError(code="LeaseLost")`` if a lease or claim held for the running change was
    lost. Long changes call it between steps; outside ``mutate``/``once`` it does nothing."""
    for keeper in _keepers.get():
        keeper.check()


@contextmanager
def _holding(keeper: Any) -> Iterator[Any]:
    token = _keepers.set((*_keepers.get(), keeper))
    try:
        with keeper:
            yield keeper
    finally:
        _keepers.reset(token)


def fenced(read: Callable[[], S], etag_of: Callable[[S], str | None], write: Callable[[S, str | None], T]) -> \
        Callable[[], T]:
    """A change that reads the target, then writes only if it is unchanged since (``If-Match``).

    ``write(snapshot, etag)`` passes the ETag to the adapter (``NodePools.scale(expected_etag=...)``,
    ``Storage.replace(etag=...)``); a concurrent writer turns the write into ``ConflictError``.
    """
    def change() -> T:
        snapshot = read()
        check_lease()
        return write(snapshot, etag_of(snapshot))

    return change


def mutate(
    ctx: Any, *, actor: str, action: str, target: str, reason: str, inputs: dict[str, Any],
    change: Callable[[], T], dry_run: bool = False, policy: RetryPolicy = RetryPolicy(),
    lease_seconds: int = 60, sleep: Callable[[float], None] | None = None,
) -> T | None:
    """Run ``change`` under the lease of ``target``; audit ``succeeded``/``failed``/``deferred``/``planned``."""
    state = ctx.state
    if dry_run:
        state.audit(actor=actor, action=action, target=target, reason=reason, outcome="planned", inputs=inputs,
                    message="dry run: nothing changed")
        return None
    # LeaseHeld is raised here, before anything ran: another actor is at work, nothing to audit.
    with state.lease(target, seconds=lease_seconds) as held:
        try:
            with _holding(held.kept_alive()) as keeper:

                def attempt() -> T:
                    keeper.check()
                    return change()

                def backoff(seconds: float) -> None:
                    if sleep is None:
                        keeper.sleep(seconds)
                    else:
                        keeper.check()
                        sleep(seconds)
                        keeper.check()

                result = retry(attempt, policy, sleep=backoff)
                keeper.check()  # the change finished, but did it finish alone?
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
    keeper = state.kept_claim(claim)
    try:
        with _holding(keeper):
            result = handle()
            keeper.check()
    except TemporaryError:
        _forget(state.release, keeper.claim)  # let the redelivery try again
        raise
    except Exception:
        _forget(lambda c: state.complete(c, outcome="failed"), keeper.claim)
        raise
    state.complete(keeper.claim)
    return True, result


def _forget(finish: Callable[[Any], None], claim: Any) -> None:
    """Release or complete a claim after a failure; a second failure is logged, not raised over the first."""
    try:
        finish(claim)
    except PlatformError as error:
        log.error("could not settle the claim on %s/%s after a failure: %s: %s", claim.source, claim.event_id,
                  error.code, error, extra={"source": claim.source, "event_id": claim.event_id})
