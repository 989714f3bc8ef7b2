"""Automation state on Azure Storage: event de-duplication, per-resource leases, the audit log.

- De-duplication (table ``dedup``): events arrive at least once. ``claim`` inserts a row keyed by
  (source, event id); a second delivery finds it and is skipped. A claim is "processing" until
  ``complete``; a claim whose processor died expires after ``processing_timeout`` and can be taken
  over (ETag-guarded, so two takers cannot both win). ``release`` forgets a claim after a failure so
  the redelivery is processed.
- Leases (container ``leases``): one actor per resource. A blob lease (15-60 s, renewable) on a
  marker blob named after the resource; a second instance gets ``TemporaryError(code="LeaseHeld")``.
- Audit (table ``audit``): append-only records (actor, action, target, reason, inputs, outcome),
  partitioned by target with time-ordered row keys, so "what happened to X between T1 and T2" is a
  single-partition range query. Inputs are redacted before they are written.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from shared import logs
from shared.adapters.storage import Storage
from shared.errors import ConflictError

DEDUP_TABLE = "dedup"
AUDIT_TABLE = "audit"
LEASE_CONTAINER = "leases"

#: Table keys may not contain / \ # ? or control characters: encode them reversibly.
def table_key(value: str) -> str:
    return quote(value, safe="").replace("%", "~")


def from_table_key(value: str) -> str:
    return unquote(value.replace("~", "%"))


def _ts(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class DedupSettings:
    #: How long a processed event id is remembered (seconds). Event Grid retries for up to 24 h.
    ttl: float = 7 * 24 * 3600
    #: A claim not completed within this many seconds is presumed dead and may be taken over.
    processing_timeout: float = 600


@dataclass(frozen=True)
class Claim:
    source: str
    event_id: str
    etag: str


@dataclass(frozen=True)
class AuditRecord:
    time: dt.datetime
    actor: str
    action: str
    target: str
    reason: str
    outcome: str  # e.g. "succeeded" | "failed" | "skipped" | "planned"
    inputs: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    correlation_id: str | None = None


class StateStore:
    def __init__(self, storage: Storage, *, clock: Callable[[], dt.datetime],
                 dedup: DedupSettings = DedupSettings()) -> None:
        self.storage = storage
        self.clock = clock
        self.dedup = dedup

    # -- de-duplication --------------------------------------------------------------------

    def claim(self, source: str, event_id: str) -> Claim | None:
        """Claim an event for processing; None if it was already processed or is being processed."""
        now = self.clock()
        pk, rk = table_key(source), table_key(event_id)
        entity = {
            "PartitionKey": pk, "RowKey": rk, "status": "processing",
            "claimed_at": _ts(now), "expires_at": _ts(now + dt.timedelta(seconds=self.dedup.processing_timeout)),
        }
        try:
            return Claim(source, event_id, self.storage.insert(DEDUP_TABLE, entity))
        except ConflictError:
            pass
        existing = self.storage.get(DEDUP_TABLE, pk, rk)
        if existing is None:  # released between our insert and read: try once more
            try:
                return Claim(source, event_id, self.storage.insert(DEDUP_TABLE, entity))
            except ConflictError:
                return None
        if existing.get("expires_at", "") > _ts(now):
            return None
        try:  # expired (a dead processor, or a forgotten id): take it over, guarded by its ETag
            return Claim(source, event_id, self.storage.replace(DEDUP_TABLE, entity, existing["_etag"]))
        except ConflictError:
            return None

    def complete(self, claim: Claim, outcome: str = "done") -> None:
        now = self.clock()
        self.storage.replace(DEDUP_TABLE, {
            "PartitionKey": table_key(claim.source), "RowKey": table_key(claim.event_id),
            "status": outcome, "claimed_at": _ts(now),
            "expires_at": _ts(now + dt.timedelta(seconds=self.dedup.ttl)),
        }, claim.etag)

    def release(self, claim: Claim) -> None:
        """Forget a claim so that the redelivered event is processed (after a temporary failure)."""
        self.storage.delete(DEDUP_TABLE, table_key(claim.source), table_key(claim.event_id))

    def purge_expired(self, limit: int = 1000) -> int:
        """Delete remembered ids past their expiry; returns how many. Run from a timer."""
        rows = self.storage.query(DEDUP_TABLE, "expires_at lt @now", {"now": _ts(self.clock())}, limit=limit)
        for row in rows:
            self.storage.delete(DEDUP_TABLE, row["PartitionKey"], row["RowKey"])
        return len(rows)

    # -- leases ----------------------------------------------------------------------------

    @contextmanager
    def lease(self, resource: str, seconds: int = 60) -> Iterator[Lease]:
        """Hold the lease on ``resource`` for the block; raises TemporaryError(LeaseHeld) if taken."""
        if not 15 <= seconds <= 60:
            raise ValueError("blob leases last 15 to 60 seconds; renew for longer work")
        blob = table_key(resource)
        lease_id = self.storage.acquire_lease(LEASE_CONTAINER, blob, seconds)
        held = Lease(self.storage, blob, lease_id, resource)
        try:
            yield held
        finally:
            self.storage.release_lease(LEASE_CONTAINER, blob, lease_id)

    # -- audit -----------------------------------------------------------------------------

    def audit(self, *, actor: str, action: str, target: str, reason: str, outcome: str,
              inputs: dict[str, Any] | None = None, message: str = "") -> AuditRecord:
        """Append one record. Never updates or deletes: the log is append-only."""
        now = self.clock()
        record = AuditRecord(
            time=now, actor=actor, action=action, target=target, reason=reason, outcome=outcome,
            inputs=logs.redact(inputs or {}), message=logs.redact_text(message),
            correlation_id=logs.correlation_id(),
        )
        inputs_json = json.dumps(record.inputs, default=str, sort_keys=True)
        if len(inputs_json) > 30_000:  # a table property holds 64 KiB of UTF-16: keep well under
            inputs_json = json.dumps({"truncated": True, "preview": inputs_json[:29_000]})
        self.storage.insert(AUDIT_TABLE, {
            "PartitionKey": table_key(target),
            # Time first so that a row-key range is a time range; a uuid keeps same-instant rows apart.
            "RowKey": f"{_ts(now)}_{uuid.uuid4().hex[:12]}",
            "time": _ts(now), "actor": actor, "action": action, "target": target, "reason": reason,
            "outcome": outcome, "inputs": inputs_json, "message": record.message[:8000],
            "correlation_id": record.correlation_id or "",
        })
        return record

    def audit_trail(self, target: str | None = None, *, since: dt.datetime | None = None,
                    until: dt.datetime | None = None, limit: int = 200) -> list[AuditRecord]:
        """Records for one target (or all), oldest first, within [since, until)."""
        clauses, params = [], {}
        if target is not None:
            clauses.append("PartitionKey eq @pk")
            params["pk"] = table_key(target)
        if since is not None:
            clauses.append("time ge @since")
            params["since"] = _ts(since)
        if until is not None:
            clauses.append("time lt @until")
            params["until"] = _ts(until)
        rows = self.storage.query(AUDIT_TABLE, " and ".join(clauses) or "PartitionKey ne ''", params)
        rows.sort(key=lambda r: r["RowKey"])
        return [
            AuditRecord(
                time=dt.datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC),
                actor=r["actor"], action=r["action"], target=r["target"], reason=r["reason"],
                outcome=r["outcome"], inputs=json.loads(r.get("inputs") or "{}"), message=r.get("message", ""),
                correlation_id=r.get("correlation_id") or None,
            )
            for r in rows[-limit:]
        ]


@dataclass
class Lease:
    storage: Storage
    blob: str
    lease_id: str
    resource: str

    def renew(self) -> None:
        """Extend the lease for long work; ConflictError(LeaseLost) if it already expired and was taken."""
        self.storage.renew_lease(LEASE_CONTAINER, self.blob, self.lease_id)
