"""The trace simulator on small traces whose answers are computed by hand."""

from __future__ import annotations

import pytest

from shared.services.scaling import simulator as sim
from shared.services.scaling.policy import ScalingParameters

# 1,000 prompt tokens at 1,000 tokens/s + 10 generated at 10 tokens/s = 2 s per request.
TWO_SECONDS = (1000, 10)
MODEL = sim.ServiceModel(prefill_tokens_per_second=1000, decode_tokens_per_second=10)


def config(**kw) -> sim.SimConfig:
    values = {"slots_per_node": 1, "time_to_ready_seconds": 100.0, "slo_seconds": 15.0, "service": MODEL}
    values.update(kw)
    return sim.SimConfig(**values)


def test_service_time_is_prefill_plus_decode() -> None:
    assert MODEL.seconds(*TWO_SECONDS) == pytest.approx(2.0)
    assert sim.ServiceModel().seconds(2500, 20) == pytest.approx(2.0)  # the defaults: 2,500 and 20 tokens/s


def test_the_lower_bound_is_the_work_over_the_slots_of_a_node() -> None:
    trace = sim.make_trace("t", [(0, *TWO_SECONDS)] * 4)
    assert sim.lower_bound_node_seconds(trace, config(slots_per_node=2)) == pytest.approx(4.0)


def test_a_fixed_pool_serves_first_come_first_served() -> None:
    trace = sim.make_trace("t", [(0, 10_000, 0)] * 3)  # three 10 s requests at once
    assert sim.fifo_waits(trace, 1, config()) == [0.0, 10.0, 20.0]
    assert sim.fifo_waits(trace, 2, config()) == [0.0, 0.0, 10.0]


def test_static_is_the_fewest_nodes_whose_p95_wait_meets_the_slo() -> None:
    trace = sim.make_trace("t", [(0, 10_000, 0)] * 3)
    # One node: p95 (nearest rank) of [0, 10, 20] is 20 > 15; two nodes: 10 <= 15.
    assert sim.static_size(trace, config()) == 2
    result = sim.simulate_static(trace, 2, config())
    assert result.node_seconds == 2 * trace.duration


def test_keda_like_waits_for_the_autoscaler_then_for_the_node() -> None:
    trace = sim.make_trace("t", [(0, 10_000, 0)], duration=2000)
    result = sim.simulate(trace, sim.KedaController(per_pod_target=1), config())
    # KEDA wants a pod at t=0; the cluster-autoscaler adds a node once it has been Pending 30 s;
    # the node serves 100 s later.
    assert result.waits == [pytest.approx(130.0)]
    # Idle from the last poll that saw work (120 s) + 300 s cooldown = 420 s: zero pods; the node
    # is unneeded from then and removed 600 s later, at 1,020 s. Billed from 30 s.
    assert result.node_seconds == pytest.approx(1020 - 30)
    assert result.peak_nodes == 1
    assert result.scale_operations == 2


def test_the_policy_wakes_from_zero_at_its_first_tick() -> None:
    trace = sim.make_trace("t", [(0, *TWO_SECONDS)], duration=600)
    params = ScalingParameters(min_count=0, max_count=4, slots_per_node=1, time_to_ready_seconds=100)
    result = sim.simulate(trace, sim.PolicyController(params), config())
    assert result.waits == [pytest.approx(100.0)]
    assert result.peak_nodes == 1


def test_a_scale_down_kills_nothing_and_bills_until_the_last_request_ends() -> None:
    class Shrink:
        """Two nodes, then one at t=5 while both are busy."""

        name, interval = "shrink", 5.0

        def tick(self, view: sim.PoolView) -> int:
            return 2 if view.now < 5 else 1

        def target(self) -> int | None:
            return None

    trace = sim.make_trace("t", [(0, 10_000, 0), (0, 20_000, 0), (1, 10_000, 0)], duration=60)
    result = sim.simulate(trace, Shrink(), config(initial_nodes=2))
    # Node 0 serves the 10 s request, node 1 the 20 s one; at t=5 the least busy is a tie and the
    # newest (node 1) is cordoned: it finishes its request at 20 s and leaves. The third request
    # waits for node 0 (free at 10 s).
    assert result.waits == [0.0, 0.0, pytest.approx(9.0)]
    assert result.node_seconds == pytest.approx(60 + 20)


def test_cold_start_reports_when_the_slo_starts_to_hold() -> None:
    trace = sim.make_trace("t", [(t, 0, 10) for t in range(0, 600, 10)], duration=600)
    result = sim.simulate(trace, sim.PolicyController(ScalingParameters(
        max_count=4, slots_per_node=1, time_to_ready_seconds=100)), config())
    holds = result.slo_holds_after()
    assert holds is not None and 60 <= holds <= 180


def test_a_day_follows_the_diurnal_curve_and_is_seeded() -> None:
    assert sim.diurnal_keep_probability(4 * 3600) == pytest.approx(0.1)
    assert sim.diurnal_keep_probability(16 * 3600) == pytest.approx(1.0)
    hour = sim.make_trace("hour", [(t, 1, 1) for t in range(0, 3600, 2)], duration=3600)
    day = sim.build_day(hour, seed=7)
    assert day.duration == sim.DAY_SECONDS
    assert day.arrivals == sim.build_day(hour, seed=7).arrivals
    night = sum(1 for a in day.arrivals if 3 * 3600 <= a < 5 * 3600)
    afternoon = sum(1 for a in day.arrivals if 15 * 3600 <= a < 17 * 3600)
    assert night < 0.2 * afternoon


def test_traces_are_read_in_the_published_format(tmp_path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46.6805900,374,44\n"
                    "2023-11-16 18:15:50.9951690,396,109\n", encoding="utf-8")
    trace = sim.load_trace(path)
    assert trace.arrivals == (0.0, pytest.approx(4.314579))
    assert trace.context_tokens == (374, 396) and trace.generated_tokens == (44, 109)
    assert trace.duration == 60.0


def test_run_scenario_reports_every_policy_and_the_cold_figures() -> None:
    trace = sim.make_trace("t", [(t, 0, 40) for t in range(0, 1200, 3)], duration=1200)
    run = sim.run_scenario(sim.scenario("cold", trace), config=config(slots_per_node=2))
    assert set(run["policies"]) == {"policy", "keda", "static"}
    for m in run["policies"].values():
        assert m["node_hours"] >= m["lower_bound_node_hours"] > 0
    assert run["policies"]["policy"]["overshoot"] > 0
    assert "static=" in sim.table([run])


def test_synthetic_shapes_are_seeded_and_have_their_shape() -> None:
    ramp = sim.synthetic_trace("ramp", seed=3)
    assert ramp.arrivals == sim.synthetic_trace("ramp", seed=3).arrivals
    assert ramp.arrivals != sim.synthetic_trace("ramp", seed=4).arrivals
    first = sum(1 for a in ramp.arrivals if a < 300)
    plateau = sum(1 for a in ramp.arrivals if 2400 <= a < 2700)
    assert first < 0.5 * plateau
    onoff = sim.synthetic_trace("onoff", seed=3)
    per_minute = [0] * 60
    for a in onoff.arrivals:
        per_minute[int(a // 60)] += 1
    assert max(per_minute) > 5 * (sum(per_minute) / 60) / 2 and min(per_minute) < 60
    with pytest.raises(ValueError, match="unknown shape"):
        sim.synthetic_trace("sawtooth")


def test_a_cold_start_on_a_mix_shifting_to_shorter_requests_does_not_overshoot() -> None:
    # The same work per second all hour: 1.8 req/s of 20 s requests, then 3.6 req/s of 10 s ones (36
    # busy slots: 5 nodes of 8). The backlog of the cold start holds the long requests while the short
    # ones arrive: sizing today's rate by the service time measured on the backlog reads twice the work.
    rows = ([(t / 1.8, 0, 400) for t in range(int(1.8 * 1500))]
            + [(1500 + t / 3.6, 0, 200) for t in range(int(3.6 * 2100))])
    trace = sim.make_trace("shift", rows, duration=3600)
    run = sim.run_scenario(sim.scenario("cold", trace), policies=("policy", "static"))
    assert run["policies"]["policy"]["overshoot"] <= 1.2, run["policies"]["policy"]


def test_variants_reshape_a_trace_and_keep_its_requests_and_duration() -> None:
    trace = sim.make_trace("t", [(10.0, 1, 2), (20.0, 3, 4), (50.0, 5, 6), (90.0, 7, 8)], duration=100.0)
    backwards = sim.variant_trace(trace, "reversed")
    assert backwards.arrivals == (10.0, 50.0, 80.0, 90.0) and backwards.context_tokens == (7, 5, 3, 1)
    shifted = sim.variant_trace(trace, "shifted")
    assert shifted.arrivals == (0.0, 40.0, 60.0, 70.0) and shifted.context_tokens == (5, 7, 1, 3)
    assert len(sim.variant_trace(trace, "double")) == 8
    assert all(v.duration == 100.0 for v in (backwards, shifted, sim.variant_trace(trace, "double")))
    many = sim.make_trace("m", [(k * 0.1, 1, 1) for k in range(2000)], duration=200.0)
    half = sim.variant_trace(many, "half", seed=1)
    assert 900 < len(half) < 1100 and half.arrivals == sim.variant_trace(many, "half", seed=1).arrivals
    with pytest.raises(ValueError, match="unknown variant"):
        sim.variant_trace(trace, "sideways")


def test_a_window_of_a_long_trace_starts_its_clock_at_the_window():
    trace = sim.make_trace("week", [(h * 3600.0 + 10, 1, 1) for h in range(48)], duration=48 * 3600.0)
    hour = sim.window(trace, start_hour=36, hours=2)
    assert hour.arrivals == (10.0, 3610.0) and hour.duration == 7200.0 and hour.name == "week@36h"
    assert sim.window(trace) is trace and len(sim.window(trace, start_hour=47)) == 1
    with pytest.raises(ValueError, match="no request between hour 50"):
        sim.window(trace, start_hour=50, hours=1)
