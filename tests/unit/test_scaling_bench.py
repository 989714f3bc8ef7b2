"""The scaling benchmark's reading of "no more node-hours than KEDA-like at an equal or better p95"."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "scaling_bench", Path(__file__).resolve().parents[2] / "bench" / "scaling.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def run(policy: tuple[float, float], keda: tuple[float, float], matched: tuple[float | None, float, float] | None):
    """(node-hours, p95) of the default policy and KEDA-like; (headroom, node-hours, p95) at KEDA-like's p95."""
    out = {"policies": {"policy": {"node_hours": policy[0], "wait_p95": policy[1]},
                        "keda": {"node_hours": keda[0], "wait_p95": keda[1]}}}
    out["matched"] = None if matched is None else {"headroom": matched[0], "node_hours": matched[1],
                                                   "wait_p95": matched[2]}
    return out


CASES = {
    "equal or better p95 at fewer node-hours is met": (run((8, 2), (11, 3), None), True, True),
    "both within the SLO at fewer node-hours is met although KEDA-like's p95 is lower":
        (run((2.5, 14), (7, 10), (None, 3.5, 12)), True, False),
    "at KEDA-like's p95 with more headroom and fewer node-hours is met":
        (run((9, 500), (31, 380), (4, 13, 370)), True, True),
    "outside the SLO and no headroom reaching KEDA-like's p95 is not met":
        (run((9, 500), (31, 380), (None, 13, 450)), False, False),
    "more node-hours than KEDA-like is not met even at a better p95": (run((12, 2), (11, 3), None), False, False),
}


@pytest.mark.parametrize("behaviour", sorted(CASES))
def test_keda_comparison(behaviour: str) -> None:
    data, ok, strict = CASES[behaviour]
    verdict = bench.keda_comparison(data, slo=30.0)
    assert (verdict["ok"], verdict["strict_ok"]) == (ok, strict), verdict["measured"]


def with_bound(data: dict, p95: float) -> dict:
    data["policies"]["bound"] = {"wait_p95": p95, "peak_nodes": 10}
    data["policies"]["keda"]["peak_nodes"] = 64
    return data


def test_keda_likes_p95_below_the_cold_bound_is_reported_jointly_infeasible_with_the_number() -> None:
    verdict = bench.keda_comparison(with_bound(run((9, 540), (31, 378), (None, 13, 456)), 416.5), slo=30.0)
    assert not verdict["ok"] and verdict["infeasible"]
    assert "416.5s > KEDA-like's 378.0s" in verdict["measured"]


def test_a_keda_p95_the_bound_reaches_is_a_plain_failure() -> None:
    verdict = bench.keda_comparison(with_bound(run((9, 540), (31, 378), (None, 13, 456)), 300.0), slo=30.0)
    assert not verdict["ok"] and "infeasible" not in verdict


def test_the_cold_bound_is_the_overshoot_capped_pool_serving_one_time_to_ready_after_the_first_request() -> None:
    sim = bench.sim
    # static's size 5 -> at most floor(1.2 x 5) = 6 nodes = 12 slots, serving from 100 s (the first request at
    # 0 s plus the time to ready). Requests at 0..11 s of 10 s each start at 100 s (waits 100..89 s); the 13th,
    # at 12 s, starts when the first slot frees at 110 s (98 s). Sorted: 89..98, 98, 99, 100.
    trace = sim.make_trace("t", [(float(k), 2500, 0) for k in range(13)], duration=600.0)
    config = sim.SimConfig(slots_per_node=2, time_to_ready_seconds=100.0,
                           service=sim.ServiceModel(prefill_tokens_per_second=250.0))
    bound = bench.cold_bound(trace, config, static_nodes=5)
    assert (bound["peak_nodes"], bound["overshoot"]) == (6, pytest.approx(1.2))
    assert (bound["wait_p50"], bound["wait_p95"], bound["within_slo"]) == (95.0, 100.0, 0.0)
    assert bound["node_hours"] == pytest.approx(6 * 600 / 3600)


def test_the_policy_waking_from_zero_waits_no_less_than_the_cold_bound() -> None:
    sim = bench.sim
    config = sim.SimConfig()
    trace = sim.synthetic_trace("flat", seed=3, duration=1200.0)
    bound = bench.cold_bound(trace, config, sim.static_size(trace, config))
    result = sim.simulate(trace, sim.PolicyController(sim.default_parameters(config)), config)
    assert result.peak_nodes <= bound["peak_nodes"]
    assert result.percentile(95) >= bound["wait_p95"]


def test_the_policy_is_compared_at_keda_likes_p95_with_headroom_and_backlog_surge_levels() -> None:
    config = bench.sim.SimConfig()
    labels = [label for label, _ in bench._levels("cold")]
    assert labels[:3] == ["headroom 1", "headroom 2", "headroom 4"] and labels[-1] == "surge 32"
    surge = bench.surge_parameters(config, 8.0)
    default = bench.sim.default_parameters(config)
    # only the backlog knobs move: without a backlog the surge level is the default policy
    assert (surge.wake_headroom, surge.backlog_headroom, surge.backlog_clear_seconds) == (8.0, 8.0, 120.0)
    assert (surge.safety, surge.slo_wait_seconds, surge.sizing_tolerance) == (
        default.safety, default.slo_wait_seconds, default.sizing_tolerance)
