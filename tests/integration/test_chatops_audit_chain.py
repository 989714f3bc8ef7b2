"""The audit log is a hash chain per target: `platformctl audit verify TARGET` finds an edited or deleted
record. Tampering is done the way an intruder would: straight on Azurite's table, with the SDK."""

import datetime as dt
import itertools
import threading
import uuid

import pytest

from shared.state import AUDIT_CHAIN_ROW, AUDIT_TABLE, StateStore, table_key

pytestmark = pytest.mark.integration
T0 = dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def table(azurite):
    from azure.data.tables import TableClient

    client = TableClient.from_connection_string(azurite.connection_string, AUDIT_TABLE)
    yield client
    client.close()


def chain_of(storage, n=4):
    state = StateStore(storage, clock=Clock())
    target = f"chatops/test-{uuid.uuid4().hex[:8]}"
    for i in range(n):
        state.audit(actor="slack:T/U", action="scale", target=target, reason=f"r{i}", outcome="succeeded",
                    inputs={"i": i})
    rows = sorted((r for r in storage.query(AUDIT_TABLE, "PartitionKey eq @pk", {"pk": table_key(target)})
                   if r["RowKey"] != AUDIT_CHAIN_ROW), key=lambda r: r["RowKey"])
    return state, target, rows


def test_each_record_carries_the_hash_of_the_one_before_it_and_the_chain_verifies(storage):
    state, target, rows = chain_of(storage)
    assert rows[0]["prev_hash"] == "" and all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(rows))
    verdict = state.verify_audit(target)
    assert verdict.ok and verdict.records == 4, verdict.problems
    assert [r.prev_hash for r in state.audit_trail(target)][1:] == [r["hash"] for r in rows[:-1]]


def test_an_edited_record_is_detected(storage, table):
    state, target, rows = chain_of(storage)
    from azure.data.tables import UpdateMode

    edited = dict(table.get_entity(rows[1]["PartitionKey"], rows[1]["RowKey"]))
    edited["outcome"] = "failed"
    table.update_entity(edited, mode=UpdateMode.MERGE)
    verdict = state.verify_audit(target)
    assert not verdict.ok and any(rows[1]["RowKey"] in p and "edited" in p for p in verdict.problems)


def test_an_edit_that_recomputes_the_records_own_hash_still_breaks_the_chain(storage, table):
    from azure.data.tables import UpdateMode

    from shared.state import audit_hash

    state, target, rows = chain_of(storage)
    edited = dict(table.get_entity(rows[1]["PartitionKey"], rows[1]["RowKey"]))
    edited["actor"] = "someone-else"
    edited["hash"] = audit_hash(edited)
    table.update_entity(edited, mode=UpdateMode.REPLACE)
    assert not state.verify_audit(target).ok


@pytest.mark.parametrize("which", [0, 2, 3], ids=["oldest", "middle", "newest"])
def test_a_deleted_record_is_detected(storage, table, which):
    state, target, rows = chain_of(storage)
    table.delete_entity(rows[which]["PartitionKey"], rows[which]["RowKey"])
    verdict = state.verify_audit(target)
    assert not verdict.ok and any("missing" in p for p in verdict.problems), verdict.problems


def test_concurrent_writers_on_one_target_keep_one_unbroken_chain(storage):
    state = StateStore(storage, clock=lambda: dt.datetime.now(dt.UTC))
    target = f"chatops/race-{uuid.uuid4().hex[:8]}"
    threads = [threading.Thread(target=lambda i=i: state.audit(actor="a", action="x", target=target, reason=str(i),
                                                               outcome="succeeded")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = state.verify_audit(target)
    assert verdict.ok and verdict.records == 4, verdict.problems


def test_retention_purges_the_oldest_records_without_breaking_the_chain(storage):
    clock = Clock(dt.datetime(2002, 1, 1, tzinfo=dt.UTC))  # before anything else the suite writes
    state = StateStore(storage, clock=clock)
    target = f"chatops/retention-{uuid.uuid4().hex[:8]}"
    state.audit(actor="a", action="x", target=target, reason="old", outcome="succeeded")
    clock.now += dt.timedelta(days=300)
    state.audit(actor="a", action="x", target=target, reason="old too", outcome="succeeded")
    clock.now += dt.timedelta(days=200)
    state.audit(actor="a", action="x", target=target, reason="recent", outcome="succeeded")
    assert state.purge_audit(older_than=dt.timedelta(days=150)) >= 2
    verdict = state.verify_audit(target)
    assert verdict.ok and verdict.records == 1, verdict.problems


def test_platformctl_audit_verify_exits_1_on_a_tampered_chain(storage, table, azurite, tmp_path, capsys):
    import json

    from shared import cli

    _, target, rows = chain_of(storage, n=2)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"Values": {"PLATFORM_ENV": "dev-uaenorth",
                                               "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string}}))
    assert cli.main(["--settings", str(settings), "audit", "verify", target]) == 0
    assert "intact" in capsys.readouterr().out
    table.delete_entity(rows[0]["PartitionKey"], rows[0]["RowKey"])
    assert cli.main(["--settings", str(settings), "audit", "verify", target]) == 1
    assert "TAMPERED" in capsys.readouterr().out
