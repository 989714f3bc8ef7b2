"""Production changes wait for a second operator: one row per request in the table ``chatopsapprovals``.

A request is created pending with an expiry (``CHATOPS_APPROVAL_MINUTES``). Approving it is one
ETag-guarded replace, so two operators pressing the button at once approve it once; the requester cannot
approve their own request, and an expired one cannot be approved (ask again). ``decide_approval`` is the
pure rule; ``approve`` gathers the row, decides and writes. ``purge_expired`` (the hourly housekeeping
timer) deletes rows expired for more than a day: the row is working state, the request and its approval
live on in the hash-chained audit trail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shared.errors import ConflictError

#: expired rows are kept this long (to answer a late click with "expired", not "no such request")
KEEP_EXPIRED = dt.timedelta(days=1)

APPROVALS_TABLE = "chatopsapprovals"


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    env: str
    requester: str  # principal
    requester_name: str
    command: str  # the command text
    chat: str  # slack | teams
    created_at: dt.datetime
    expires_at: dt.datetime
    status: str = "pending"  # pending | approved
    approver: str = ""
    reply: dict[str, Any] | None = None  # where the result goes (response_url, channel)
    etag: str | None = None


@dataclass(frozen=True)
class ApprovalDecision:
    ok: bool
    reason: str  # Approved | NoSuchRequest | AlreadyApproved | Expired | SelfApproval | WrongEnvironment
    message: str


def decide_approval(request: ApprovalRequest | None, approver: str, env: str, now: dt.datetime) -> ApprovalDecision:
    if request is None:
        return ApprovalDecision(False, "NoSuchRequest", "There is no approval request with that id.")
    if request.env != env:
        return ApprovalDecision(False, "WrongEnvironment", f"That request is for {request.env}.")
    if request.status != "pending":
        return ApprovalDecision(False, "AlreadyApproved", f"`{request.command}` was already approved.")
    if now >= request.expires_at:
        return ApprovalDecision(False, "Expired", f"The request for `{request.command}` expired at "
                                f"{request.expires_at:%H:%M}Z; ask again.")
    if approver == request.requester:
        return ApprovalDecision(False, "SelfApproval", "You asked for this change: another operator must approve it.")
    return ApprovalDecision(True, "Approved", f"Approved `{request.command}`.")


def id_for(request_id: str) -> str:
    """The approval id of a chat request: derived from it, so that a retried request finds its approval."""
    return hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:10]


def create(storage: Any, *, request_id: str, env: str, requester: str, requester_name: str, command: str, chat: str,
           now: dt.datetime, minutes: float, reply: dict[str, Any] | None) -> ApprovalRequest:
    """ConflictError when this approval exists already (a retry)."""
    request = ApprovalRequest(request_id, env, requester, requester_name, command, chat, now,
                              now + dt.timedelta(minutes=minutes), reply=reply)
    etag = storage.insert(APPROVALS_TABLE, _entity(request))
    return _with(request, etag=etag)


def get(storage: Any, env: str, request_id: str) -> ApprovalRequest | None:
    row = storage.get(APPROVALS_TABLE, env, request_id)
    if row is None:
        return None
    return ApprovalRequest(
        id=row["RowKey"], env=row["PartitionKey"], requester=row["requester"], requester_name=row["requester_name"],
        command=row["command"], chat=row["chat"], created_at=dt.datetime.fromisoformat(row["created_at"]),
        expires_at=dt.datetime.fromisoformat(row["expires_at"]), status=row["status"], approver=row.get("approver", ""),
        reply=json.loads(row["reply"]) if row.get("reply") else None, etag=row.get("_etag"))


def approve(storage: Any, env: str, request_id: str, *, approver: str,
            now: dt.datetime) -> tuple[ApprovalDecision, ApprovalRequest | None]:
    """Approve once; the decision says why not otherwise. Two approvers at once: one wins."""
    request = get(storage, env, request_id)
    decision = decide_approval(request, approver, env, now)
    if not decision.ok or request is None:
        return decision, request
    approved = _with(request, status="approved", approver=approver)
    try:
        storage.replace(APPROVALS_TABLE, _entity(approved), request.etag or "*")
    except ConflictError:
        return ApprovalDecision(False, "AlreadyApproved", f"`{request.command}` was just approved by someone else."), \
            request
    return decision, approved


def purge_expired(storage: Any, now: dt.datetime, *, keep: dt.timedelta = KEEP_EXPIRED, limit: int = 1000) -> int:
    """Delete approval rows that expired more than ``keep`` ago; returns how many. No ETag is needed: an expired
    request can no longer be approved (``decide_approval``), so nothing races the delete."""
    cutoff = (now - keep).astimezone(dt.UTC).isoformat()
    rows = storage.query(APPROVALS_TABLE, "expires_at lt @cutoff", {"cutoff": cutoff}, limit=limit)
    for row in rows:
        storage.delete(APPROVALS_TABLE, row["PartitionKey"], row["RowKey"])
    return len(rows)


def _with(request: ApprovalRequest, **changes: Any) -> ApprovalRequest:
    return ApprovalRequest(**{**vars(request), **changes})


def _entity(r: ApprovalRequest) -> dict[str, Any]:
    return {"PartitionKey": r.env, "RowKey": r.id, "requester": r.requester, "requester_name": r.requester_name,
            "command": r.command, "chat": r.chat, "created_at": r.created_at.isoformat(),
            "expires_at": r.expires_at.isoformat(), "status": r.status, "approver": r.approver,
            "reply": json.dumps(r.reply) if r.reply else ""}
