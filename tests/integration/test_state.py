"""De-duplication, leases, audit and queues through the real Storage SDKs against Azurite."""

import datetime as dt
import threading
import uuid

import pytest

from shared.errors import NotFoundError, TemporaryError
from shared.state import DedupSettings, StateStore, from_table_key, table_key

pytestmark = pytest.mark.integration
T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def state(storage, clock):
    return StateStore(storage, clock=clock, dedup=DedupSettings(ttl=3600, processing_timeout=60))


def unique(prefix="id"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_an_event_is_processed_once_however_often_it_is_delivered(state):
    event = unique("evt")
    claim = state.claim("eventgrid", event)
    assert claim is not None
    assert state.claim("eventgrid", event) is None  # while processing
    state.complete(claim)
    assert state.claim("eventgrid", event) is None  # after processing


def test_a_released_claim_lets_the_redelivery_through(state):
    event = unique("evt")
    state.release(state.claim("eventgrid", event))
    assert state.claim("eventgrid", event) is not None


def test_a_claim_whose_processor_died_is_taken_over_after_the_timeout(state, clock):
    event = unique("evt")
    assert state.claim("gitlab", event) is not None
    clock.advance(seconds=61)
    assert state.claim("gitlab", event) is not None


def test_remembered_ids_expire_and_are_purged(state, clock):
    event = unique("evt")
    state.complete(state.claim("timer", event))
    clock.advance(hours=2)
    assert state.purge_expired() >= 1
    assert state.claim("timer", event) is not None


def test_two_racing_claims_for_one_event_produce_one_winner(state):
    event = unique("race")
    results = []
    threads = [threading.Thread(target=lambda: results.append(state.claim("eventgrid", event))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_ids_with_characters_tables_forbid_are_stored_reversibly(state):
    event = "https://kv.vault.azure.net/certificates/a#b?c\\d"
    assert from_table_key(table_key(event)) == event
    assert state.claim("eventgrid", event) is not None


def test_a_lease_admits_one_actor_at_a_time(state):
    resource = f"nodepool/dev-uaenorth/{unique('h100')}"
    with state.lease(resource, seconds=15) as held:
        with pytest.raises(TemporaryError) as caught, state.lease(resource, seconds=15):
            pass
        assert caught.value.code == "LeaseHeld" and caught.value.retry_after == 15
        held.renew()
    with state.lease(resource, seconds=15):
        pass  # released on exit: the next actor gets it at once


def test_a_lease_is_released_when_the_work_fails(state):
    resource = unique("cert")
    with pytest.raises(RuntimeError), state.lease(resource, seconds=15):
        raise RuntimeError("boom")
    with state.lease(resource, seconds=15):
        pass


def test_lease_durations_outside_what_blob_leases_allow_are_refused(state):
    with pytest.raises(ValueError), state.lease("x", seconds=5):
        pass


def test_the_audit_log_is_queryable_by_target_and_time_and_holds_no_secrets(state, clock):
    target = f"certificate/{unique('origin')}"
    state.audit(actor="rotation", action="import", target=target, reason="NearExpiry", outcome="succeeded",
                inputs={"version": "v1", "private_key": "-----BEGIN PRIVATE KEY-----abc", "api_token": "t"},
                message="used Bearer abcdefghijklmnopq")
    clock.advance(hours=1)
    state.audit(actor="rotation", action="import", target=target, reason="Expired", outcome="failed")
    state.audit(actor="rotation", action="import", target="other", reason="x", outcome="succeeded")

    trail = state.audit_trail(target)
    assert [r.reason for r in trail] == ["NearExpiry", "Expired"]
    assert trail[0].inputs == {"version": "v1", "private_key": "***", "api_token": "***"}
    assert "abcdefghijklmnopq" not in trail[0].message
    later = state.audit_trail(target, since=T0 + dt.timedelta(minutes=30))
    assert [r.reason for r in later] == ["Expired"]


def test_queue_depth_counts_what_was_sent_and_not_yet_deleted(storage):
    queue = unique("q")
    for i in range(3):
        storage.send(queue, f"request {i}")
    assert storage.queue_depth(queue) == 3
    messages = storage.receive(queue, max_messages=2)
    assert [m.body for m in messages] == ["request 0", "request 1"]
    for m in messages:
        storage.delete_message(queue, m)
    assert storage.queue_depth(queue) == 1


def test_a_missing_table_row_reads_as_none_and_deleting_twice_is_fine(storage):
    assert storage.get("dedup", "nobody", "nothing") is None
    storage.delete("dedup", "nobody", "nothing")


def test_storage_errors_are_mapped_to_our_tree(storage):
    from shared.errors import PermanentError

    with pytest.raises(PermanentError):
        storage.queue_depth("x")  # invalid queue name: the service refuses it
    with pytest.raises(NotFoundError):
        storage.replace("dedup", {"PartitionKey": "a", "RowKey": unique()}, etag='W/"datetime\'2020-01-01\'"')


def test_a_lease_that_cannot_be_released_is_logged_at_error_and_raised_not_swallowed(state, azurite, caplog):
    from azure.storage.blob import BlobClient, BlobLeaseClient

    from shared.errors import ConflictError
    from shared.state import LEASE_CONTAINER

    resource = unique("pool")
    with pytest.raises(ConflictError) as caught, state.lease(resource, seconds=15):
        blob = BlobClient.from_connection_string(azurite.connection_string, LEASE_CONTAINER, table_key(resource))
        BlobLeaseClient(blob).break_lease(lease_break_period=0)
        BlobLeaseClient(blob).acquire(lease_duration=15)  # another actor holds it now
    assert caught.value.code == "LeaseLost"
    assert any(r.levelname == "ERROR" and resource in r.getMessage() for r in caplog.records)


def test_a_renewed_claim_outlives_its_processing_timeout_and_a_taken_over_claim_cannot_be_renewed(state, clock):
    from shared.errors import ConflictError

    event = unique("evt")
    claim = state.claim("gitlab", event)
    clock.advance(seconds=50)
    claim = state.renew_claim(claim)
    clock.advance(seconds=30)  # 80 s after the claim, 30 s after its renewal
    assert state.claim("gitlab", event) is None
    clock.advance(seconds=31)
    assert state.claim("gitlab", event) is not None  # the processor stopped renewing: taken over
    with pytest.raises(ConflictError):
        state.renew_claim(claim)


def test_releasing_a_claim_someone_else_took_over_leaves_theirs_in_place(state, clock):
    from shared.errors import ConflictError

    event = unique("evt")
    mine = state.claim("gitlab", event)
    clock.advance(seconds=61)
    assert state.claim("gitlab", event) is not None
    with pytest.raises(ConflictError):
        state.release(mine)
    assert state.claim("gitlab", event) is None


# -- the audit log pages and has a retention (issue 7, item 14) ----------------------------------

class CountingStorage:
    """Our Storage protocol over the real adapter, counting the table rows each query brought back."""

    def __init__(self, inner):
        self.inner, self.rows_read = inner, 0

    def query(self, *args, **kwargs):
        rows = self.inner.query(*args, **kwargs)
        self.rows_read += len(rows)
        return rows

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_the_whole_audit_trail_reads_only_as_far_back_as_the_newest_records_asked_for(storage):
    counting = CountingStorage(storage)
    clock = Clock(dt.datetime(2031, 3, 1, tzinfo=dt.UTC))
    state = StateStore(counting, clock=clock)
    day = unique("day")
    for i in range(30):  # one record a day, on several targets
        state.audit(actor="a", action="scale", target=f"nodepool/{day}/{i % 3}", reason=f"r{i}", outcome="succeeded")
        clock.advance(days=1)
    counting.rows_read = 0
    trail = state.audit_trail(None, limit=5)
    assert [r.reason for r in trail] == ["r25", "r26", "r27", "r28", "r29"]
    assert counting.rows_read < 30, "read the whole table to show five records"


def test_audit_records_older_than_the_retention_are_purged_and_newer_ones_kept(storage):
    clock = Clock(dt.datetime(2001, 1, 1, tzinfo=dt.UTC))  # before anything else the suite writes
    state = StateStore(storage, clock=clock)
    target = f"certificate/{unique('retention')}"
    state.audit(actor="a", action="import", target=target, reason="old", outcome="succeeded")
    clock.advance(days=390)
    state.audit(actor="a", action="import", target=target, reason="recent", outcome="succeeded")
    clock.advance(days=20)  # the first is 410 days old, the second 20
    assert state.purge_audit(older_than=dt.timedelta(days=400)) == 1
    assert [r.reason for r in state.audit_trail(target, since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))] == ["recent"]


def test_audit_retention_is_a_setting_with_a_documented_default():
    from shared.settings import SETTINGS_DOC, Settings

    base = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
    assert Settings.from_env(base).audit_retention_days == 400
    assert Settings.from_env({**base, "AUDIT_RETENTION_DAYS": "90"}).audit_retention_days == 90
    assert "default 400" in SETTINGS_DOC["AUDIT_RETENTION_DAYS"][2]
