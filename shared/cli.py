"""platformctl: the operator CLI. It calls the same services as the functions, for dry runs and
break-glass work. Every command takes ``--env`` and ``--json``; output is readable by default;
failures print a clear message and exit non-zero. ``--dry-run`` belongs to the commands that change
something: they are registered with ``mutating=True`` and pass ``args.dry_run`` on to ``mutate`` (which
audits the plan as ``planned`` and changes nothing); on a read-only command it is refused (exit 2)
rather than silently ignored.

Settings come from the environment (as in Azure), optionally loaded first from a local.settings.json
style file with ``--settings`` (``make run`` writes one for its sandbox).

Exit codes: 0 ok, 1 the operation failed or a dependency is unhealthy, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import __version__, logs
from shared.errors import BadInputError, ConfigError, PermanentError, PlatformError, TemporaryError
from shared.platform import ENVIRONMENTS

Command = Callable[[Any, argparse.Namespace], tuple[int, Any, str]]
#: Extra arguments of a command's subparser, by command name (commands registered from other modules).
COMMAND_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {}


@dataclass(frozen=True)
class CommandSpec:
    help: str
    run: Command
    #: Whether the command changes anything; only those accept ``--dry-run``.
    mutating: bool = False
    #: Whether these arguments need the environment's settings (a ``Context``); offline work such as
    #: ``scaling simulate`` runs with ``ctx=None`` and no settings at all.
    needs_context: Callable[[argparse.Namespace], bool] = field(default=lambda args: True)


COMMANDS: dict[str, CommandSpec] = {}


def command(name: str, help_text: str, *, mutating: bool = False,
            needs_context: Callable[[argparse.Namespace], bool] | None = None) -> Callable[[Command], Command]:
    """Register a command. ``mutating=True``: it changes something, and honours ``args.dry_run``.
    ``needs_context``: False for the arguments that work offline (default: every invocation needs settings)."""
    def register(fn: Command) -> Command:
        COMMANDS[name] = CommandSpec(help_text, fn, mutating, needs_context or (lambda args: True))
        return fn

    return register


@command("health", "what is configured and what is reachable (one cheap read per dependency)")
def cmd_health(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    from shared.services import health

    described = health.describe(ctx)
    statuses = health.probe(ctx)
    unhealthy = [s for s in statuses if s.configured and not s.reachable]
    data = {**described, "status": "degraded" if unhealthy else "ok",
            "probes": [vars(s) for s in statuses]}
    lines = [f"platform-core {__version__}  environment {ctx.platform.name}", ""]
    width = max(len(s.name) for s in statuses)
    for s in statuses:
        mark = "-" if s.reachable is None else ("ok" if s.reachable else "FAIL")
        lines.append(f"  {s.name:<{width}}  {mark:<4}  {s.detail}  ({s.seconds:.2f}s)" if s.configured
                     else f"  {s.name:<{width}}  {mark:<4}  not configured")
    lines += ["", f"{len(statuses) - len(unhealthy)} of {len(statuses)} dependencies healthy"
              + (f"; unhealthy: {', '.join(s.name for s in unhealthy)}" if unhealthy else "")]
    return (1 if unhealthy else 0), data, "\n".join(lines)


def _since(text: str | None, now: Any) -> Any:
    """``30m``, ``6h``, ``7d`` ago, or an ISO 8601 time; None when not given."""
    import datetime as dt

    if not text:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[:-1].isdigit() and text[-1] in units:
        return now - dt.timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"--since: expected 30m, 6h, 7d or an ISO 8601 time, got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@command("audit", "what the automation did: the audit trail, by target and time, oldest first; "
         "`audit verify TARGET` checks its hash chain")
def cmd_audit(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    words = list(getattr(args, "verify", None) or [])
    if words:
        if len(words) != 2 or words[0] != "verify":
            raise BadInputError("usage: platformctl audit verify TARGET (or audit [--target T] [--since S])")
        verdict = ctx.state.verify_audit(words[1])
        return (0 if verdict.ok else 1), {"target": verdict.target, "ok": verdict.ok, "records": verdict.records,
                                          "problems": list(verdict.problems)}, verdict.message
    since = _since(args.since, ctx.clock())
    records = ctx.state.audit_trail(args.target, since=since, limit=args.limit)
    data = [{**vars(r), "time": r.time.isoformat()} for r in records]
    if not records:
        return 0, data, "no audit records" + (f" for {args.target}" if args.target else "") + \
            (f" since {since.isoformat()}" if since else "")
    lines = [f"{r.time:%Y-%m-%d %H:%M:%S}Z  {r.outcome:<9}  {r.actor:<14} {r.action:<10} {r.target}  "
             f"[{r.reason}] {r.message}".rstrip() for r in records]
    return 0, data, "\n".join(lines)


def load_settings_file(path: str) -> dict[str, str]:
    """Read the ``Values`` of a local.settings.json file (Core Tools' format)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"--settings: {path} not found (is `make run` running?)"]) from None
    except ValueError as exc:
        raise ConfigError([f"--settings: {path} is not JSON: {exc}"]) from None
    values = data.get("Values") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise ConfigError([f"--settings: {path} has no \"Values\" object"])
    return {str(k): str(v) for k, v in values.items()}


def _common_options(target: argparse.ArgumentParser) -> None:
    # SUPPRESS defaults let the options stand before or after the command name without clobbering.
    target.add_argument("--env", choices=ENVIRONMENTS, default=argparse.SUPPRESS,
                        help="environment (default: PLATFORM_ENV)")
    target.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS,
                        help="decide and show the plan; change nothing (commands that change something)")
    target.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    target.add_argument("--settings", metavar="FILE", default=argparse.SUPPRESS,
                        help="load settings from a local.settings.json file first")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="platformctl", description="Platform Core operator CLI.")
    parser.add_argument("--version", action="version", version=f"platformctl {__version__}")
    _common_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, spec in COMMANDS.items():
        help_text = spec.help if spec.mutating else f"{spec.help} (read-only)"
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common_options(p)
        if name == "audit":
            p.add_argument("--target", help="one resource, e.g. nodepool/dev-uaenorth/h100 (default: all)")
            p.add_argument("--since", help="30m, 6h, 7d or an ISO 8601 time (default: all)")
            p.add_argument("--limit", type=int, default=50, help="newest N records (default 50)")
            p.add_argument("verify", nargs="*", metavar="verify TARGET",
                           help="check TARGET's hash chain: exit 1 when a record was edited or deleted")
        if name in COMMAND_OPTIONS:
            COMMAND_OPTIONS[name](p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("env", None), ("dry_run", False), ("json", False), ("settings", None)):
        if not hasattr(args, name):
            setattr(args, name, default)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    logs.configure(os.environ.get("LOG_LEVEL", "WARNING"))
    spec = COMMANDS[args.command]
    if args.dry_run and not spec.mutating:
        mutating = sorted(name for name, s in COMMANDS.items() if s.mutating)
        return _fail(args, BadInputError(
            f"{args.command} is read-only: --dry-run applies to commands that change something"
            f" ({', '.join(mutating) if mutating else 'none yet'}); run it without --dry-run"), 2, "bad usage")
    try:
        environ = dict(os.environ)
        if args.settings:
            environ = load_settings_file(args.settings)
        if args.env:
            environ["PLATFORM_ENV"] = args.env
        ctx = None
        if spec.needs_context(args):
            from shared.context import Context

            ctx = Context.from_env(environ)
        code, data, text = spec.run(ctx, args)
    except ConfigError as exc:
        return _fail(args, exc, 2, "configuration")
    except BadInputError as exc:
        return _fail(args, exc, 2, "bad input")
    except TemporaryError as exc:
        return _fail(args, exc, 1, "temporary failure (try again)")
    except PermanentError as exc:
        return _fail(args, exc, 1, "failed")
    except PlatformError as exc:
        return _fail(args, exc, 1, "failed")
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)
    return code


def _fail(args: argparse.Namespace, exc: PlatformError, code: int, label: str) -> int:
    message = logs.redact_text(str(exc))
    if args.json:
        print(json.dumps({"error": exc.code, "message": message,
                          "remediation": getattr(exc, "remediation", "") or None}, indent=2))
    else:
        print(f"platformctl: {label}: {message}", file=sys.stderr)
    return code


# Command modules register themselves on import (they import `command` and COMMAND_OPTIONS from here).
from shared import (  # noqa: E402, F401 - the command modules register themselves
    cli_certs,
    cli_chat,
    cli_cost,
    cli_drift,
    cli_gate,
    cli_models,
    cli_scaling,
    cli_scan,
)

if __name__ == "__main__":
    # `python -m shared.cli`: this file runs as __main__, but the command modules registered themselves with
    # `shared.cli` (imported above under its own name): run that module's main, which knows them all.
    from shared.cli import main as registered_main

    sys.exit(registered_main())

