"""``platformctl scaling ...``: the GPU pool scaling commands, registered from ``shared.cli`` by one import.

    platformctl scaling simulate --trace FILE [--scenario NAME] [--policy NAME] [--json] [--plot FILE.png]
    platformctl scaling status [--json]
    platformctl scaling decide --pool NAME            # one dry-run tick against the live or sandbox estate
    platformctl scaling override POOL N --for 2h      # pin a pool; the policy honours it until it expires

``simulate`` works offline (no settings needed): it replays a trace through the real policy and the
baselines (``shared.services.scaling.simulator``). The others use the environment's settings as every
platformctl command does.

Registration: this module adds ``scaling`` to ``shared.cli``'s registry with its sub-parser options
(``COMMAND_OPTIONS``) and ``needs_context`` false for ``simulate``, so that it runs without settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from shared import cli
from shared.errors import BadInputError

ACTIONS = ("simulate", "status", "decide", "override")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scaling_action", metavar="ACTION")
    sim = sub.add_parser("simulate", help="replay a request trace through the policy and the baselines")
    sim.add_argument("--trace", required=True, help="CSV in the Azure LLM inference trace format")
    sim.add_argument("--scenario", default="steady", help="steady, bursty, cold or day (default steady)")
    sim.add_argument("--policy", action="append", help="policy, keda or static (repeatable; default all three)")
    sim.add_argument("--plot", metavar="FILE.png", help="draw arrivals, queue, target and nodes per policy")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--pool", default="h100", help="GPU pool whose VM price (the price file) costs the "
                     "node-hours (default h100 of --env, else dev-uaenorth)")
    sim.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    status = sub.add_parser("status", help="per pool: depth, in flight, nodes, target, last decision, override")
    status.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    decide = sub.add_parser("decide", help="one dry-run tick for a pool: what the timer would do now")
    decide.add_argument("--pool", required=True)
    decide.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    override = sub.add_parser("override", help="pin a pool at N nodes for a while (the policy honours it)")
    override.add_argument("pool")
    override.add_argument("count", type=int)
    override.add_argument("--for", dest="duration", required=True, help="30m, 2h, 1d")
    override.add_argument("--by", default="platformctl", help="who asks (recorded in the audit trail)")
    override.add_argument("--json", action="store_true", default=argparse.SUPPRESS)


def cmd_scaling(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    action = getattr(args, "scaling_action", None)
    if action == "simulate":  # offline: ctx is None (registered with needs_context false for it)
        return simulate(args)
    if action == "status":
        return _status(ctx)
    if action == "decide":
        return _decide(ctx, args.pool)
    if action == "override":
        return _override(ctx, args)
    raise BadInputError(f"scaling: expected one of {', '.join(ACTIONS)}")


def simulate(args: argparse.Namespace) -> tuple[int, Any, str]:
    from shared.services.scaling import simulator as sim

    if args.scenario not in sim.SCENARIOS:
        raise BadInputError(f"--scenario: expected one of {', '.join(sim.SCENARIOS)}, got {args.scenario!r}")
    policies = args.policy or list(sim.POLICIES)
    unknown = [p for p in policies if p not in sim.POLICIES]
    if unknown:
        raise BadInputError(f"--policy: expected one of {', '.join(sim.POLICIES)}, got {', '.join(unknown)}")
    try:
        trace = sim.load_trace(args.trace)
    except FileNotFoundError:
        raise BadInputError(f"--trace: {args.trace} not found") from None
    except (KeyError, ValueError) as exc:
        raise BadInputError(f"--trace: {args.trace} is not a trace (TIMESTAMP, ContextTokens, "
                            f"GeneratedTokens): {exc}") from None
    price = _node_hour_price(args.env or "dev-uaenorth", args.pool)
    run = sim.run_scenario(sim.scenario(args.scenario, trace, seed=args.seed),
                           config=sim.SimConfig(seed=args.seed, node_hour_price=price), policies=policies)
    if args.plot:
        sim.plot(run, args.plot)
    [data] = sim.metrics_json([run])
    text = sim.table([run]) + (f"\n\nplot written to {args.plot}" if args.plot else "")
    return 0, data, text


def _node_hour_price(env: str, pool: str) -> float:
    from shared.errors import ConfigError
    from shared.services import cost_prices

    try:
        return cost_prices.pool_price(env, pool)[1]
    except KeyError as exc:  # no such pool, or no price for its size: say which
        raise BadInputError(f"--pool: {exc}") from None
    except ConfigError as exc:
        raise BadInputError(f"--pool: {exc}") from None


def _status(ctx: Any) -> tuple[int, Any, str]:
    from shared.services import cost_prices
    from shared.services.scaling import tick

    book = cost_prices.load()
    total = 0.0

    now = ctx.clock()
    rows, lines = [], []
    for pool in ctx.platform.gpu_pools:
        reading = tick.read_pool(ctx, pool, now.timestamp(), serving=tick.serving_of(ctx.platform, pool))
        obs = reading.observation()
        carried = tick.load_carried(ctx.storage, ctx.platform.name, pool.name)
        override = carried.policy.override
        active = override is not None and override.active(now.timestamp())
        row = {
            "pool": pool.name, "depth": reading.depth,
            "in_flight": obs.in_flight if obs else None, "in_flight_source": reading.in_flight_source,
            "ready": obs.ready if obs else None,
            "provisioning": obs.provisioning if obs else None,
            "target": (carried.last or {}).get("target"), "last": carried.last, "drain": carried.drain,
            "fallback_to": carried.fallback_to,
            "override": {"count": override.count, "until": _iso(override.expires_at), "by": override.by}
            if active else None,
            "problems": list(reading.problems),
            # the pool's nodes and the serving pods on each (the drain waits for those on cordoned nodes to go)
            "nodes": None if reading.nodes is None else [
                {"name": n.name, "ready": n.ready, "cordoned": n.cordoned, "serving_pods": n.serving_pods}
                for n in reading.nodes],
        }
        row.update(_pool_cost(book, ctx.platform.location, pool.vm_size, obs))
        total += row["cost_per_hour"] or 0.0
        rows.append(row)
        last = carried.last or {}
        lines.append(
            f"{pool.name:<8} depth {_n(row['depth'])}  in flight {_n(row['in_flight'])} ({reading.in_flight_source})"
            f"  ready {_n(row['ready'])}"
            f"  provisioning {_n(row['provisioning'])}  target {_n(row['target'])}"
            + (f"\n         last: {last.get('reason')} ({last.get('action')}) {last.get('message')}" if last else
               "\n         last: no decision yet")
            + (f"\n         override: {override.count} until {_iso(override.expires_at)}" if active else "")
            + ("\n         nodes: " + ", ".join(
                f"{n.name} ({'cordoned, ' if n.cordoned else ''}{'' if n.ready else 'not ready, '}"
                f"{n.serving_pods} serving pod{'' if n.serving_pods == 1 else 's'})" for n in reading.nodes)
               if reading.nodes else "")
            + (f"\n         draining: {', '.join(carried.drain['nodes'])}" if carried.drain else "")
            + (f"\n         problems: {'; '.join(reading.problems)}" if reading.problems else "")
            + (f"\n         cost: {row['billed_nodes']} x {pool.vm_size} at {row['hourly_price']:.2f}/h = "
               f"{row['cost_per_hour']:.2f} USD/h" if row["cost_per_hour"] is not None else
               f"\n         cost: {row['cost_note']}"))
    lines.append(f"GPU pools cost {total:.2f} USD/h now ({book.label()}; "
                 "README \"Cost\")")
    return 0, rows, "\n".join(lines)


def _pool_cost(book: Any, region: str, vm_size: str, obs: Any) -> dict[str, Any]:
    """Cost per hour of the pool as it is: nodes ready or provisioning (Azure bills a VM once allocated)."""
    from shared.services.cost_prices import PriceMissing

    try:
        hourly = book.hourly(region, vm_size)
    except PriceMissing as exc:
        return {"billed_nodes": None, "hourly_price": None, "cost_per_hour": None, "cost_note": str(exc)}
    if obs is None:
        return {"billed_nodes": None, "hourly_price": hourly, "cost_per_hour": None,
                "cost_note": "nodes unknown (see problems)"}
    nodes = obs.ready + obs.provisioning
    return {"billed_nodes": nodes, "hourly_price": hourly, "cost_per_hour": nodes * hourly,
            "currency": book.currency, "prices_as_of": book.as_of.isoformat()}


def _decide(ctx: Any, pool_name: str) -> tuple[int, Any, str]:
    import os

    from shared.services.scaling import tick

    try:
        pool = ctx.platform.gpu_pool(pool_name)
    except KeyError:
        raise BadInputError(f"--pool: no GPU pool {pool_name!r} in {ctx.platform.name} "
                            f"({', '.join(p.name for p in ctx.platform.gpu_pools)})") from None
    switches = tick.switches_from(os.environ)
    result = tick.tick_pool(ctx, pool, now=ctx.clock(), switches=switches, dry_run=True)
    text = (f"{result.pool}: {result.current} -> {result.target} node(s) [{result.reason}] {result.action}\n"
            f"  {result.message}\n  (dry run: nothing changed; audited as planned)")
    return 0, result.to_json(), text


def _override(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    from shared.services.scaling import tick

    seconds = parse_duration(args.duration)
    if args.count < 0:
        raise BadInputError("override: N must be 0 or more")
    try:
        pool = ctx.platform.gpu_pool(args.pool)
    except KeyError:
        raise BadInputError(f"override: no GPU pool {args.pool!r} in {ctx.platform.name}") from None
    until = ctx.clock() + dt.timedelta(seconds=seconds)
    if args.dry_run:
        return 0, {"pool": pool.name, "count": args.count, "until": until.isoformat(), "dry_run": True}, \
            f"would pin {pool.name} at {args.count} node(s) until {until:%Y-%m-%d %H:%M}Z"
    override = tick.set_override(ctx, pool.name, args.count, until, by=args.by)
    capped = f" (capped at max_count {pool.max_count})" if args.count > pool.max_count else ""
    return 0, {"pool": pool.name, "count": override.count, "until": until.isoformat(), "by": override.by}, \
        f"{pool.name} pinned at {args.count} node(s){capped} until {until:%Y-%m-%d %H:%M}Z"


def parse_duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) >= 2 and text[:-1].isdigit() and text[-1] in units and int(text[:-1]) > 0:
        return int(text[:-1]) * units[text[-1]]
    raise BadInputError(f"--for: expected a duration such as 30m, 2h or 1d, got {text!r}")


def _n(value: Any) -> str:
    return "?" if value is None else str(value)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- registration -----------------------------------------------------------------------------------

cli.command("scaling", "GPU pool scaling: simulate, status, decide (dry run), override",
            needs_context=lambda args: getattr(args, "scaling_action", None) != "simulate")(cmd_scaling)
cli.COMMAND_OPTIONS["scaling"] = configure
