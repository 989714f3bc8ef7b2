"""GitLab webhooks and Azure events that lead to drift checks, Flux reconciles and merge requests.

GitLab (docs.gitlab.com/user/project/integrations/webhooks and webhook_events): a hook that answers
slowly or fails is retried and then disabled, so ``accept_gitlab_webhook`` only verifies the token
(constant time), refuses what is malformed, de-duplicates by ``Idempotency-Key`` /
``X-Gitlab-Event-UUID``, enqueues a reduced message (never the raw payload) and answers. The work
happens in ``handle_gitlab_message`` from the queue.

Azure (Event Grid): subscription-level ``Microsoft.Resources.ResourceWriteSuccess`` /
``ResourceDeleteSuccess`` for the platform resource group become a debounced, scoped drift check
(one per scope per window, delivered after the window so a burst of writes is checked once); AKS
system-topic events become a version-bump proposal or an alert with a stable code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import BadInputError
from shared.services import drift_actions as da

log = logging.getLogger("platform_core.events")

GITLAB_QUEUE = "gitlab-events"
DRIFT_QUEUE = "drift-checks"
#: Seconds a burst of resource events is gathered before one drift check runs.
DEBOUNCE_SECONDS = 120
#: Seconds after a push before drift is re-checked (Flux fetches and applies in the meantime).
RECHECK_AFTER_PUSH_SECONDS = 120
KNOWN_GITLAB_EVENTS = {"Push Hook": "push", "Merge Request Hook": "merge_request", "Pipeline Hook": "pipeline"}
BOT_PREFIX = "platform-bot/"
WEBHOOK_SOURCE = "gitlab-webhook"

RESOURCE_WRITE = "Microsoft.Resources.ResourceWriteSuccess"
RESOURCE_DELETE = "Microsoft.Resources.ResourceDeleteSuccess"
AKS_NEW_VERSION = "Microsoft.ContainerService.NewKubernetesVersionAvailable"
#: AKS events that only alert, with the stable code the alert rule matches on.
AKS_ALERTS = {
    "Microsoft.ContainerService.ClusterSupportEnding": "AksClusterSupportEnding",
    "Microsoft.ContainerService.ClusterSupportEnded": "AksClusterSupportEnded",
    "Microsoft.ContainerService.NodePoolRollingFailed": "AksNodePoolRollingFailed",
}


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]


# -- GitLab: accept (fast) --------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


def verify_token(supplied: str | None, secret: str | None) -> bool:
    """Constant-time comparison of the ``X-Gitlab-Token`` with our secret (both as bytes)."""
    if not secret or supplied is None:
        return False
    return hmac.compare_digest(supplied.encode("utf-8"), secret.encode("utf-8"))


def reduce_gitlab_event(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The few fields the queue handler needs, from the documented payload (raises BadInputError)."""
    project = payload.get("project") if isinstance(payload.get("project"), dict) else {}
    base = {"kind": kind, "project": str(project.get("path_with_namespace") or ""),
            "default_branch": str(project.get("default_branch") or "")}
    if kind == "push":
        ref = payload.get("ref")
        if not isinstance(ref, str):
            raise BadInputError("push event without a ref", code="MalformedEvent")
        paths: set[str] = set()
        commits = payload.get("commits") if isinstance(payload.get("commits"), list) else []
        for commit in commits:
            if isinstance(commit, dict):
                for key in ("added", "modified", "removed"):
                    paths.update(p for p in commit.get(key) or () if isinstance(p, str))
        total = payload.get("total_commits_count")
        # GitLab lists at most 20 commits (push_event_commits_limit): past that, the paths are not all known.
        complete = isinstance(total, int) and total <= len(commits)
        return {**base, "ref": ref, "after": str(payload.get("after") or payload.get("checkout_sha") or ""),
                "paths": sorted(paths), "paths_complete": complete}
    attrs = payload.get("object_attributes")
    if not isinstance(attrs, dict):
        raise BadInputError(f"{kind} event without object_attributes", code="MalformedEvent")
    if kind == "merge_request":
        return {**base, "iid": attrs.get("iid"), "action": str(attrs.get("action") or ""),
                "state": str(attrs.get("state") or ""), "source_branch": str(attrs.get("source_branch") or ""),
                "target_branch": str(attrs.get("target_branch") or ""),
                "merge_commit_sha": str(attrs.get("merge_commit_sha") or "")}
    mr = payload.get("merge_request") if isinstance(payload.get("merge_request"), dict) else {}
    return {**base, "pipeline_id": attrs.get("id"), "status": str(attrs.get("status") or ""),
            "ref": str(attrs.get("ref") or ""), "sha": str(attrs.get("sha") or ""),
            "source_branch": str(mr.get("source_branch") or attrs.get("ref") or ""), "mr_iid": mr.get("iid")}


def accept_gitlab_webhook(ctx: Any, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
    """Verify, parse, de-duplicate, enqueue. Never logs the payload or the token."""
    if not verify_token(_header(headers, "X-Gitlab-Token"), ctx.settings.gitlab_webhook_secret):
        raise BadInputError("unauthorized", status=401, code="Unauthorized")
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadInputError("the body is not valid JSON", code="MalformedJson") from None
    if not isinstance(payload, dict):
        raise BadInputError("the body must be a JSON object", code="MalformedJson")
    kind = KNOWN_GITLAB_EVENTS.get(_header(headers, "X-Gitlab-Event") or "")
    if kind is None:
        return WebhookAnswer(202, {"status": "ignored"})
    event_id = (_header(headers, "Idempotency-Key") or _header(headers, "X-Gitlab-Event-UUID")
                or hashlib.sha256(body).hexdigest())
    message = reduce_gitlab_event(kind, payload)
    if not _remember(ctx, event_id):
        return WebhookAnswer(200, {"status": "duplicate"})
    try:
        ctx.storage.send(GITLAB_QUEUE, json.dumps({**message, "event_id": event_id}))
    except Exception:
        _forget(ctx, event_id)  # GitLab retries; the retry must be accepted
        raise
    return WebhookAnswer(202, {"status": "queued"})


def _remember(ctx: Any, event_id: str) -> bool:
    """One insert into the de-duplication table, written as already done (the queue handler has its own
    claim): two round trips per delivery instead of three keep the answer fast. False if seen before."""
    from shared.errors import ConflictError
    from shared.state import DEDUP_TABLE, _ts, table_key

    now = ctx.clock()
    expires = now + dt.timedelta(seconds=ctx.state.dedup.ttl)
    try:
        ctx.storage.insert(DEDUP_TABLE, {"PartitionKey": table_key(WEBHOOK_SOURCE), "RowKey": table_key(event_id),
                                         "status": "done", "claimed_at": _ts(now), "expires_at": _ts(expires)})
    except ConflictError:
        row = ctx.storage.get(DEDUP_TABLE, table_key(WEBHOOK_SOURCE), table_key(event_id))
        if row is None or row.get("expires_at", "") > _ts(now):
            return False
        # Expired but not yet purged: take it over (ETag-guarded; a concurrent taker wins alone).
        try:
            ctx.storage.replace(DEDUP_TABLE, {**{k: v for k, v in row.items() if not k.startswith("_")},
                                              "claimed_at": _ts(now), "expires_at": _ts(expires)}, row["_etag"])
        except ConflictError:
            return False
    return True


def _forget(ctx: Any, event_id: str) -> None:
    from shared.state import DEDUP_TABLE, table_key

    ctx.storage.delete(DEDUP_TABLE, table_key(WEBHOOK_SOURCE), table_key(event_id))


# -- GitLab: handle (from the queue) ----------------------------------------------------------------


def _strip(path: str) -> str:
    return path[2:] if path.startswith("./") else path.strip("/")


def touches_cluster(paths: list[str], cluster_path: str, included: list[str]) -> bool:
    """Does a change to ``paths`` reach the environment's Flux entry point or what it includes?"""
    roots = [_strip(cluster_path), *(_strip(p) for p in included)]
    return any(p == r or p.startswith(r.rstrip("/") + "/") for p in paths for r in roots if r)


def our_branch(branch: str, env: str) -> bool:
    return branch.startswith(BOT_PREFIX) and branch.endswith(f"/{env}")


def handle_gitlab_message(ctx: Any, message: Mapping[str, Any], *, now: dt.datetime) -> str:
    """Act on one queued GitLab event, once per event id. Returns what was done (for logs and tests)."""
    from shared.services.actuation import once

    event_id = str(message.get("event_id") or "")
    if not event_id:
        raise BadInputError("queued GitLab event without an id", code="MalformedEvent")
    ran, result = once(ctx, source="gitlab-events", event_id=event_id,
                       handle=lambda: _handle_gitlab(ctx, message, now=now))
    return result if ran else "duplicate"


def _handle_gitlab(ctx: Any, message: Mapping[str, Any], *, now: dt.datetime) -> str:
    env = ctx.platform.name
    gl = ctx.platform.gitlab
    if message.get("project") and message["project"].lower() != gl.project.lower():
        return "ignored: another project"
    default = message.get("default_branch") or gl.default_branch
    kind = message.get("kind")
    if kind == "push":
        if message.get("ref") != f"refs/heads/{default}":
            return "ignored: not the default branch"
        paths = list(message.get("paths") or ())
        included = [o.get("spec", {}).get("path", "") for o in ctx.cluster.list(*da.KUSTOMIZATIONS)]
        platform_file = f"infra/envs/{env}/platform.yaml"
        if message.get("paths_complete") and not touches_cluster(paths, gl.gitops_path, included):
            if platform_file in paths:
                _enqueue_check(ctx, ("cluster", "nodepool/*"), "platform.yaml changed", delay=0)
                return "drift re-check queued (platform.yaml changed)"
            return "ignored: the push does not touch this cluster's Flux path"
        done = da.reconcile_environment(ctx, now=now, actor="gitlab_webhook",
                                        reason=f"push to {default} ({str(message.get('after'))[:12]})")
        _enqueue_check(ctx, ("*",), "after a push", delay=RECHECK_AFTER_PUSH_SECONDS)
        return f"reconcile requested: {', '.join(done)}"
    if kind == "merge_request":
        branch = str(message.get("source_branch") or "")
        merged = message.get("action") == "merge" or message.get("state") == "merged"
        if merged and our_branch(branch, env) and message.get("target_branch") == default:
            closed = da.FindingStore(ctx.storage, env).close_for_merge_request(
                branch, now, reason=f"adopted in git: !{message.get('iid')} merged")
            return f"closed {closed} finding(s) of {branch}"
        return "ignored: not a merge of our branch"
    if kind == "pipeline":
        branch = str(message.get("source_branch") or "")
        if our_branch(branch, env):
            noted = da.FindingStore(ctx.storage, env).note_pipeline(
                branch, f"pipeline {message.get('pipeline_id')} {message.get('status')}", now)
            return f"pipeline status noted on {noted} finding(s)"
        return "ignored: not our merge request"
    return "ignored: unknown kind"


def _enqueue_check(ctx: Any, scope: tuple[str, ...], reason: str, *, delay: int) -> None:
    ctx.storage.send(DRIFT_QUEUE, json.dumps({"scope": list(scope), "reason": reason}),
                     visibility_timeout=delay or None)


def handle_drift_message(ctx: Any, message: Mapping[str, Any], *, now: dt.datetime, dry_run: bool) -> da.DriftReport:
    scope = message.get("scope")
    if not isinstance(scope, list) or not all(isinstance(s, str) for s in scope) or not scope:
        raise BadInputError("drift check message without a scope list", code="MalformedEvent")
    return da.run_check(ctx, now=now, dry_run=dry_run, open_mr=True, revert=True, scope=tuple(scope),
                        actor="drift_event")


# -- Azure events -----------------------------------------------------------------------------------

_ARM_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)(?P<rest>/.*)?$", re.IGNORECASE)


def scope_for_resource(ctx: Any, resource_id: str) -> tuple[str, ...] | None:
    """Which findings a write to ``resource_id`` can change; None if it is not ours."""
    p = ctx.platform
    match = _ARM_ID.match(resource_id or "")
    if not match or (match["sub"].lower(), match["rg"].lower()) != (p.subscription_id.lower(),
                                                                     p.resource_group.lower()):
        return None
    rest = (match["rest"] or "").lower()
    cluster = f"/providers/microsoft.containerservice/managedclusters/{p.cluster_name.lower()}"
    pool = re.match(re.escape(cluster) + r"/agentpools/(?P<pool>[^/]+)", rest)
    if pool:
        return (f"nodepool/{pool['pool']}",)
    return ("cluster", "nodepool/*")


def _event_fields(event: Any) -> tuple[str, str, str, str, Any]:
    try:
        data = event.get_json()
    except ValueError:
        data = None
    return (str(getattr(event, "id", "") or ""), str(getattr(event, "event_type", "") or ""),
            str(getattr(event, "topic", "") or ""), str(getattr(event, "subject", "") or ""), data)


def handle_resource_event(ctx: Any, event: Any, *, now: dt.datetime) -> str:
    """ResourceWrite/DeleteSuccess on the subscription: a debounced drift check of what changed."""
    from shared.services.actuation import once

    event_id, event_type, topic, subject, data = _event_fields(event)
    if not event_id or event_type not in (RESOURCE_WRITE, RESOURCE_DELETE) or not isinstance(data, dict):
        return _ignored("malformed or unexpected resource event", event_type)
    if topic.rstrip("/").lower() != f"/subscriptions/{ctx.platform.subscription_id}".lower():
        return _ignored("resource event from another subscription", event_type)
    resource = str(data.get("resourceUri") or subject)
    scope = scope_for_resource(ctx, resource)
    if scope is None:
        return _ignored("resource outside the platform resource group", event_type)

    def debounce() -> str:
        window = int(now.timestamp() // DEBOUNCE_SECONDS)
        key = f"{','.join(scope)}@{window}"
        ran, _ = once(ctx, source="drift-debounce", event_id=key,
                      handle=lambda: _enqueue_check(ctx, scope, f"{event_type} {resource}", delay=DEBOUNCE_SECONDS))
        return f"drift check of {', '.join(scope)} " + ("queued" if ran else "already queued in this window")

    ran, result = once(ctx, source="eventgrid", event_id=event_id, handle=debounce)
    return result if ran else "duplicate"


def handle_aks_event(ctx: Any, event: Any, *, now: dt.datetime, soak: dt.timedelta, dry_run: bool) -> str:
    """AKS system-topic events: version bumps as merge requests, support/rolling failures as alerts."""
    from shared.services.actuation import once

    event_id, event_type, topic, _, data = _event_fields(event)
    if not event_id or not isinstance(data, dict):
        return _ignored("malformed AKS event", event_type)
    p = ctx.platform
    cluster_id = (f"/subscriptions/{p.subscription_id}/resourceGroups/{p.resource_group}/providers/"
                  f"Microsoft.ContainerService/managedClusters/{p.cluster_name}")
    if topic.rstrip("/").lower() != cluster_id.lower():
        return _ignored("AKS event from another cluster", event_type)

    def handle() -> str:
        if event_type == AKS_NEW_VERSION:
            latest = str(data.get("latestStableKubernetesVersion") or data.get("latestSupportedKubernetesVersion")
                         or "")
            if not latest:
                return _ignored("version event without a version", event_type)
            plan, outcome = da.propose_version_bump(ctx, latest, now=now, soak=soak, dry_run=dry_run,
                                                    actor="aks_events")
            mr = outcome.merge_request.web_url if outcome and outcome.merge_request else None
            return f"{plan.reason}: {plan.message}" + (f" ({mr})" if mr else "")
        code = AKS_ALERTS.get(event_type)
        if code is None:
            return _ignored("AKS event type not handled", event_type)
        detail = {k: data.get(k) for k in ("kubernetesVersion", "nodePoolName", "errorMessage", "errorCode")
                  if data.get(k) is not None}
        log.error("ALERT %s: %s on cluster %s %s", code, event_type.rsplit(".", 1)[-1], p.cluster_name,
                  json.dumps(detail, default=str), extra={"alert_code": code, "event_type": event_type})
        ctx.state.audit(actor="aks_events", action="alert", target=f"cluster/{p.name}", reason=event_type,
                        outcome="alerted", inputs={"code": code, **detail})
        return f"alert {code}"

    ran, result = once(ctx, source="eventgrid", event_id=event_id, handle=handle)
    return result if ran else "duplicate"


def _ignored(why: str, event_type: str) -> str:
    # Redelivering cannot fix a malformed or foreign event: acknowledge (2xx) and say why, without its data.
    log.warning("ignored event: %s", why, extra={"event_type": event_type[:120]})
    return f"ignored: {why}"
