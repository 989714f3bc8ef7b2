"""What each chat command does, through the same services as ``platformctl``; the answer as chat text.

``run(ctx, command, actor=..., now=...)`` returns a ``Result``: plain text (Slack mrkdwn and Teams both read
it), an outcome for the audit trail and the data behind it. A service that fails is answered with its
error's code and message (redacted), never a stack trace. Only the environment this app manages is
reachable: ``service`` refuses other environments before anything runs.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from shared import logs
from shared.errors import BadInputError, PlatformError
from shared.services.chatops.grammar import Command

log = logging.getLogger("platform_core.chatops")


@dataclass(frozen=True)
class Result:
    text: str
    outcome: str = "succeeded"  # succeeded | failed | skipped
    data: dict[str, Any] = field(default_factory=dict)


def run(ctx: Any, command: Command, *, actor: str, now: dt.datetime) -> Result:
    handler = _HANDLERS[command.verb]
    try:
        return handler(ctx, command, actor, now)
    except PlatformError as error:
        log.warning("chat command %s failed: %s: %s", command.verb, error.code, error,
                    extra={"verb": command.verb, "error_code": error.code})
        hint = getattr(error, "remediation", "")
        return Result(f"`{command.text}` failed: {error.code}: {logs.redact_text(error.message)}"
                      + (f"\nWhat to do: {hint}" if hint else ""), "failed", {"error": error.code})


# -- read-only ----------------------------------------------------------------------------------------

def _status(ctx: Any, command: Command, actor: str, now: dt.datetime) -> Result:
    env = ctx.platform.name
    lines, data = [f"*{env}* at {now:%Y-%m-%d %H:%M}Z"], {}

    def part(name: str, fn: Any) -> None:
        try:
            text, value = fn()
        except PlatformError as error:
            text, value = f"unavailable ({error.code})", {"error": error.code}
        lines.append(f"*{name}*: {text}" if "\n" not in text else f"*{name}*:\n{text}")
        data[name] = value

    def cluster() -> tuple[str, Any]:
        settings = ctx.node_pools.cluster_settings()
        pools = ctx.node_pools.list()
        busy = [p.name for p in pools if p.busy]
        return (f"Kubernetes {settings.get('kubernetes_version') or '?'}, {len(pools)} node pool(s)"
                + (f", busy: {', '.join(busy)}" if busy else ""), settings)

    def gpu() -> tuple[str, Any]:
        from shared.services.scaling import tick

        rows, out = [], []
        pause = tick.autoscaling_pause(ctx.storage, env)
        for pool in ctx.platform.gpu_pools:
            reading = tick.read_pool(ctx, pool, now.timestamp())
            obs = reading.observation()
            carried = tick.load_carried(ctx.storage, env, pool.name)
            target = (carried.last or {}).get("target")
            override = carried.policy.override
            pinned = override is not None and override.active(now.timestamp())
            rows.append({"pool": pool.name, "depth": reading.depth, "ready": obs.ready if obs else None,
                         "target": target, "override": override.count if pinned else None})
            out.append(f"  {pool.name}: depth {_n(reading.depth)}, ready {_n(obs.ready if obs else None)}, "
                       f"target {_n(target)}" + (f", pinned at {override.count}" if pinned else ""))
        if pause:
            out.insert(0, f"  autoscaling PAUSED by {pause['by']} at {pause['at']}")
        return "\n".join(out) or "no GPU pools", {"pools": rows, "paused": pause}

    def certs() -> tuple[str, Any]:
        from shared.services import certificates_rotation as rotation

        rows = rotation.status(ctx)
        return ", ".join(f"{r['certificate']} {_n(r['days_left'])} days left" for r in rows) or "none managed", \
            [{"certificate": r["certificate"], "days_left": r["days_left"]} for r in rows]

    def drift() -> tuple[str, Any]:
        from shared.services.drift_actions import FindingStore

        open_ = FindingStore(ctx.storage, env).all(status="open")
        return (f"{len(open_)} open finding(s)" + (": " + ", ".join(f.key for f in open_[:5]) if open_ else "")), \
            {"open": len(open_)}

    def scan() -> tuple[str, Any]:
        compliance = _compliance()
        if compliance is None:
            return "scans are not installed", None
        report = compliance.last_scan(ctx, env=env)
        return (report.chat_summary() if report else "no scan yet"), (report.as_dict()["summary"] if report else None)

    for name, fn in (("cluster", cluster), ("gpu pools", gpu), ("certificates", certs), ("drift", drift),
                     ("last scan", scan)):
        part(name, fn)
    return Result("\n".join(lines), data=data)


def _certs(ctx: Any, command: Command, actor: str, now: dt.datetime) -> Result:
    from shared.services import certificates_rotation as rotation

    rows = rotation.status(ctx)
    lines = [f"{r['certificate']}: {_n(r['days_left'])} days left, not after {r['not_after'] or '-'}, "
             f"{r['decision']} [{r['reason']}]" for r in rows]
    return Result("\n".join(lines) or f"no certificates are managed in {ctx.platform.name}",
                  data={"certificates": [{k: r[k] for k in ("certificate", "days_left", "decision", "reason")}
                                         for r in rows]})


def _drift(ctx: Any, command: Command, actor: str, now: dt.datetime) -> Result:
    from shared.services import drift_actions

    report = drift_actions.run_check(ctx, now=now, dry_run=True, open_mr=False, record=False, actor=actor)
    lines = [f"drift in {report.env}: {len(report.findings)} finding(s)"]
    for f in report.findings[:15]:
        lines.append(f"  {f.severity} {f.kind} {f.resource}" + (f" {f.field}" if f.field else "") + f": {f.message}")
    if len(report.findings) > 15:
        lines.append(f"  ... and {len(report.findings) - 15} more (`platformctl drift`)")
    for source, error in report.unavailable:
        lines.append(f"  could not read {source}: {error}")
    return Result("\n".join(lines), data={"findings": len(report.findings)})


def _scan(ctx: Any, command: Command, actor: str, now: dt.datetime) -> Result:
    compliance = _compliance()
    if compliance is None:
        return Result("Compliance scans are not installed in this app yet.", "skipped")
    report = compliance.run_scan(ctx, env=ctx.platform.name, now=now)
    return Result(report.chat_summary(), data={"summary": report.as_dict().get("summary", {})})


def _audit(ctx: Any, command: Command, actor: str, now: dt.datetime) -> Result:
    target = command.args["target"]
    records = ctx.state.audit_trail(target, limit=10)
    verified = ctx.state.verify_audit(target)
    lines = [f"{r.time:%Y-%m-%d %H:%M:%S}Z {r.outcome} {r.actor} {r.action} [{r.reason}] {r.message}".rstrip()
             for r in records]
    lines.append(verified.message)
    return Result("\n".join(lines) if records else f"no audit records for {target}\n{verified.message}",
                  data={"records": len(records), "intact": verified.ok})


# -- mutating -----------------------------------------------------------------------------------------

def _scale(ctx: Any, command: Command, actor: str, now: dt.datetime) -> Result:
    from shared.services.scaling import tick

    name, count = command.args["pool"], command.args["count"]
    try:
        pool = ctx.platform.gpu_pool(name)
    except KeyError:
        raise BadInputError(f"no GPU pool {name!r} in {ctx.platform.name} "
                            f"({', '.join(p.name for p in ctx.platform.gpu_pools)})") from None
    if count is None:  # auto: an override that has already expired hands the pool back to the policy
        tick.set_override(ctx, pool.name, 0, now, by=actor)
        return Result(f"{pool.name} is back under the autoscaling policy.", data={"pool": pool.name, "count": None})
    bounds = tick.parameters_for(pool)
    if not bounds.min_count <= count <= bounds.max_count:
        return Result(f"{pool.name} may hold {bounds.min_count} to {bounds.max_count} node(s) (its bounds in "
                      f"platform.yaml); {count} is outside them.", "skipped",
                      {"pool": pool.name, "count": count, "min": bounds.min_count, "max": bounds.max_count})
    until = now + dt.timedelta(seconds=command.args["seconds"])
    tick.set_override(ctx, pool.name, count, until, by=actor)
    return Result(f"{pool.name} pinned at {count} node(s) until {until:%Y-%m-%d %H:%M}Z; the next tick scales it.",
                  data={"pool": pool.name, "count": count, "until": until.isoformat()})


def _rotate(ctx: Any, command: Command, actor: str, now: dt.datetime) -> Result:
    from shared.services import certificates_rotation as rotation

    name = command.args["certificate"]
    if name not in {c.name for c in ctx.platform.certificates}:
        raise BadInputError(f"no managed certificate {name!r} in {ctx.platform.name} "
                            f"({', '.join(c.name for c in ctx.platform.certificates)})")
    outcome = rotation.check(ctx, name, actor=actor, trigger="chat")
    failed = outcome.action in ("failed", "deferred")
    return Result(f"{name}: {outcome.action}. {outcome.message or outcome.decision.message}",
                  "failed" if failed else "succeeded", {"action": outcome.action})


def _drift_mr(ctx: Any, command: Command, actor: str, now: dt.datetime) -> Result:
    from shared.services import drift_actions

    report = drift_actions.run_check(ctx, now=now, dry_run=False, open_mr=True, actor=actor)
    if report.change is None:
        return Result(f"{len(report.findings)} finding(s) in {report.env}; nothing to adopt in git.",
                      data={"findings": len(report.findings)})
    plan, mr = report.change.plan, report.change.merge_request
    return Result(f"merge request {plan.reason}: {plan.message}" + (f"\n{mr.web_url}" if mr else ""),
                  data={"reason": plan.reason, "url": mr.web_url if mr else None})


def _pause(paused: bool) -> Any:
    def handler(ctx: Any, command: Command, actor: str, now: dt.datetime) -> Result:
        from shared.services.scaling import tick

        changed = tick.set_autoscaling_paused(ctx, paused=paused, by=actor, reason=f"chat: {command.text}", now=now)
        state = "paused" if paused else "running"
        if not changed:
            return Result(f"GPU autoscaling in {ctx.platform.name} was already {state}.", "skipped")
        return Result(f"GPU autoscaling in {ctx.platform.name} is {state}"
                      + (": ticks decide and audit but change nothing until `resume autoscaling`." if paused
                         else " again."))
    return handler


# -- helpers -----------------------------------------------------------------------------------------

COMPLIANCE_MODULE = "shared.services.compliance"


def _compliance() -> Any:
    """The compliance service (issue #12), or None where it is not installed."""
    try:
        return importlib.import_module(COMPLIANCE_MODULE)
    except ImportError:
        return None


def _n(value: Any) -> str:
    return "?" if value is None else str(value)


_HANDLERS = {
    "status": _status, "certs": _certs, "drift": _drift, "scan": _scan, "audit": _audit, "scale": _scale,
    "rotate": _rotate, "drift mr": _drift_mr, "pause autoscaling": _pause(True), "resume autoscaling": _pause(False),
}
