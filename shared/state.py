"""Automation state on Azure Storage: event de-duplication, per-resource leases, the audit log.

- De-duplication (table ``dedup``): events arrive at least once. ``claim`` inserts a row keyed by
  (source, event id); a second delivery finds it and is skipped. A claim is "processing" until
  ``complete``; a claim whose processor died expires after ``processing_timeout`` and can be taken
  over (ETag-guarded, so two takers cannot both win). ``release`` forgets a claim after a failure so
  the redelivery is processed.
- Leases (container ``leases``): one actor per resource. A blob lease (15-60 s, renewable) on a
  marker blob named after the resource; a second instance gets ``TemporaryError(code="LeaseHeld")``.
  Work longer than the lease keeps it with ``Lease.kept_alive()``: a ``Keeper`` thread renews it at a
  third of its duration and records when a renewal is lost; ``Keeper.check()`` then raises
  ``TemporaryError(code="LeaseLost")``. A release that fails is logged at error and raised (or noted
  on the error the work raised), never swallowed.
- Claims are kept the same way (``StateStore.kept_claim``): ``renew_claim`` pushes ``expires_at``
  forward while the processor works, so a claim is only taken over once its processor is gone.
- Audit (table ``audit``): append-only records (actor, action, target, reason, inputs, outcome),
  partitioned by target with time-ordered row keys, so "what happened to X between T1 and T2" is a
  single-partition range query. Inputs are redacted before they are written. ``audit_trail`` reads
  backwards in time windows (a day, then doubling) until it has ``limit`` records, so a large table
  is never read whole. Records older than the retention (``AUDIT_RETENTION_DAYS``, default 400) are
  deleted by the housekeeping timer (``purge_audit``): the only deletion the log knows.
- The audit log is tamper-evident: each record carries ``prev_hash`` (the hash of the previous record for
  its target) and its own ``hash`` (SHA-256 over its stored fields and ``prev_hash``). A chain-head row per
  target (RowKey ``!chain``, sorting before every time-ordered key) holds the newest hash; the record and the
  head are written in one entity group transaction guarded by the head's ETag, so concurrent writers
  cannot fork the chain. ``verify_audit`` recomputes every hash and walks the chain back from the head: an
  edited record no longer matches its hash, a deleted one breaks the walk. Retention moves the chain's
  ``anchor`` to the last purged hash, so purging is not mistaken for tampering.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from shared import logs
from shared.adapters.storage import Storage
from shared.errors import ConflictError, NotFoundError, PlatformError, TemporaryError

log = logging.getLogger("platform_core.state")

DEDUP_TABLE = "dedup"
AUDIT_TABLE = "audit"
LEASE_CONTAINER = "leases"
#: How far back ``audit_trail`` looks when not given ``since``: beyond any retention we would set.
AUDIT_HORIZON = dt.timedelta(days=3660)
#: The chain-head row of each audit partition: '!' sorts before the time-ordered row keys of the records.
AUDIT_CHAIN_ROW = "!chain"
#: The stored fields a record's hash covers (with ``prev_hash``), in this order.
AUDIT_HASHED = ("PartitionKey", "RowKey", "time", "actor", "action", "target", "reason", "outcome", "inputs",
                "message", "correlation_id", "prev_hash")

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
    #: A claim not completed or renewed within this many seconds is presumed dead and may be taken
    #: over. A live processor renews its claim every third of this (``kept_claim``), so it bounds how
    #: long a crashed processor blocks the redelivery, not how long processing may take.
    processing_timeout: float = 600


@dataclass(frozen=True)
class Claim:
    source: str
    event_id: str
    etag: str
    claimed_at: str = ""


class Keeper:
    """Renews a lease or a claim from a background thread while work runs under it.

    ``renew`` is called every ``every`` seconds. A ``ConflictError``/``NotFoundError`` means another
    actor has it now: the keeper is lost at once. A temporary failure is retried sooner, and counts
    as lost once the last successful renewal is older than ``valid_for`` minus one retry interval
    (by then the lease may have expired). The work asks ``check()`` between steps; ``sleep()`` is a
    backoff that wakes and raises as soon as the keeper is lost.
    """

    def __init__(self, renew: Callable[[], object], *, every: float, valid_for: float, what: str,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._renew = renew
        self.every = every
        self.valid_for = valid_for
        self.what = what
        self._monotonic = monotonic
        self.lost = threading.Event()
        self.reason = ""
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"keeper {what}", daemon=True)

    def __enter__(self) -> Keeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def check(self) -> None:
        """Raise ``TemporaryError(code="LeaseLost")`` if the lease or claim was lost."""
        if self.lost.is_set():
            raise TemporaryError(f"{self.what} was lost while the work ran ({self.reason}); stopped so that "
                                 "the actor now holding it is not raced", code="LeaseLost")

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake and raise as soon as the keeper is lost."""
        self.check()
        if self.lost.wait(max(0.0, seconds)):
            self.check()

    def _lose(self, reason: str) -> None:
        self.reason = reason
        self.lost.set()
        log.error("%s was lost: %s", self.what, reason, extra={"keeper": self.what})

    def _run(self) -> None:
        last_ok = self._monotonic()
        retry_sooner = max(0.2, self.every / 4)
        wait = self.every
        while not self._stop.wait(wait):
            try:
                self._renew()
            except (ConflictError, NotFoundError) as error:
                self._lose(f"{error.code}: {error}")
                return
            except TemporaryError as error:
                if self._monotonic() - last_ok + retry_sooner >= self.valid_for:
                    self._lose(f"not renewed for {self.valid_for:.0f} s, last error {error.code}: {error}")
                    return
                log.warning("renewing %s failed, retrying: %s", self.what, error, extra={"keeper": self.what})
                wait = retry_sooner
                continue
            except Exception as error:  # our own bug or an unmapped error: stop the work, keep the cause
                log.exception("renewing %s failed unexpectedly", self.what, extra={"keeper": self.what})
                self._lose(f"unexpected {type(error).__name__}")
                return
            last_ok, wait = self._monotonic(), self.every
            self.renewals += 1


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
    #: The chain: this record's hash and its predecessor's for the same target ("" for the first).
    hash: str = ""
    prev_hash: str = ""


def audit_hash(entity: dict[str, Any]) -> str:
    """SHA-256 over the hashed fields of a stored audit row, canonically encoded."""
    canonical = json.dumps([str(entity.get(k, "")) for k in AUDIT_HASHED], ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditVerification:
    target: str
    ok: bool
    records: int
    problems: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if self.ok:
            return f"audit chain of {self.target}: {self.records} record(s), intact"
        return f"audit chain of {self.target}: TAMPERED ({len(self.problems)} problem(s)): " + "; ".join(self.problems)


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
        claimed_at = entity["claimed_at"]
        try:
            return Claim(source, event_id, self.storage.insert(DEDUP_TABLE, entity), claimed_at)
        except ConflictError:
            pass
        existing = self.storage.get(DEDUP_TABLE, pk, rk)
        if existing is None:  # released between our insert and read: try once more
            try:
                return Claim(source, event_id, self.storage.insert(DEDUP_TABLE, entity), claimed_at)
            except ConflictError:
                return None
        if existing.get("expires_at", "") > _ts(now):
            return None
        try:  # expired (a dead processor, or a forgotten id): take it over, guarded by its ETag
            return Claim(source, event_id, self.storage.replace(DEDUP_TABLE, entity, existing["_etag"]), claimed_at)
        except ConflictError:
            return None

    def renew_claim(self, claim: Claim) -> Claim:
        """Push the claim's expiry one ``processing_timeout`` ahead; ConflictError if it was taken over."""
        now = self.clock()
        etag = self.storage.replace(DEDUP_TABLE, {
            "PartitionKey": table_key(claim.source), "RowKey": table_key(claim.event_id), "status": "processing",
            "claimed_at": claim.claimed_at or _ts(now), "renewed_at": _ts(now),
            "expires_at": _ts(now + dt.timedelta(seconds=self.dedup.processing_timeout)),
        }, claim.etag)
        return Claim(claim.source, claim.event_id, etag, claim.claimed_at)

    def kept_claim(self, claim: Claim) -> ClaimKeeper:
        """A keeper renewing ``claim`` every third of ``processing_timeout``; ``.claim`` is the latest."""
        return ClaimKeeper(self, claim)

    def complete(self, claim: Claim, outcome: str = "done") -> None:
        now = self.clock()
        self.storage.replace(DEDUP_TABLE, {
            "PartitionKey": table_key(claim.source), "RowKey": table_key(claim.event_id),
            "status": outcome, "claimed_at": _ts(now),
            "expires_at": _ts(now + dt.timedelta(seconds=self.dedup.ttl)),
        }, claim.etag)

    def release(self, claim: Claim) -> None:
        """Forget a claim so that the redelivered event is processed (after a temporary failure).

        ETag-guarded: a claim taken over by another processor is theirs (ConflictError), not ours to drop."""
        self.storage.delete(DEDUP_TABLE, table_key(claim.source), table_key(claim.event_id), etag=claim.etag or None)

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
        held = Lease(self.storage, blob, lease_id, resource, seconds)
        try:
            yield held
        except BaseException as failure:
            self._release(held, failure)
            raise
        self._release(held, None)

    def _release(self, held: Lease, failure: BaseException | None) -> None:
        """Release; a failure is logged at error and raised, or noted on the work's own error."""
        try:
            self.storage.release_lease(LEASE_CONTAINER, held.blob, held.lease_id)
        except PlatformError as error:
            log.error("could not release the lease on %s: %s: %s", held.resource, error.code, error,
                      extra={"resource": held.resource, "code": error.code})
            if failure is None:
                raise
            failure.add_note(f"releasing the lease on {held.resource} failed too: {error.code}: {error}")

    # -- audit -----------------------------------------------------------------------------

    def audit(self, *, actor: str, action: str, target: str, reason: str, outcome: str,
              inputs: dict[str, Any] | None = None, message: str = "") -> AuditRecord:
        """Append one record to its target's hash chain. Never updates or deletes: the log is append-only."""
        now = self.clock()
        record = AuditRecord(
            time=now, actor=actor, action=action, target=target, reason=reason, outcome=outcome,
            inputs=logs.redact(inputs or {}), message=logs.redact_text(message),
            correlation_id=logs.correlation_id(),
        )
        inputs_json = json.dumps(record.inputs, default=str, sort_keys=True)
        if len(inputs_json) > 30_000:  # a table property holds 64 KiB of UTF-16: keep well under
            inputs_json = json.dumps({"truncated": True, "preview": inputs_json[:29_000]})
        pk = table_key(target)
        for attempt in range(10):
            head = self.storage.get(AUDIT_TABLE, pk, AUDIT_CHAIN_ROW)
            entity = {
                "PartitionKey": pk,
                # Time first so that a row-key range is a time range; a uuid keeps same-instant rows apart.
                "RowKey": f"{_ts(now)}_{uuid.uuid4().hex[:12]}",
                "time": _ts(now), "actor": actor, "action": action, "target": target, "reason": reason,
                "outcome": outcome, "inputs": inputs_json, "message": record.message[:8000],
                "correlation_id": record.correlation_id or "", "prev_hash": (head or {}).get("hash", ""),
            }
            entity["hash"] = audit_hash(entity)
            chain = {"PartitionKey": pk, "RowKey": AUDIT_CHAIN_ROW, "hash": entity["hash"],
                     "last": entity["RowKey"], "anchor": (head or {}).get("anchor", ""),
                     "count": int((head or {}).get("count", 0)) + 1}
            try:
                self.storage.transact(AUDIT_TABLE, [
                    ("insert", entity, None),
                    ("replace", chain, head["_etag"]) if head else ("insert", chain, None)])
            except ConflictError:  # another writer appended to this target first: chain onto theirs
                time.sleep(0.01 * attempt)
                continue
            return AuditRecord(**{**vars(record), "hash": entity["hash"], "prev_hash": entity["prev_hash"]})
        raise TemporaryError(f"could not append to the audit chain of {target}: too many concurrent writers",
                             code="AuditContention", retry_after=1)

    def verify_audit(self, target: str) -> AuditVerification:
        """Recompute every record's hash and walk the chain back from its head: an edited record, a deleted
        one or one inserted outside the chain is a problem. Records from before the chain existed (no hash)
        are counted out."""
        pk = table_key(target)
        rows = self.storage.query(AUDIT_TABLE, "PartitionKey eq @pk", {"pk": pk})
        head = next((r for r in rows if r["RowKey"] == AUDIT_CHAIN_ROW), None)
        records = [r for r in rows if r["RowKey"] != AUDIT_CHAIN_ROW and r.get("hash")]
        problems: list[str] = []
        for r in records:
            if audit_hash(r) != r["hash"]:
                problems.append(f"record {r['RowKey']} was edited (its content no longer matches its hash)")
        if head is None:
            if records:
                problems.append("the chain head is missing (deleted)")
            return AuditVerification(target, not problems, len(records), tuple(problems))
        by_hash = {r["hash"]: r for r in records}
        seen: set[str] = set()
        current, anchor = head.get("hash", ""), head.get("anchor", "")
        while current and current != anchor:
            record = by_hash.get(current)
            if record is None:
                after = f" (the one before {sorted(seen)[0] if seen else 'the head'})"
                problems.append(f"a record is missing from the chain{after}: deleted, or its hash edited")
                break
            if record["RowKey"] in seen:
                problems.append("the chain loops")
                break
            seen.add(record["RowKey"])
            current = record.get("prev_hash", "")
        outside = [r["RowKey"] for r in records if r["RowKey"] not in seen]
        if outside and not problems:
            problems.append(f"{len(outside)} record(s) are not in the chain: {', '.join(outside[:5])}")
        return AuditVerification(target, not problems, len(records), tuple(problems))

    def audit_trail(self, target: str | None = None, *, since: dt.datetime | None = None,
                    until: dt.datetime | None = None, limit: int = 200) -> list[AuditRecord]:
        """The newest ``limit`` records for one target (or all) within [since, until), oldest first.

        Row keys start with the time, so a time window is a row-key range, answered server-side (paged
        by the SDK). Windows are read newest first, a day wide and then doubling, until ``limit``
        records are in hand or ``since`` (default: ``AUDIT_HORIZON`` back) is reached: the cost follows
        the records asked for, not the size of the table."""
        if limit <= 0:
            return []
        anchor = until or self.clock()
        floor = since or anchor - AUDIT_HORIZON
        rows: list[dict[str, Any]] = []
        high, width = until, dt.timedelta(days=1)
        while True:
            low = max(anchor - width if high is None else high - width, floor)
            clauses, params = ["RowKey ge @low"], {"low": _ts(low)}
            if high is not None:
                clauses.append("RowKey lt @high")
                params["high"] = _ts(high)
            if target is not None:
                clauses.insert(0, "PartitionKey eq @pk")
                params["pk"] = table_key(target)
            rows += self.storage.query(AUDIT_TABLE, " and ".join(clauses), params)
            if len(rows) >= limit or low <= floor:
                break
            high, width = low, width * 2
        rows.sort(key=lambda r: r["RowKey"])
        return [
            AuditRecord(
                time=dt.datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC),
                actor=r["actor"], action=r["action"], target=r["target"], reason=r["reason"],
                outcome=r["outcome"], inputs=json.loads(r.get("inputs") or "{}"), message=r.get("message", ""),
                correlation_id=r.get("correlation_id") or None, hash=r.get("hash", ""),
                prev_hash=r.get("prev_hash", ""),
            )
            for r in rows[-limit:]
        ]

    def purge_audit(self, older_than: dt.timedelta, limit: int = 1000) -> int:
        """Delete audit records older than the retention; returns how many. Run from a timer.

        Each chain whose oldest records go has its ``anchor`` moved to the newest purged hash first, so that
        ``verify_audit`` ends its walk there instead of reporting the purged records as deleted."""
        cutoff = _ts(self.clock() - older_than)
        rows = self.storage.query(AUDIT_TABLE, "RowKey lt @cutoff and RowKey ge @first",
                                  {"cutoff": cutoff, "first": "0"}, limit=limit)
        newest: dict[str, dict[str, Any]] = {}
        for row in sorted(rows, key=lambda r: r["RowKey"]):
            if row.get("hash"):
                newest[row["PartitionKey"]] = row
        for pk, row in newest.items():
            for _ in range(10):
                head = self.storage.get(AUDIT_TABLE, pk, AUDIT_CHAIN_ROW)
                if head is None:
                    break
                try:
                    self.storage.replace(AUDIT_TABLE, {**head, "anchor": row["hash"]}, head["_etag"])
                    break
                except ConflictError:
                    continue
        for row in rows:
            self.storage.delete(AUDIT_TABLE, row["PartitionKey"], row["RowKey"])
        return len(rows)


@dataclass
class Lease:
    storage: Storage
    blob: str
    lease_id: str
    resource: str
    seconds: int = 60

    def renew(self) -> None:
        """Extend the lease for long work; ConflictError(LeaseLost) if it already expired and was taken."""
        self.storage.renew_lease(LEASE_CONTAINER, self.blob, self.lease_id)

    def kept_alive(self, every: float | None = None) -> Keeper:
        """A keeper renewing this lease every third of its duration (or ``every`` seconds)."""
        return Keeper(self.renew, every=every or self.seconds / 3, valid_for=self.seconds,
                      what=f"the lease on {self.resource}")


class ClaimKeeper(Keeper):
    """Keeps a de-duplication claim alive; ``claim`` is the latest (its ETag changes on each renewal)."""

    def __init__(self, state: StateStore, claim: Claim) -> None:
        self.claim = claim
        self._state = state
        timeout = state.dedup.processing_timeout
        super().__init__(self._renew_claim, every=timeout / 3, valid_for=timeout,
                         what=f"the claim on {claim.source}/{claim.event_id}")

    def _renew_claim(self) -> None:
        self.claim = self._state.renew_claim(self.claim)
