"""Leased, retried, audited mutations and exactly-once event handling, on Azurite."""

import datetime as dt
import uuid

import pytest

from shared.errors import PermanentError, TemporaryError
from shared.retry import RetryPolicy
from shared.services.actuation import mutate, once
from shared.state import StateStore

pytestmark = pytest.mark.integration


class Ctx:
    def __init__(self, storage):
        self.state = StateStore(storage, clock=lambda: dt.datetime(2026, 11, 25, tzinfo=dt.UTC))


@pytest.fixture
def ctx(storage):
    return Ctx(storage)


def target():
    return f"nodepool/dev-uaenorth/{uuid.uuid4().hex[:8]}"


def test_a_mutation_is_retried_through_temporary_errors_and_audited_once_as_succeeded(ctx):
    attempts = []

    def change():
        attempts.append(1)
        if len(attempts) < 3:
            raise TemporaryError("busy", retry_after=0)
        return "scaled"

    t = target()
    assert mutate(ctx, actor="gpu-scaler", action="scale", target=t, reason="QueueDepth", inputs={"count": 2},
                  change=change, sleep=lambda s: None) == "scaled"
    assert len(attempts) == 3
    assert [(r.outcome, r.inputs) for r in ctx.state.audit_trail(t)] == [("succeeded", {"count": 2})]


def test_a_failed_mutation_is_audited_with_its_code_and_propagates(ctx):
    def change():
        raise PermanentError("quota", code="QuotaExceeded", remediation="ask for quota")

    t = target()
    with pytest.raises(PermanentError):
        mutate(ctx, actor="gpu-scaler", action="scale", target=t, reason="QueueDepth", inputs={}, change=change)
    [record] = ctx.state.audit_trail(t)
    assert record.outcome == "failed" and record.message.startswith("QuotaExceeded")


def test_a_mutation_still_failing_temporarily_is_audited_as_deferred(ctx):
    def change():
        raise TemporaryError("throttled", retry_after=0, code="HTTP429")

    t = target()
    with pytest.raises(TemporaryError):
        mutate(ctx, actor="a", action="scale", target=t, reason="r", inputs={}, change=change,
               policy=RetryPolicy(attempts=2), sleep=lambda s: None)
    assert [r.outcome for r in ctx.state.audit_trail(t)] == ["deferred"]


def test_a_dry_run_changes_nothing_and_is_audited_as_planned(ctx):
    t = target()
    assert mutate(ctx, actor="a", action="scale", target=t, reason="r", inputs={"count": 4},
                  change=lambda: pytest.fail("must not run"), dry_run=True) is None
    assert [r.outcome for r in ctx.state.audit_trail(t)] == ["planned"]


def test_a_mutation_of_a_resource_another_actor_holds_is_refused_without_running(ctx):
    t = target()
    with ctx.state.lease(t, seconds=15), pytest.raises(TemporaryError) as caught:
        mutate(ctx, actor="a", action="scale", target=t, reason="r", inputs={}, change=lambda: pytest.fail("ran"))
    assert caught.value.code == "LeaseHeld"


def test_an_event_delivered_twice_is_handled_once(ctx):
    event = uuid.uuid4().hex
    runs = []
    assert once(ctx, source="eventgrid", event_id=event, handle=lambda: runs.append(1) or "ok") == (True, "ok")
    assert once(ctx, source="eventgrid", event_id=event, handle=lambda: runs.append(1)) == (False, None)
    assert runs == [1]


def test_a_temporary_failure_lets_the_redelivery_run_again_but_a_permanent_one_does_not(ctx):
    temporary, permanent = uuid.uuid4().hex, uuid.uuid4().hex

    def fail(error):
        raise error

    with pytest.raises(TemporaryError):
        once(ctx, source="gitlab", event_id=temporary, handle=lambda: fail(TemporaryError("later")))
    assert once(ctx, source="gitlab", event_id=temporary, handle=lambda: "second try")[0] is True

    with pytest.raises(PermanentError):
        once(ctx, source="gitlab", event_id=permanent, handle=lambda: fail(PermanentError("never")))
    assert once(ctx, source="gitlab", event_id=permanent, handle=lambda: "again")[0] is False
