"""vLLM's /metrics text, parsed strictly: the GPU scaling tick measures in flight and its counters with it."""

from __future__ import annotations

import pytest

from shared.services.scaling.serving_metrics import MetricsError, ServingMetrics, parse

# As a vLLM V1 server exposes it (names from vllm/v1/metrics/loggers.py; one engine, one model).
VLLM = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="platform-llm"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="platform-llm"} 2.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="platform-llm"} 120.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="platform-llm"} 7.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="platform-llm"} 1.0
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="platform-llm"} 0.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="platform-llm"} 128.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="platform-llm"} 128.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="platform-llm"} 1536.5
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 12345.0
"""


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(VLLM, ServingMetrics(3, 2, 128, 1536.5), id="a vLLM server's answer, success summed over reasons"),
    pytest.param('vllm:num_requests_running{engine="0"} 2\nvllm:num_requests_running{engine="1"} 5\n',
                 ServingMetrics(7, 0, None, None), id="two engines (data parallel) are summed; absent counters None"),
    pytest.param("vllm:num_requests_running 4 1700000000000\n", ServingMetrics(4, 0, None, None),
                 id="no labels and a timestamp"),
    pytest.param('vllm:num_requests_running{a="x}{",b="say \\"hi\\"\\n",} 1e0\r\n',
                 ServingMetrics(1, 0, None, None), id="escaped label values, a trailing comma, CRLF"),
    pytest.param("# a free comment\n\n  # TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 0\n"
                 "# EOF\n", ServingMetrics(0, 0, None, None), id="comments and blank lines"),
    pytest.param("vllm:num_requests_running 1\nother_metric NaN\nthird +Inf\n", ServingMetrics(1, 0, None, None),
                 id="NaN and infinities in metrics not used"),
])
def test_the_wanted_samples_are_summed_over_their_labels(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "problem"), [
    pytest.param("", "no vllm:num_requests_running", id="empty"),
    pytest.param("up 1\n", "not a vLLM server", id="another server's metrics (wrong port)"),
    pytest.param("<html>503</html>\n", "line 1: not a sample", id="an HTML error page"),
    pytest.param("vllm:num_requests_running\n", "line 1: not a sample", id="a sample without a value"),
    pytest.param("vllm:num_requests_running three\n", "is not a number", id="a value that is not a number"),
    pytest.param("vllm:num_requests_running 1_0\n", "is not a number", id="digit separators are not the format"),
    pytest.param('vllm:num_requests_running{engine=0} 1\n', "malformed labels", id="an unquoted label value"),
    pytest.param('vllm:num_requests_running{engine="0" 1\n', "not a sample", id="an unclosed label set"),
    pytest.param('vllm:num_requests_running{a="1",a="2"} 1\n', "label a repeated", id="a repeated label"),
    pytest.param("vllm:num_requests_running NaN\n", "is nan", id="NaN in a wanted gauge"),
    pytest.param("vllm:num_requests_running 1\nvllm:request_success_total +Inf\n", "is inf", id="an infinite counter"),
    pytest.param("vllm:num_requests_running -1\n", "is -1.0", id="a negative count"),
    pytest.param("# TYPE vllm:num_requests_running gauge extra\nvllm:num_requests_running 1\n",
                 "line 1: malformed TYPE", id="a TYPE line with extra words"),
    pytest.param("# TYPE vllm:num_requests_running meter\n", "malformed TYPE", id="an unknown type"),
    pytest.param("# HELP\n", "malformed HELP", id="a HELP line without a name"),
    pytest.param("vllm:num_requests_running 1\nbroken line here\n", "line 2", id="the first bad line is named"),
])
def test_malformed_or_unusable_text_is_a_clear_error_never_zero(text, problem):
    with pytest.raises(MetricsError) as caught:
        parse(text)
    assert problem in str(caught.value)


# -- the pool's counters, carried from tick to tick (shared/services/scaling/tick.py) -----------------------------

def _measured(**pods: tuple[float | None, float | None]):
    from shared.services.scaling.tick import ServingReading

    completed = [c for c, _ in pods.values()]
    seconds = [s for _, s in pods.values()]
    return ServingReading(tuple(pods), running=0, waiting=0,
                          completed_total=None if None in completed else round(sum(completed)),
                          service_seconds_total=None if None in seconds else sum(seconds),
                          per_pod=tuple((name, c, s) for name, (c, s) in pods.items()))


@pytest.mark.parametrize(("ticks", "totals"), [
    pytest.param([{"a": (100, 50.0), "b": (40, 20.0)}, {"a": (105, 52.5), "b": (41, 21.0)}],
                 [(140, 70.0), (146, 73.5)], id="the same pods: their sum"),
    pytest.param([{"a": (100, 50.0), "b": (40, 20.0)}, {"a": (105, 52.5)}],
                 [(140, 70.0), (145, 72.5)], id="a pod drained away: no drop, no phantom reset"),
    pytest.param([{"a": (100, 50.0)}, {"a": (105, 52.5), "c": (3, 1.5)}],
                 [(100, 50.0), (108, 54.0)], id="a new pod adds all it has done"),
    pytest.param([{"a": (100, 50.0)}, {"a": (2, 1.0)}], [(100, 50.0), (102, 51.0)],
                 id="a restarted pod (its counter went back) adds all it has done since"),
    pytest.param([{"a": (100, 50.0)}, None, {"a": (110, 55.0)}], [(100, 50.0), None, (110, 55.0)],
                 id="a tick without measurements starts a fresh base"),
    pytest.param([{"a": (100, None)}, {"a": (110, None)}], [(100, None), (110, None)],
                 id="no latency histogram: completions alone"),
])
def test_the_pools_counters_stay_monotone_whatever_pods_come_and_go(ticks, totals):
    from shared.services.scaling.tick import carry_counters

    carried = None
    seen = []
    for pods in ticks:
        measured, carried = carry_counters(None if pods is None else _measured(**pods), carried)
        seen.append(None if measured is None else (measured.completed_total, measured.service_seconds_total))
    assert seen == totals
