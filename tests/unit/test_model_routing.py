"""The proactive fallback decision (shared/services/model_routing.py), pure: breach, hysteresis, quota signal,
recovery, and the signals read from the GPU-scaling rows."""

from __future__ import annotations

import json
import math

import pytest

from shared.errors import ConfigError
from shared.services import model_routing as mr

MODEL = mr.ModelSpec("platform-llm", (
    mr.Entry("vllm-h100", "h100"), mr.Entry("vllm-mi300x", "mi300x"),
    mr.Entry("vllm-small", "mi300x", "platform-llm-small")),
    queue_wait_slo_seconds=10, breach_seconds=300, recover_seconds=900, recover_ratio=0.5)
OK, SLOW, MID = 1.0, 25.0, 7.0


def signals(h100=OK, mi300x=OK, h100_quota=False, mi300x_quota=False):
    return {"h100": mr.PoolSignal(h100, h100_quota), "mi300x": mr.PoolSignal(mi300x, mi300x_quota)}


def run(steps, current="vllm-h100", state=None):
    """Feed (at, signals) in order, following each plan's target; return the plans."""
    state, plans = state or mr.RoutingState(), []
    for at, sig in steps:
        plan = mr.decide(MODEL, sig, current, state, at)
        plans.append(plan)
        state, current = plan.state, plan.target
    return plans


CASES = {
    "the primary within its SLO keeps the traffic": (
        [(0, signals())], "vllm-h100", mr.PRIMARY),
    "a breach shorter than breach_seconds only warns": (
        [(0, signals(h100=SLOW)), (299, signals(h100=SLOW))], "vllm-h100", mr.BREACHING),
    "a breach for breach_seconds moves the traffic to the other vendor's pool": (
        [(0, signals(h100=SLOW)), (300, signals(h100=SLOW))], "vllm-mi300x", mr.QUEUE_WAIT_BREACH),
    "a breach interrupted by one good reading starts over": (
        [(0, signals(h100=SLOW)), (200, signals()), (250, signals(h100=SLOW)), (500, signals(h100=SLOW))],
        "vllm-h100", mr.BREACHING),
    "an exhausted GPU quota moves the traffic at once": (
        [(0, signals(h100_quota=True))], "vllm-mi300x", mr.QUOTA_EXHAUSTED),
    "with both big pools out of quota the small model takes it only if its pool has quota": (
        [(0, signals(h100_quota=True, mi300x_quota=True))], "vllm-h100", mr.NO_FIT_FALLBACK),
    "an unknown signal holds rather than guess": (
        [(0, {"h100": mr.PoolSignal(None)})], "vllm-h100", mr.INPUT_MISSING),
}


@pytest.mark.parametrize(("steps", "target", "reason"), CASES.values(), ids=CASES.keys())
def test_the_decision(steps, target, reason):
    plan = run(steps)[-1]
    assert (plan.target, plan.reason) == (target, reason), plan.message


def test_it_switches_back_only_after_the_primary_has_been_well_under_the_slo_for_recover_seconds():
    away = [(0, signals(h100_quota=True))]
    # Back under the SLO but not under half of it: no return (hysteresis: a lower bar than the switch away).
    plans = run([*away, (60, signals(h100=MID)), (2000, signals(h100=MID))])
    assert [p.target for p in plans] == ["vllm-mi300x"] * 3 and plans[-1].reason == mr.HOLDING
    # Under half the SLO: back after recover_seconds, not before.
    plans = run([*away, (60, signals()), (959, signals()), (960, signals())])
    assert [(p.target, p.reason) for p in plans[1:]] == [
        ("vllm-mi300x", mr.HOLDING), ("vllm-mi300x", mr.HOLDING), ("vllm-h100", mr.RECOVERED)]


def test_a_switch_back_waits_while_the_primary_quota_is_still_exhausted():
    plans = run([(0, signals(h100_quota=True)), (60, signals(h100=OK, h100_quota=True)),
                 (5000, signals(h100=OK, h100_quota=True))])
    assert plans[-1].target == "vllm-mi300x"


def test_a_backend_outside_the_list_is_sent_back_to_the_first_entry():
    plan = mr.decide(MODEL, signals(), "somewhere-else", mr.RoutingState(), 0)
    assert (plan.target, plan.reason, plan.switch) == ("vllm-h100", mr.ROUTE_UNKNOWN, True)


def test_the_carried_timers_survive_their_json_round_trip():
    state = run([(0, signals(h100=SLOW, mi300x=OK))])[-1].state
    assert mr.RoutingState.from_json(json.loads(json.dumps(state.to_json()))) == state


def scaling_row(at, load, busy, done_rate, fallback_to=""):
    return {"policy": json.dumps({"at": at, "load": load, "busy": busy, "done_rate": done_rate}),
            "fallback_to": fallback_to}


ROWS = {
    "no row says nothing": (None, 1000, None, False),
    "nothing waiting waits zero": (scaling_row(990, 4, 4, 2.0), 1000, 0.0, False),
    "waiting requests over the completion rate (Little's law)": (scaling_row(990, 24, 4, 2.0), 1000, 10.0, False),
    "waiting with nothing completing waits without bound": (scaling_row(990, 10, 0, 0), 1000, math.inf, False),
    "a stale row gives no wait but keeps the quota signal": (scaling_row(0, 24, 4, 2.0, "mi300x"), 1000, None, True),
}


@pytest.mark.parametrize(("row", "now", "wait", "quota"), ROWS.values(), ids=ROWS.keys())
def test_the_signal_read_from_a_gpu_scaling_row(row, now, wait, quota):
    assert mr.queue_wait_from_scaling_row(row, now) == mr.PoolSignal(wait, quota)


def test_platform_yaml_models_parse_and_bad_ones_are_listed():
    from shared.platform import load_environment

    env = load_environment("dev-uaenorth")
    models = mr.load_models(env)
    assert [m.name for m in models] == ["platform-llm", "platform-llm-small", "platform-embed"]
    assert [e.backend for e in models[0].fallback] == ["vllm-h100", "vllm-mi300x", "vllm-small"]
    with pytest.raises(ConfigError) as err:
        mr.parse_models([{"name": "m", "fallback": [{"backend": "b", "pool": "nope"}], "recover_ratio": 2}],
                        pools=["h100"])
    assert len(err.value.problems) == 3


def test_the_patch_points_the_active_backend_at_the_target_and_says_why():
    import datetime as dt

    plan = run([(0, signals(h100_quota=True))])[-1]
    patch = mr.backend_patch(MODEL, plan, dt.datetime(2026, 11, 30, tzinfo=dt.UTC))
    assert patch["spec"]["endpoints"] == [{"fqdn": {"hostname": "vllm-mi300x.model-serving.svc.cluster.local",
                                                    "port": 8000}}]
    assert patch["metadata"]["annotations"][mr.ROUTING_REASON] == mr.QUOTA_EXHAUSTED
