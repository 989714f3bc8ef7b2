"""``platformctl models ...``: the inference gateway's models (README "AI stack").

    platformctl models status [--json]       # per model: where its traffic goes first, why, since when, signals
    platformctl models route [--dry-run]      # one model_routing tick now (what the timer does every minute)
    platformctl models verify DIR             # check a model's weights against its SHA256SUMS (offline)
    platformctl models pull DIR --model NAME --revision REV [--dry-run]
                                              # verify, then copy into the models container (<model>/<revision>/)

Registration: this module adds ``models`` to ``shared.cli``'s registry (``verify`` needs no settings).
"""

from __future__ import annotations

import argparse
from typing import Any

from shared import cli
from shared.errors import BadInputError

ACTIONS = ("status", "route", "verify", "pull")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_action", metavar="ACTION")
    status = sub.add_parser("status", help="per model: the backend its traffic goes to first, and why")
    status.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    route = sub.add_parser("route", help="one model_routing tick now (switches and audits; --dry-run: plans only)")
    route.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    route.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS)
    verify = sub.add_parser("verify", help="check a model directory against its SHA256SUMS manifest")
    verify.add_argument("directory")
    verify.add_argument("--manifest", help="default: DIR/SHA256SUMS")
    verify.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    pull = sub.add_parser("pull", help="verify a model directory, then copy it into the models container")
    pull.add_argument("directory")
    pull.add_argument("--model", required=True, help="e.g. platform-llm (the container path's first part)")
    pull.add_argument("--revision", required=True, help="e.g. the publisher's commit or a date")
    pull.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    pull.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS)


def cmd_models(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    action = getattr(args, "models_action", None)
    if action == "status":
        return _status(ctx)
    if action == "route":
        return _route(ctx, bool(getattr(args, "dry_run", False)))
    if action == "verify":
        return _verify(args)
    if action == "pull":
        return _pull(ctx, args)
    raise BadInputError(f"models: expected one of {', '.join(ACTIONS)}")


def _status(ctx: Any) -> tuple[int, Any, str]:
    from shared.services import model_routing

    rows = model_routing.status(ctx, now=ctx.clock())
    lines = []
    for r in rows:
        lines.append(f"{r.model}: -> {r.routed_to or '?'} ({r.pool or '?'}) reason {r.reason or '?'}"
                     f" since {r.since or '?'}")
        if r.message:
            lines.append(f"  {r.message}")
        lines.append(f"  fallback: {' > '.join(r.fallback)}")
        for pool, s in sorted(r.signals.items()):
            wait = s["queue_wait_seconds"]
            lines.append(f"  pool {pool}: queue wait {'unknown' if wait is None else f'{wait:.1f}s'}"
                         f"{', GPU quota exhausted' if s['quota_exhausted'] else ''}")
    return 0, {"env": ctx.platform.name, "models": [r.as_dict() for r in rows]}, "\n".join(lines) or "no models"


def _route(ctx: Any, dry_run: bool) -> tuple[int, Any, str]:
    from shared.services import model_routing

    plans = model_routing.tick(ctx, now=ctx.clock(), dry_run=dry_run)
    data = [{"model": p.model, "current": p.current, "target": p.target, "reason": p.reason,
             "message": p.message, "switch": p.switch, "dry_run": dry_run} for p in plans]
    verb = "would switch" if dry_run else "switched"
    text = "\n".join(
        f"{p.model}: {f'{verb} {p.current} -> {p.target}' if p.switch else f'stays on {p.target}'} ({p.reason}): "
        f"{p.message}" for p in plans)
    return 0, data, text or "no models"


def _verify(args: argparse.Namespace) -> tuple[int, Any, str]:
    from pathlib import Path

    from shared.services import model_storage

    directory = Path(args.directory)
    manifest = Path(args.manifest) if args.manifest else directory / model_storage.MANIFEST
    report = model_storage.verify_directory(directory, manifest)
    text = report.summary()
    return (0 if report.ok else 1), report.as_dict(), text


def _pull(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    from pathlib import Path

    from shared.services import model_storage

    dry_run = bool(getattr(args, "dry_run", False))
    report = model_storage.pull(model_storage.container_client(ctx), Path(args.directory), model=args.model,
                                revision=args.revision, now=ctx.clock().isoformat(), dry_run=dry_run)
    ctx.state.audit(actor="platformctl", action="models-pull", target=f"models/{ctx.platform.name}/{report.prefix}",
                    reason="ModelPulled", outcome="planned" if dry_run else "succeeded",
                    inputs=report.as_dict(),
                    message=f"{len(report.uploaded)} uploaded, {len(report.skipped)} already there")
    verb = "would upload" if dry_run else "uploaded"
    return 0, report.as_dict(), (f"{report.prefix}: {verb} {len(report.uploaded)} file(s), {len(report.skipped)} "
                                 f"already there; point vLLM's --model at /models/{report.prefix}")


cli.command("models", "inference models: status, route (one fallback tick), verify and pull (weights checksums)",
            mutating=True, needs_context=lambda args: getattr(args, "models_action", None) != "verify")(cmd_models)
cli.COMMAND_OPTIONS["models"] = configure
