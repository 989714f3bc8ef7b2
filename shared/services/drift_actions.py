"""Acting on drift: keep findings (first/last seen), revert live through Flux, adopt in git through
``gitops_change``, and propose Kubernetes version bumps. The timer, the webhook's queue, the Event
Grid functions and ``platformctl drift`` all call ``run_check`` and friends; none re-implements them.

Findings are kept in the table ``driftfindings`` (partition: environment; row: the finding's key),
with ``first_seen``/``last_seen``, ``status`` (open/closed), why it closed, the merge request that
adopts it and that merge request's last pipeline status.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ConflictError, PlatformError
from shared.services import drift as d
from shared.services import gitops_change as gc
from shared.state import _ts, from_table_key, table_key

log = logging.getLogger("platform_core.drift")
FINDINGS_TABLE = "driftfindings"
DRIFT_TOPIC = "drift"
VERSION_TOPIC = "kubernetes-version"
FIRST_ENV = "dev-uaenorth"  # version bumps land here first
KUSTOMIZATIONS = ("kustomize.toolkit.fluxcd.io/v1", "kustomizations")
GIT_REPOSITORIES = ("source.toolkit.fluxcd.io/v1", "gitrepositories")
HELM_RELEASES = ("helm.toolkit.fluxcd.io/v2", "helmreleases")


# -- the findings store ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFinding:
    key: str
    kind: str
    severity: str
    resource: str
    field: str
    remedy: str
    status: str
    first_seen: str
    last_seen: str
    message: str = ""
    closed_reason: str = ""
    merge_request: str = ""
    pipeline: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class FindingStore:
    def __init__(self, storage: Any, env: str) -> None:
        self.storage = storage
        self.env = env

    def all(self, status: str | None = None) -> list[StoredFinding]:
        clauses, params = ["PartitionKey eq @pk"], {"pk": table_key(self.env)}
        if status:
            clauses.append("status eq @status")
            params["status"] = status
        rows = self.storage.query(FINDINGS_TABLE, " and ".join(clauses), params)
        return sorted((_stored(r) for r in rows), key=lambda f: f.key)

    def record(self, findings: Sequence[d.Finding], now: dt.datetime, *, scope: Sequence[str] = ("*",),
               merge_request: str = "", close_missing: bool = True) -> dict[str, str]:
        """Upsert ``findings`` (first_seen kept); close open ones in ``scope`` that are gone.
        Returns key -> first_seen."""
        stamp = _ts(now)
        first: dict[str, str] = {}
        current = {f.key for f in findings}
        for finding in findings:
            row = self.storage.get(FINDINGS_TABLE, table_key(self.env), table_key(finding.key))
            keep_first = row.get("first_seen") if row and row.get("status") == "open" else None
            entity = {
                "PartitionKey": table_key(self.env), "RowKey": table_key(finding.key), "status": "open",
                "kind": finding.kind, "severity": finding.severity, "resource": finding.resource,
                "field": finding.field, "remedy": finding.remedy, "message": finding.message[:2000],
                "expected": json.dumps(finding.expected, default=str)[:4000],
                "actual": json.dumps(finding.actual, default=str)[:4000],
                "destructive": finding.destructive, "first_seen": keep_first or stamp, "last_seen": stamp,
                "closed_reason": "",
                # The MR adopting it (new one, else the one already noted); a fresh finding starts clean.
                "merge_request": (merge_request if finding.edit and merge_request else "")
                or ((row or {}).get("merge_request", "") if keep_first else ""),
                "pipeline": (row or {}).get("pipeline", "") if keep_first else "",
            }
            self._put(entity, row)
            first[finding.key] = entity["first_seen"]
        for stored in self.all(status="open") if close_missing else ():
            in_scope = any(fnmatch.fnmatchcase(stored.resource, s) for s in scope)
            if in_scope and stored.key not in current:
                self.close(stored.key, now, reason="resolved: no longer observed")
        return first

    def close(self, key: str, now: dt.datetime, *, reason: str) -> bool:
        row = self.storage.get(FINDINGS_TABLE, table_key(self.env), table_key(key))
        if row is None or row.get("status") != "open":
            return False
        row.update(status="closed", closed_reason=reason, last_seen=_ts(now))
        self._put(row, row)
        return True

    def close_for_merge_request(self, branch: str, now: dt.datetime, *, reason: str) -> int:
        closed = 0
        for stored in self.all(status="open"):
            if stored.merge_request.startswith(f"{branch}!") or stored.merge_request == branch:
                closed += self.close(stored.key, now, reason=reason)
        return closed

    def note_pipeline(self, branch: str, status: str, now: dt.datetime) -> int:
        noted = 0
        for stored in self.all(status="open"):
            if stored.merge_request.startswith(f"{branch}!") or stored.merge_request == branch:
                row = self.storage.get(FINDINGS_TABLE, table_key(self.env), table_key(stored.key))
                if row is not None:
                    row.update(pipeline=f"{status} at {_ts(now)}")
                    self._put(row, row)
                    noted += 1
        return noted

    def _put(self, entity: dict[str, Any], existing: dict[str, Any] | None) -> None:
        clean = {k: v for k, v in entity.items() if not k.startswith("_") and k not in ("Timestamp",)}
        try:
            if existing is None:
                self.storage.insert(FINDINGS_TABLE, clean)
            else:
                self.storage.replace(FINDINGS_TABLE, clean, existing.get("_etag") or "*")
        except ConflictError:
            # Two checks at once (timer and an event): the other one wrote the same finding; theirs stands.
            log.info("finding %s written concurrently; keeping the other write", from_table_key(clean["RowKey"]))


def _stored(row: dict[str, Any]) -> StoredFinding:
    return StoredFinding(
        key=from_table_key(row["RowKey"]), kind=row.get("kind", ""), severity=row.get("severity", ""),
        resource=row.get("resource", ""), field=row.get("field", ""), remedy=row.get("remedy", ""),
        status=row.get("status", ""), first_seen=row.get("first_seen", ""), last_seen=row.get("last_seen", ""),
        message=row.get("message", ""), closed_reason=row.get("closed_reason", ""),
        merge_request=row.get("merge_request", ""), pipeline=row.get("pipeline", ""))


# -- one check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftReport:
    env: str
    checked_at: dt.datetime
    findings: tuple[d.Finding, ...]
    scope: tuple[str, ...] = ("*",)
    first_seen: dict[str, str] = field(default_factory=dict)
    unavailable: tuple[tuple[str, str], ...] = ()
    change: gc.ChangeOutcome | None = None
    reconciles: tuple[str, ...] = ()
    dry_run: bool = True

    def as_dict(self) -> dict[str, Any]:
        change = None
        if self.change is not None:
            plan = self.change.plan
            change = {"reason": plan.reason, "message": plan.message, "branch": plan.branch,
                      "labels": list(plan.labels), "dry_run": self.change.dry_run,
                      "merge_request": self.change.merge_request.web_url if self.change.merge_request else None,
                      "iid": self.change.merge_request.iid if self.change.merge_request else None}
        return {"env": self.env, "checked_at": _ts(self.checked_at), "scope": list(self.scope),
                "dry_run": self.dry_run,
                "findings": [{**f.as_dict(), "first_seen": self.first_seen.get(f.key)} for f in self.findings],
                "unavailable": [{"source": s, "error": e} for s, e in self.unavailable],
                "merge_request": change, "reconciles": list(self.reconciles)}


def in_scope(findings: Iterable[d.Finding], scope: Sequence[str]) -> list[d.Finding]:
    return [f for f in findings if any(fnmatch.fnmatchcase(f.resource, s) for s in scope)]


def run_check(ctx: Any, *, now: dt.datetime, dry_run: bool = True, open_mr: bool = False, revert: bool = False,
              record: bool = True, scope: Sequence[str] = ("*",), actor: str = "drift") -> DriftReport:
    """Gather, diff, and (unless a dry run) record, adopt in git and request reconciles."""
    snapshot = d.gather(ctx)
    findings = in_scope(d.diff(snapshot.desired, snapshot.actual, ignore=snapshot.ignore, now=now), scope)
    change = None
    adopt = [f for f in findings if f.remedy == d.ADOPT_IN_GIT and f.edit is not None]
    if open_mr and adopt:
        change = gc.propose(ctx, adopt_request(ctx.platform.name, adopt), dry_run=dry_run, actor=actor,
                            reason=f"{len(adopt)} drift finding(s) to adopt in git")
    reconciles: tuple[str, ...] = ()
    if revert and not dry_run:
        reconciles = revert_live(ctx, findings, now=now, actor=actor)
    first: dict[str, str] = {}
    if record and not dry_run:
        mr = ""
        if change is not None and change.merge_request is not None:
            mr = f"{change.plan.branch}!{change.merge_request.iid}"
        # A source that could not be read says nothing about its findings: keep them open.
        first = FindingStore(ctx.storage, ctx.platform.name).record(findings, now, scope=scope, merge_request=mr,
                                                                    close_missing=not snapshot.unavailable)
        ctx.state.audit(actor=actor, action="drift_check", target=f"drift/{ctx.platform.name}",
                        reason="scheduled or event-driven drift check", outcome="succeeded",
                        inputs={"scope": list(scope), "findings": len(findings),
                                "kinds": sorted({f.kind for f in findings}),
                                "unavailable": [s for s, _ in snapshot.unavailable]})
    for f in findings:
        log.info("drift %s %s %s: %s", f.severity, f.kind, f.key, f.message,
                 extra={"finding": f.key, "kind": f.kind, "severity": f.severity, "remedy": f.remedy})
    return DriftReport(ctx.platform.name, now, tuple(findings), tuple(scope), first, snapshot.unavailable, change,
                       reconciles, dry_run)


def adopt_request(env: str, findings: Sequence[d.Finding]) -> gc.ChangeRequest:
    """The platform.yaml change that makes git match the live values of ``findings``."""
    edits = [f.edit for f in findings if f.edit is not None]
    rows = tuple((f.severity, f.kind, f.resource, f.field, json.dumps(f.expected, default=str),
                  json.dumps(f.actual, default=str), "yes" if f.destructive else "no") for f in findings)
    return gc.ChangeRequest(
        env=env, topic=DRIFT_TOPIC, title=f"drift({env}): adopt {len(edits)} live value(s) in platform.yaml",
        summary=(f"The live platform in **{env}** differs from git. These values were changed outside git and are "
                 "adopted here so that `platform.yaml` stays the one source of truth. Close this merge request "
                 "to revert them instead (the next `terraform apply` puts git's values back)."),
        changes=(gc.FileChange(d.repo_platform_path(env), lambda text: _edit(text, edits)),),
        columns=("severity", "kind", "resource", "field", "git", "live", "destructive"), rows=rows,
        labels=("drift",), destructive=any(f.destructive for f in findings))


def _edit(text: str | None, edits: Sequence[d.YamlEdit]) -> str | None:
    return None if text is None else d.apply_edits(text, edits)


# -- revert live: Flux reconcile requests ---------------------------------------------------------


def _reconcile_targets(findings: Iterable[d.Finding]) -> list[tuple[str, str, str, str]]:
    targets: dict[tuple[str, str, str, str], None] = {}
    apis = {"kustomization": KUSTOMIZATIONS, "gitrepository": GIT_REPOSITORIES, "helmrelease": HELM_RELEASES}
    for f in findings:
        # A suspended child names its parent; the suspended root names nothing (only a human resumes it).
        if f.remedy != d.REVERT_LIVE or not f.reconcile:
            continue
        kind, ns, name = f.reconcile.split("/", 2)
        if kind in apis:
            targets[(*apis[kind], ns, name)] = None
    return list(targets)


def request_reconcile(ctx: Any, targets: Sequence[tuple[str, str, str, str]], *, now: dt.datetime,
                      actor: str, reason: str) -> tuple[str, ...]:
    """Set ``reconcile.fluxcd.io/requestedAt`` on each target (leased, audited). Returns what was asked."""
    from shared.services.actuation import mutate

    token = now.astimezone(dt.UTC).isoformat()
    done = []
    for api_version, plural, ns, name in targets:
        kind = {"gitrepositories": "gitrepository", "kustomizations": "kustomization",
                "helmreleases": "helmrelease"}.get(plural, plural)
        resource = f"{kind}/{ns}/{name}"
        try:
            mutate(ctx, actor=actor, action="flux_reconcile", target=f"flux/{ctx.platform.name}/{resource}",
                   reason=reason, inputs={"requestedAt": token},
                   change=lambda a=api_version, p=plural, n=name, s=ns: ctx.cluster.request_reconcile(a, p, n, s,
                                                                                                    token))
            done.append(resource)
        except PlatformError as error:
            log.warning("reconcile request for %s failed: %s", resource, error,
                        extra={"target": resource, "error_code": error.code})
    return tuple(done)


def revert_live(ctx: Any, findings: Sequence[d.Finding], *, now: dt.datetime, actor: str) -> tuple[str, ...]:
    targets = _reconcile_targets(findings)
    if not targets:
        return ()
    return request_reconcile(ctx, targets, now=now, actor=actor, reason="revert drift: Flux re-applies git")


def reconcile_environment(ctx: Any, *, now: dt.datetime, actor: str, reason: str) -> tuple[str, ...]:
    """After a push: the cluster's GitRepository and every Kustomization that reads it."""
    flux = [d.flux_object(o) for o in ctx.cluster.list(*GIT_REPOSITORIES)]
    sources = {f"GitRepository/{o.namespace}/{o.name}" for o in flux}
    kustomizations = [d.flux_object(o) for o in ctx.cluster.list(*KUSTOMIZATIONS)]
    targets = [(*GIT_REPOSITORIES, o.namespace, o.name) for o in flux]
    targets += [(*KUSTOMIZATIONS, o.namespace, o.name) for o in kustomizations
                if o.source in sources and not o.suspended]
    return request_reconcile(ctx, targets, now=now, actor=actor, reason=reason)


# -- Kubernetes version bumps -----------------------------------------------------------------------


@dataclass(frozen=True)
class VersionPlan:
    reason: str       # Propose | NotNewer | WaitForDev | DevNotThere
    message: str
    target: str | None = None


def next_minor(current: str, latest: str) -> str | None:
    """AKS upgrades one minor at a time: the next minor after ``current`` if ``latest`` reaches it."""
    cur, new = d._minor(current), d._minor(latest)
    if len(cur) != 2 or len(new) != 2 or new <= cur:
        return None
    return f"{cur[0]}.{cur[1] + 1}" if new[0] == cur[0] else f"{new[0]}.{new[1]}"


def plan_version_bump(env: str, current: str, latest: str, *, now: dt.datetime, soak: dt.timedelta,
                      dev_version: str | None, dev_since: dt.datetime | None) -> VersionPlan:
    """Pure: dev first; another environment once dev has declared the target for ``soak``."""
    target = next_minor(current, latest)
    if target is None:
        return VersionPlan("NotNewer", f"{env} declares {current}; {latest} is not a newer minor")
    if env == FIRST_ENV:
        return VersionPlan("Propose", f"{env} goes first: propose {current} -> {target}", target)
    if dev_version is None or d._minor(dev_version) < d._minor(target):
        return VersionPlan("DevNotThere", f"{FIRST_ENV} does not run {target} yet; {env} waits for it")
    if dev_since is None or now - dev_since < soak:
        return VersionPlan("WaitForDev", f"{FIRST_ENV} has run {target} for less than {soak}; {env} waits", target)
    return VersionPlan("Propose", f"{FIRST_ENV} has run {target} since {dev_since:%Y-%m-%d}: propose it for {env}",
                       target)


def version_request(env: str, current: str, target: str, latest: str) -> gc.ChangeRequest:
    edit = d.YamlEdit(("cluster", "kubernetes_version"), target)
    return gc.ChangeRequest(
        env=env, topic=VERSION_TOPIC, title=f"aks({env}): Kubernetes {current} -> {target}",
        summary=(f"AKS offers Kubernetes {latest} in this region. This moves **{env}** one minor up "
                 f"({current} -> {target}); the next `terraform apply` upgrades the control plane and the pools "
                 f"in the maintenance window. {FIRST_ENV} goes first; the others follow once it has run the "
                 "new minor for the configured soak time."),
        changes=(gc.FileChange(d.repo_platform_path(env), lambda text: _edit(text, [edit])),),
        columns=("environment", "declared", "proposed", "latest offered"), rows=((env, current, target, latest),),
        labels=("kubernetes-upgrade",), destructive=False)


def propose_version_bump(ctx: Any, latest: str, *, now: dt.datetime, soak: dt.timedelta,
                         dry_run: bool, actor: str) -> tuple[VersionPlan, gc.ChangeOutcome | None]:
    import yaml

    env = ctx.platform.name
    text = ctx.git.read_file(d.repo_platform_path(env), ctx.platform.gitlab.default_branch)
    raw = yaml.safe_load(text or d.platform_file(ctx).read_text(encoding="utf-8"))
    current = str((raw.get("cluster") or {}).get("kubernetes_version") or "")
    dev_version = dev_since = None
    if env != FIRST_ENV:
        branch = ctx.platform.gitlab.default_branch
        path = d.repo_platform_path(FIRST_ENV)
        text = ctx.git.read_file(path, branch)
        if text:
            dev_version = str(((yaml.safe_load(text) or {}).get("cluster") or {}).get("kubernetes_version") or "")
            dev_since = ctx.git.last_changed(path, branch)
    plan = plan_version_bump(env, current, latest, now=now, soak=soak, dev_version=dev_version, dev_since=dev_since)
    if plan.reason != "Propose" or plan.target is None:
        return plan, None
    outcome = gc.propose(ctx, version_request(env, current, plan.target, latest), dry_run=dry_run, actor=actor,
                         reason=plan.message)
    return plan, outcome
