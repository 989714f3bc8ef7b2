"""``platformctl certs``: origin certificate status, rotation and cleanup (registered on import from ``shared.cli``).

- ``certs status [--json]``: per certificate the Key Vault version, serial, issuer, not-after, days left,
  the decision with its reason, and pending revocations with what each waits for.
- ``certs rotate NAME [--dry-run] [--force]``: check one certificate now and rotate it when due (``--force``:
  whatever the decision says). ``--dry-run`` decides and audits the plan, changes nothing.
- ``certs cleanup [--apply]``: revoke superseded certificates whose time has come and orphans (origin
  certificates for our hostnames that no Key Vault version references). A dry run unless ``--apply``.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from shared import cli

ACTIONS = ("status", "rotate", "cleanup")


def _actor() -> str:
    try:
        return f"platformctl:{getpass.getuser()}"
    except (KeyError, OSError):
        return "platformctl"


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="status | rotate NAME | cleanup")
    parser.add_argument("name", nargs="?", help="certificate name (Key Vault), for rotate")
    parser.add_argument("--force", action="store_true", help="rotate: renew even when not due")
    parser.add_argument("--apply", action="store_true", help="cleanup: revoke (default: report only)")


def cmd_certs(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    from shared.errors import BadInputError
    from shared.services import certificates_rotation as rotation

    if args.action == "status":
        rows = rotation.status(ctx)
        lines = []
        for r in rows:
            lines.append(f"{r['certificate']}: {r['decision']} [{r['reason']}]  version {r['version'] or '-'}  "
                         f"serial {r['serial'] or '-'}  not-after {r['not_after'] or '-'}  days left "
                         f"{r['days_left'] if r['days_left'] is not None else '-'}")
            lines.append(f"    issuer {r['issuer'] or '-'}; {'ours' if r['managed_by_us'] else 'not imported by us'}")
            for p in r["pending_revocations"]:
                lines.append(f"    pending revocation of Cloudflare {p['cloudflare_id']} (after {p['revoke_after']}): "
                             f"{p['waiting']}")
        return 0, rows, "\n".join(lines) or "no certificates are managed in this environment"
    if args.action == "rotate":
        if not args.name:
            raise BadInputError("certs rotate needs a certificate NAME (see `platformctl certs status`)")
        outcome = rotation.check(ctx, args.name, actor=_actor(), trigger="cli", force=args.force,
                                 dry_run=args.dry_run)
        return 0, outcome.as_dict(), outcome.message or outcome.decision.message
    apply = args.apply and not args.dry_run
    retired = rotation.retire(ctx, actor=_actor(), dry_run=not apply)
    orphans = rotation.sweep_orphans(ctx, actor=_actor(), apply=apply)
    data = {"applied": apply, "superseded": retired, "orphans": orphans}
    lines = [f"{'revoking' if apply else 'dry run (add --apply to revoke)'}:"]
    lines += [f"  superseded {r['certificate']} Cloudflare {r['cloudflare_id']}: {r['outcome']}"
              + (f" ({r['waiting']})" if r.get("waiting") else "") for r in retired]
    lines += [f"  orphan Cloudflare {o['cloudflare_id']} ({', '.join(o['hostnames'])}, issued {o['issued']}): "
              f"{o['outcome']}" for o in orphans]
    if not retired and not orphans:
        lines.append("  nothing to retire, no orphans")
    failed = any(x.get("outcome") in ("failed", "deferred") for x in [*retired, *orphans])
    return (1 if failed else 0), data, "\n".join(lines)


# Registered on import from shared.cli, like every command module. Mutating: rotate and cleanup change
# things and honour --dry-run (status ignores it).
cli.command("certs", "origin certificates: status | rotate NAME [--force] | cleanup [--apply]",
            mutating=True)(cmd_certs)
cli.COMMAND_OPTIONS["certs"] = options
