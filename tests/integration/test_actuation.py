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


# -- leases that hold for as long as the change runs (issue 7, item 1) ----------------------------

def steal_lease(azurite, resource):
    """Another actor breaks the lease and takes the blob, as one would after the lease expired."""
    from azure.storage.blob import BlobClient, BlobLeaseClient

    from shared.state import LEASE_CONTAINER, table_key

    blob = BlobClient.from_connection_string(azurite.connection_string, LEASE_CONTAINER, table_key(resource))
    BlobLeaseClient(blob).break_lease(lease_break_period=0)
    return BlobLeaseClient(blob), blob


def test_a_change_longer_than_its_lease_keeps_a_second_mutation_out_until_it_ends(ctx):
    # The scenario on Azurite, in real time: a 15 s lease and a 17 s change. Unrenewed, the
    # lease expired at 15 s and a second mutate ran inside the first.
    import threading
    import time

    t = target()
    first_started, outcome = threading.Event(), {}

    def long_change():
        first_started.set()
        time.sleep(17)
        return "done"

    def first():
        outcome["first"] = mutate(ctx, actor="gpu-scaler", action="scale", target=t, reason="QueueDepth",
                                  inputs={}, change=long_change, lease_seconds=15)

    runner = threading.Thread(target=first)
    runner.start()
    assert first_started.wait(10)
    time.sleep(16)  # past the lease's own 15 s
    with pytest.raises(TemporaryError) as caught:
        mutate(ctx, actor="chatops", action="scale", target=t, reason="Manual", inputs={},
               change=lambda: pytest.fail("a second actor ran inside the first"), lease_seconds=15)
    assert caught.value.code == "LeaseHeld"
    runner.join(10)
    assert outcome == {"first": "done"}
    assert [(r.actor, r.outcome) for r in ctx.state.audit_trail(t)] == [("gpu-scaler", "succeeded")]


def test_a_change_whose_lease_is_lost_is_stopped_and_audited_as_deferred_with_lease_lost(ctx, azurite):
    import time

    from shared.services.actuation import check_lease

    t = target()
    steps = []

    def careful_change():
        for step in range(200):  # steps of 0.1 s; the keeper renews every 5 s
            check_lease()
            if step == 5:
                steal_lease(azurite, t)[0].acquire(lease_duration=15)
            steps.append(step)
            time.sleep(0.1)
        return "ran to the end without its lease"

    with pytest.raises(TemporaryError) as caught:
        mutate(ctx, actor="gpu-scaler", action="scale", target=t, reason="QueueDepth", inputs={},
               change=careful_change, lease_seconds=15)
    assert caught.value.code == "LeaseLost"
    assert 6 <= len(steps) < 100  # stopped after the theft, at the keeper's next renewal (~5 s), not at the end
    [record] = ctx.state.audit_trail(t)
    assert record.outcome == "deferred" and record.message.startswith("LeaseLost")
    assert any("releasing the lease" in note for note in getattr(caught.value, "__notes__", []))


def test_a_backoff_between_attempts_is_cut_short_when_the_lease_is_lost(ctx, azurite):
    import time

    t = target()
    attempts = []

    def throttled():
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            steal_lease(azurite, t)[0].acquire(lease_duration=15)
        raise TemporaryError("throttled", retry_after=50)

    started = time.monotonic()
    with pytest.raises(TemporaryError) as caught:
        mutate(ctx, actor="a", action="scale", target=t, reason="r", inputs={}, change=throttled, lease_seconds=15)
    assert caught.value.code == "LeaseLost" and len(attempts) == 1
    assert time.monotonic() - started < 15


def test_a_fenced_change_refuses_to_write_over_a_change_made_since_it_read(ctx, storage):
    from shared.errors import ConflictError
    from shared.services.actuation import fenced

    row = {"PartitionKey": "fence", "RowKey": uuid.uuid4().hex, "count": 1}
    storage.insert("fencing", row)

    def read():
        current = storage.get("fencing", row["PartitionKey"], row["RowKey"])
        storage.replace("fencing", {**row, "count": 5}, current["_etag"])  # someone else, between read and write
        return current

    change = fenced(read, lambda snapshot: snapshot["_etag"],
                    lambda snapshot, etag: storage.replace("fencing", {**row, "count": snapshot["count"] + 1}, etag))
    t = target()
    with pytest.raises(ConflictError):
        mutate(ctx, actor="a", action="scale", target=t, reason="r", inputs={}, change=change)
    assert storage.get("fencing", row["PartitionKey"], row["RowKey"])["count"] == 5
    assert [r.outcome for r in ctx.state.audit_trail(t)] == ["failed"]


# -- claims that hold for as long as the handler runs (issue 7, item 2) --------------------------

def test_a_redelivery_cannot_take_over_a_claim_whose_handler_is_still_working(storage):
    import threading
    import time

    from shared.state import DedupSettings

    class LiveCtx:
        state = StateStore(storage, clock=lambda: dt.datetime.now(dt.UTC),
                           dedup=DedupSettings(ttl=3600, processing_timeout=3))

    event, results = uuid.uuid4().hex, {}
    started = threading.Event()

    def slow():
        started.set()
        time.sleep(7)  # well past processing_timeout
        return "handled"

    runner = threading.Thread(target=lambda: results.update(first=once(LiveCtx, source="eventgrid", event_id=event,
                                                                       handle=slow)))
    runner.start()
    assert started.wait(10)
    time.sleep(4.5)  # the claim's first expiry has passed; only its renewals keep it
    assert once(LiveCtx, source="eventgrid", event_id=event, handle=lambda: "again") == (False, None)
    runner.join(15)
    assert results == {"first": (True, "handled")}
    assert once(LiveCtx, source="eventgrid", event_id=event, handle=lambda: "again") == (False, None)
