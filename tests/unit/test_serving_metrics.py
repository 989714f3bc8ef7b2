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
