"""GPU pool scaling benchmark: the policy against KEDA-like and static pools on four scenarios.

    .venv/bin/python bench/scaling.py CONV_TRACE.csv [CODE_TRACE.csv] [--json] [--plot-dir DIR]
    .venv/bin/python bench/scaling.py --synthetic [--seed N]      # generated shapes, no files
    .venv/bin/python bench/scaling.py CONV_TRACE.csv CODE_TRACE.csv --variants   # the targets on reshapings
    .venv/bin/python bench/scaling.py CONV_WEEK.csv CODE_WEEK.csv --start-hour 36 --hours 1   # a slice of a long trace

The traces are the Azure LLM inference traces 2023 (Azure Public Dataset, github.com/Azure/
AzurePublicDataset, ``AzureLLMInferenceTrace_conv.csv`` and ``AzureLLMInferenceTrace_code.csv``);
they are not part of this repository. A file whose name contains ``code`` is the bursty trace;
otherwise the first file is the conversation trace, the second the bursty one.

Scenarios: steady (conversation trace, pools starting at static's size), bursty (code trace,
likewise), cold (conversation trace from zero: time until the SLO holds, overshoot = peak nodes /
static's size), day (24 h built from the conversation hour, thinned by a cosine day with a 10% trough
at 04:00, seeded). On cold the row ``bound`` is the best any policy can do within the overshoot target
(``cold_bound``). Targets are printed under the table with PASS/FAIL (how each is read: README "GPU
scaling"); INFEASIBLE marks a target no policy can meet together with another (cold: KEDA-like's p95
below the bound), with the numbers; the exit status is 1 when a target fails that is not infeasible.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.services import cost_prices  # noqa: E402 - after the path is set
from shared.services.scaling import simulator as sim  # noqa: E402 - after the path is set


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traces", nargs="*", metavar="TRACE")
    parser.add_argument("--synthetic", action="store_true",
                        help="generated shapes instead of files: a Poisson ramp (steady, cold), on/off bursts "
                             "(bursty), a Poisson diurnal day (day); --seed picks the draw")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot-dir", metavar="DIR", help="write one PNG per scenario there")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-hour", type=float, default=0.0,
                        help="benchmark the traces from this hour on (a week-long trace, an hour or a day at a time)")
    parser.add_argument("--hours", type=float, help="and for this many hours (default: to the end)")
    parser.add_argument("--variants", action="store_true",
                        help="instead, the targets on each reshaping of the traces (reversed, second half first, "
                             "half, double: simulator.VARIANTS), to check shapes the files do not have")
    parser.add_argument("--scenario", action="append", choices=sim.SCENARIOS, help="only these (repeatable)")
    parser.add_argument("--pool", default="h100", help="GPU pool whose VM price costs the node-hours (the price "
                        "file, gitops .../pricing/vm-prices.yaml; default h100)")
    parser.add_argument("--env", default="dev-uaenorth", help="environment declaring --pool (default dev-uaenorth)")
    args = parser.parse_args(argv)
    if not args.traces and not args.synthetic:
        parser.error("give TRACE files or --synthetic")

    sources = _synthetic(args.seed) if args.synthetic else _pick(args.traces)
    if args.start_hour or args.hours:
        sources = {name: sim.window(trace, args.start_hour, args.hours) for name, trace in sources.items()}
    wanted = args.scenario or list(sim.SCENARIOS)
    vm_size, price = cost_prices.pool_price(args.env, args.pool)
    config = sim.SimConfig(seed=args.seed, node_hour_price=price)
    if args.variants:
        return _report_variants(sources, wanted, config, args)
    runs, timings = evaluate(sources, wanted, config, seed=args.seed, plot_dir=args.plot_dir)
    checks = targets(runs)
    if args.json:
        print(json.dumps({"runs": sim.metrics_json(runs), "targets": checks}, indent=2, default=str))
    else:
        print(sim.table(runs))
        print(f"  cost $ = node-hours x {price:.2f} USD per node-hour ({vm_size}, pool {args.pool} of {args.env}; "
              f"{cost_prices.load().label()})")
        print()
        for run in runs:
            print(f"  {run['scenario']}: {run['trace']}, {run['requests']} requests over {run['hours']:.1f} h; "
                  f"one policy replay {run['replay_seconds']:.2f} CPU s (scenario with all three and static's "
                  f"search {timings[run['scenario']]:.1f}s)")
        print()
        for run in runs:
            bound = run["policies"].get("bound")
            if bound is not None:
                holds = bound["slo_holds_after_s"]
                print(f"  {run['scenario']}: the best any policy can do with at most {bound['peak_nodes']} nodes "
                      f"({MAX_OVERSHOOT:g} x static's {run['static_nodes']}), all asked for at the first request: "
                      f"p95 {bound['wait_p95']:.1f}s, SLO holds after "
                      f"{'never' if holds is None else f'{holds / 60:.1f} min'} (row 'bound')")
        print()
        _print_checks(checks)
    return _status(checks)


def evaluate(sources: dict[str, sim.Trace], wanted: list[str], config: sim.SimConfig, *, seed: int = 0,
             plot_dir: str | None = None) -> tuple[list[dict], dict[str, float]]:
    """Every wanted scenario with a trace: the three policies, the replay's CPU time, the policy at KEDA-like's
    p95, and on cold the bound."""
    runs, timings = [], {}
    for name in wanted:
        trace = sources.get(name)
        if trace is None:
            print(f"skipping {name}: no {'code' if name == 'bursty' else 'conversation'} trace given", file=sys.stderr)
            continue
        scenario = sim.scenario(name, trace, seed=seed)
        started = time.perf_counter()
        run = sim.run_scenario(scenario, config=config)
        timings[name] = time.perf_counter() - started
        run["replay_seconds"] = _time_policy_replay(scenario, config)
        run["matched"] = _match_keda(scenario, run, config)
        if name == "cold":
            run["policies"]["bound"] = cold_bound(scenario.trace, config, run["static_nodes"])
        runs.append(run)
        if plot_dir:
            Path(plot_dir).mkdir(parents=True, exist_ok=True)
            sim.plot(run, Path(plot_dir) / f"scaling-{name}.png")
    return runs, timings


def _report_variants(sources: dict[str, sim.Trace], wanted: list[str], config: sim.SimConfig,
                     args: argparse.Namespace) -> int:
    """The targets on each reshaping of the traces (``simulator.VARIANTS``): demand shaped like the traces
    but not them. One block of PASS/FAIL lines per variant; the exit status counts them all."""
    every, report = [], {}
    for variant in sim.VARIANTS:
        reshaped = {name: sim.variant_trace(trace, variant, seed=args.seed) for name, trace in sources.items()}
        runs, _ = evaluate(reshaped, wanted, config, seed=args.seed)
        checks = [c for c in targets(runs) if "replay under" not in c["target"]]
        every += checks
        report[variant] = {"runs": sim.metrics_json(runs), "targets": checks}
        if not args.json:
            met = sum(1 for c in checks if c["ok"])
            infeasible = sum(1 for c in checks if not c["ok"] and c.get("infeasible"))
            print(f"{variant}: {met} of {len(checks)} targets met"
                  + (f", {infeasible} infeasible (with the numbers)" if infeasible else ""))
            _print_checks(checks)
            print()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    return _status(every)


def _print_checks(checks: list[dict]) -> None:
    for check in checks:
        label = "PASS" if check["ok"] else ("INFEASIBLE" if check.get("infeasible") else "FAIL")
        print(f"  {label}  {check['target']}: {check['measured']}")


def _status(checks: list[dict]) -> int:
    # A target no policy can meet together with another one is reported, not failed on.
    return 0 if all(check["ok"] or check.get("infeasible") for check in checks) else 1


def _pick(paths: list[str]) -> dict[str, sim.Trace]:
    conv = code = None
    for path in paths:
        trace = sim.load_trace(path)
        if "code" in Path(path).name.lower() or (conv is not None and code is None):
            code = trace
        else:
            conv = trace
    out = {name: conv for name in ("steady", "cold", "day") if conv is not None}
    if code is not None:
        out["bursty"] = code
    return out


def _synthetic(seed: int) -> dict[str, sim.Trace]:
    ramp = sim.synthetic_trace("ramp", seed=seed)
    return {"steady": ramp, "bursty": sim.synthetic_trace("onoff", seed=seed), "cold": ramp,
            "day": sim.synthetic_trace("flat", seed=seed)}


def _time_policy_replay(scenario: sim.Scenario, config: sim.SimConfig) -> float:
    """CPU seconds of one policy replay (the machine may be shared: wall time would measure the neighbours)."""
    started = time.process_time()
    sim.simulate(scenario.trace, sim.PolicyController(sim.default_parameters(config)), config)
    return time.process_time() - started


#: the cold scenario's overshoot target: peak nodes at most this multiple of static's size
MAX_OVERSHOOT = 1.2


def cold_bound(trace: sim.Trace, config: sim.SimConfig, static_nodes: int) -> dict:
    """The best waits any policy can reach on a cold start without passing the overshoot target.

    A pool at zero learns of demand at the first request; a node asked for then serves one time to
    ready later (less the jitter, at best); a policy whose peak is at most ``MAX_OVERSHOOT`` x static's
    size has at most ``peak = floor(MAX_OVERSHOOT x static)`` nodes at any time. Under FIFO a request
    never starts later when more nodes serve earlier, so ``peak`` nodes all serving from the first
    request's time plus the time to ready is the best such a policy can do, request by request: its
    p95 is a lower bound on every policy's p95 at that overshoot, and its "SLO holds after" on theirs
    (billed as if asked for at the start).
    """
    peak = int(MAX_OVERSHOOT * static_nodes + 1e-9)
    ready_at = (trace.arrivals[0] if len(trace) else 0.0) + max(
        0.0, config.time_to_ready_seconds - config.ready_jitter_seconds)
    services = sim.service_times(trace, config.service)
    waits = sim.fifo_waits(trace, peak, config, services, ready_at=ready_at)
    result = sim.Result("bound", waits, peak * trace.duration, sum(services) / config.slots_per_node, 1, peak,
                        trace.duration, config.slo_seconds, [], trace.arrivals)
    m = result.metrics()
    m["slo_holds_after_s"] = result.slo_holds_after()
    m["overshoot"] = peak / static_nodes
    m["settled_nodes"] = peak
    return m


#: headroom levels tried to bring the policy to KEDA-like's p95 (see ``headroom_parameters``)
HEADROOM_LEVELS = (1.0, 2.0, 4.0)
#: surge levels tried as well (see ``surge_parameters``)
SURGE_LEVELS = (2.0, 4.0, 8.0, 16.0, 32.0)


def headroom_parameters(config: sim.SimConfig, k: float) -> sim.ScalingParameters:
    """The policy with more headroom, level ``k``: square-root staffing ``safety`` = k, the SLO wait it sizes
    bursts for 30 / (1 + k) s, and a backlog cleared (1 + k) times sooner with up to (1 + k) x the extra slots."""
    base = sim.default_parameters(config)
    return sim.default_parameters(config, safety=k, slo_wait_seconds=config.slo_seconds / (1 + k),
                                  backlog_headroom=base.backlog_headroom * (1 + k),
                                  backlog_clear_seconds=base.backlog_clear_seconds / (1 + k))


def surge_parameters(config: sim.SimConfig, k: float) -> sim.ScalingParameters:
    """The policy that buys nodes for a backlog, level ``k``: the backlog expected when nodes asked for now are
    ready is to be gone 960 / k s later, with up to k x the load's slots for it (before and after the first
    node serves), in steps as large as ``max_count``. Only backlogs move it: without one it is the default."""
    base = sim.default_parameters(config)
    return sim.default_parameters(config, wake_headroom=k, backlog_headroom=k, backlog_clear_seconds=960.0 / k,
                                  max_step_up=base.max_count)


def _levels(name: str) -> list[tuple[str, object]]:
    if name == "day":  # a day replay costs 5 s: one level
        return [("headroom 2", lambda c: headroom_parameters(c, 2.0))]
    return ([(f"headroom {k:g}", lambda c, k=k: headroom_parameters(c, k)) for k in HEADROOM_LEVELS]
            + [(f"surge {k:g}", lambda c, k=k: surge_parameters(c, k)) for k in SURGE_LEVELS])


def _match_keda(scenario: sim.Scenario, run: dict, config: sim.SimConfig) -> dict | None:
    """The policy at KEDA-like's p95 or better: of the headroom and surge levels whose p95 is within
    KEDA-like's, the one with the fewest node-hours; None when the default already is; ``headroom`` None
    when no level gets there (then the figures of the level with the best p95)."""
    keda_p95 = run["policies"]["keda"]["wait_p95"]
    if run["policies"]["policy"]["wait_p95"] <= keda_p95:
        return None
    start = dataclasses.replace(config, initial_nodes=run["static_nodes"] if scenario.start_at_static else 0)
    meeting, best = [], None
    for label, make in _levels(scenario.name):
        m = sim.simulate(scenario.trace, sim.PolicyController(make(config)), start).metrics()
        if m["wait_p95"] <= keda_p95:
            meeting.append({"headroom": label, **m})
        if best is None or m["wait_p95"] < best["wait_p95"]:
            best = {"headroom": None, **m}
    return min(meeting, key=lambda m: m["node_hours"]) if meeting else best


def keda_comparison(run: dict, slo: float) -> dict:
    """"No more node-hours than KEDA-like at an equal or better p95", decided as README "GPU scaling" says.

    Met when the default policy costs no more than KEDA-like and either (1) its p95 is equal or better,
    or (2) both meet the SLO (a p95 below the SLO is a service level nobody asked for: KEDA-like buys it
    with node-hours); else (3) when the policy with more headroom or a backlog surge (``_levels``) reaches
    KEDA-like's p95 at no more node-hours. The strict reading (the policy at KEDA-like's own p95) is always
    reported with it.
    """
    mine, keda, matched = run["policies"]["policy"], run["policies"]["keda"], run.get("matched")
    bound = run["policies"].get("bound")
    cheaper = mine["node_hours"] <= keda["node_hours"] + 1e-9
    versus = f"KEDA-like {keda['node_hours']:.1f} h / p95 {keda['wait_p95']:.1f}s"
    default = f"policy {mine['node_hours']:.1f} h / p95 {mine['wait_p95']:.1f}s"
    if matched is None:
        strict = "the default policy's p95 is already equal or better"
    elif matched["headroom"] is None:
        strict = (f"no headroom or surge level reached KEDA-like's p95 (best: {matched['node_hours']:.1f} h / "
                  f"p95 {matched['wait_p95']:.1f}s)")
    else:
        strict = (f"at KEDA-like's p95 with {matched['headroom']}: {matched['node_hours']:.1f} h / "
                  f"p95 {matched['wait_p95']:.1f}s, peak {matched.get('peak_nodes', '?')}")
    strict_ok = (matched is None and cheaper) or (
        matched is not None and matched["headroom"] is not None and matched["node_hours"] <= keda["node_hours"])
    if cheaper and mine["wait_p95"] <= keda["wait_p95"] + 1e-9:
        ok, how = True, "equal or better p95 at no more node-hours"
    elif cheaper and mine["wait_p95"] <= slo and keda["wait_p95"] <= slo:
        ok, how = True, "both within the SLO, the policy at no more node-hours"
    elif strict_ok:
        ok, how = True, "at KEDA-like's p95 the policy costs no more"
    else:
        ok, how = False, "neither"
    out = {"ok": ok, "measured": f"{how}: {default} vs {versus}; strict: {strict}", "strict_ok": bool(strict_ok)}
    if not ok and bound is not None and keda["wait_p95"] < bound["wait_p95"]:
        # No policy within the overshoot target reaches KEDA-like's p95 (it gets there by buying many
        # times the nodes): this target and the overshoot target cannot both be met on this trace.
        out["infeasible"] = True
        out["measured"] += (f"; jointly infeasible with overshoot <= {MAX_OVERSHOOT}: the best p95 any policy "
                            f"reaches with at most {bound['peak_nodes']} nodes is {bound['wait_p95']:.1f}s "
                            f"> KEDA-like's {keda['wait_p95']:.1f}s (KEDA-like peaks at {keda['peak_nodes']})")
    return out


def targets(runs: list[dict]) -> list[dict]:
    """The issue's targets, each measured (definitions: README "GPU scaling", "Benchmark targets")."""
    out = []
    slo = sim.SimConfig().slo_seconds
    by = {run["scenario"]: run for run in runs}
    for name in ("steady", "bursty", "day"):
        if name in by:
            p95 = by[name]["policies"]["policy"]["wait_p95"]
            out.append({"target": f"{name}: p95 wait <= {slo:.0f}s", "ok": p95 <= slo, "measured": f"{p95:.1f}s"})
    for name, share in (("steady", 1.0), ("bursty", 1.0), ("day", 0.7)):
        if name in by:
            mine = by[name]["policies"]["policy"]["node_hours"]
            static = by[name]["policies"]["static"]["node_hours"]
            out.append({"target": f"{name}: node-hours <= {share:.0%} of static's", "ok": mine <= share * static + 1e-9,
                        "measured": f"{mine:.1f} vs {static:.1f} ({mine / static:.0%})"})
    for name, run in by.items():
        out.append({"target": f"{name}: node-hours <= KEDA-like's at an equal or better p95",
                    **keda_comparison(run, slo)})
    if "cold" in by:
        m = by["cold"]["policies"]["policy"]
        out.append({"target": "cold: overshoot (peak / static's size) <= 1.2", "ok": m["overshoot"] <= 1.2 + 1e-9,
                    "measured": f"{m['overshoot']:.2f} (peak {m['peak_nodes']} / static {by['cold']['static_nodes']}; "
                                f"the policy settles at {m['settled_nodes']})"})
    for run in runs:
        limit = 30.0 if run["hours"] > 2 else 2.0
        out.append({"target": f"{run['scenario']}: one replay under {limit:.0f}s", "ok": run["replay_seconds"] < limit,
                    "measured": f"{run['replay_seconds']:.2f}s"})
    return out


if __name__ == "__main__":
    sys.exit(main())
