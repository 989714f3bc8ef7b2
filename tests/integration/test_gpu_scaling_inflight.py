"""In flight measured from vLLM itself: the serving pods' /metrics read through the API server's pod proxy (the
real ``kubernetes`` client against the API server emulator), summed by the GPU scaling tick, with the documented
estimate as the fallback. Queue depth from Azurite, the pool from the ARM emulator."""

from __future__ import annotations

import copy
import datetime as dt
import time

import pytest
from _fixtures_saas import sandbox_context

from shared.errors import NotFoundError, PermanentError, TemporaryError
from shared.services.scaling import tick as scaling

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
ON = scaling.Switches(enabled=True, dry_run=False, drain_timeout_seconds=600)
NAMESPACE, DEPLOYMENT = "model-serving", "vllm-h100"


def vllm_text(running: int, waiting: int = 0, stop: int = 0, length: int = 0, seconds: float = 0.0) -> str:
    """A vLLM V1 server's /metrics (the samples the tick reads, labelled as vLLM labels them)."""
    labels = 'engine="0",model_name="platform-llm"'
    return (f"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{{labels}}} {running}.0\n"
            f"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{{{labels}}} {waiting}.0\n"
            f"# TYPE vllm:request_success_total counter\n"
            f'vllm:request_success_total{{{labels},finished_reason="stop"}} {stop}.0\n'
            f'vllm:request_success_total{{{labels},finished_reason="length"}} {length}.0\n'
            f"# TYPE vllm:e2e_request_latency_seconds histogram\n"
            f"vllm:e2e_request_latency_seconds_sum{{{labels}}} {seconds}\n")


@pytest.fixture(scope="module")
def arm(linked_arm):
    return linked_arm


@pytest.fixture
def ctx(arm, kube, azurite, sandbox_ca, dev_platform):
    arm.reset()
    kube.reset()
    context = sandbox_context(dev_platform, arm, kube, PLATFORM_STORAGE_CONNECTION_STRING=azurite.connection_string,
                              TLS_CA_BUNDLE=str(sandbox_ca.ca_path), HTTP_TIMEOUT_SECONDS="5")
    context.started = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=1)
    pool = dev_platform.gpu_pools[0]
    context.storage.delete(scaling.STATE_TABLE, dev_platform.name, pool.name)
    _empty(context, pool.inference_queue)
    return context


def _empty(ctx, queue: str) -> None:
    while messages := ctx.storage.receive(queue, max_messages=32, visibility_timeout=1):
        for m in messages:
            ctx.storage.delete_message(queue, m)


def _pool_with_pods(arm, kube, pool, texts: dict[str, str | None], phase: str = "Running") -> list[str]:
    """``len(texts)`` ready nodes, one serving pod on each, made from the Deployment gitops declares (as its
    ReplicaSet would); each pod's server answers its text on /metrics (None: serves nothing). The Deployment is
    scaled to 0 first: these pods stand for its ReplicaSet's, so the emulator's own controller keeps none."""
    deployment = kube.object("apps/v1", "deployments", DEPLOYMENT, NAMESPACE)
    deployment["spec"]["replicas"] = 0
    kube.put_object(deployment, "deployments")
    arm.set_pool(pool.name, count=len(texts))
    kube.scale_pool(pool.name, len(texts))
    template = kube.object("apps/v1", "deployments", DEPLOYMENT, NAMESPACE)["spec"]["template"]
    names = []
    for index, (node, (name, text)) in enumerate(zip(kube.pool_node_names(pool.name), texts.items(), strict=True)):
        kube.put_object({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": name, "namespace": NAMESPACE,
                                      "labels": copy.deepcopy(template["metadata"]["labels"])},
                         "spec": {**copy.deepcopy(template["spec"]), "nodeName": node},
                         "status": {"phase": phase, "podIP": f"10.244.1.{index + 10}"}}, "pods")
        if text is not None:
            kube.serve_pod_metrics(NAMESPACE, name, text)
        names.append(name)
    return names


def _queue(ctx, pool, n: int) -> None:
    for i in range(n):
        ctx.storage.send(pool.inference_queue, f'{{"prompt": "request {i}"}}')


# -- the adapter, through the pod proxy ------------------------------------------------------------------------

def test_a_pods_metrics_are_read_through_the_api_server_pod_proxy_on_the_port_its_spec_names_http(
        ctx, arm, kube, dev_platform):
    # A name no other test uses: a slow answer of another test may still land in the request log after a reset.
    [pod] = _pool_with_pods(arm, kube, dev_platform.gpu_pools[0], {"vllm-h100-counted": vllm_text(3)})
    port = kube.serve_pod_metrics(NAMESPACE, pod, vllm_text(3))
    assert port == 8000  # gitops/apps/base/vllm/deployment.yaml: containerPort 8000, named http
    assert ctx.cluster.pod_metrics(NAMESPACE, pod, port) == vllm_text(3)
    assert kube.count("GET", rf"^/api/v1/namespaces/{NAMESPACE}/pods/{pod}:8000/proxy/metrics$") == 1


def test_the_sandbox_sets_what_a_pod_serves_through_the_emulators_control_endpoint(ctx, arm, kube, dev_platform):
    import requests

    [pod] = _pool_with_pods(arm, kube, dev_platform.gpu_pools[0], {"vllm-h100-a": None})
    answer = requests.post(f"{kube.base_url}/_sandbox/pod-metrics", timeout=5,
                           json={"namespace": NAMESPACE, "pod": pod, "text": vllm_text(2)})
    assert answer.status_code == 200 and answer.json()["port"] == 8000
    assert ctx.cluster.pod_metrics(NAMESPACE, pod, 8000) == vllm_text(2)
    requests.post(f"{kube.base_url}/_sandbox/pod-metrics", json={"namespace": NAMESPACE, "pod": pod, "text": None},
                  timeout=5)
    with pytest.raises(TemporaryError):
        ctx.cluster.pod_metrics(NAMESPACE, pod, 8000)


@pytest.mark.parametrize(("case", "error", "words"), [
    ("an unknown pod", NotFoundError, 'pods "vllm-h100-gone" not found'),
    ("a pod that is not Running", TemporaryError, "error trying to reach service: dial tcp 10.244.1.10:8000"),
    ("nothing listening on the port", TemporaryError, "connect: connection refused"),
    ("a pod without an IP yet", PermanentError, "address not allowed"),
    ("an answer slower than the timeout", TemporaryError, "cannot reach the API server"),
])
def test_the_pod_proxy_answers_as_the_api_server_does_and_errors_are_mapped_at_the_seam(
        ctx, arm, kube, dev_platform, case, error, words):
    pool = dev_platform.gpu_pools[0]
    name, port, timeout = "vllm-h100-a", 8000, 2.0
    _pool_with_pods(arm, kube, pool, {name: vllm_text(1)}, phase="Pending" if "not Running" in case else "Running")
    if case == "an unknown pod":
        name = "vllm-h100-gone"
    elif case == "nothing listening on the port":
        port = 9999
    elif case == "a pod without an IP yet":
        stored = kube.object("v1", "pods", name, NAMESPACE)
        del stored["status"]["podIP"]
        kube.put_object(stored, "pods")
    elif case == "an answer slower than the timeout":
        kube.inject(path=f"/pods/{name}:8000/proxy/", status=None, delay=1.0)
        timeout = 0.2
    started = time.monotonic()
    with pytest.raises(error) as caught:
        ctx.cluster.pod_metrics(NAMESPACE, name, port, timeout=timeout)
    assert words in str(caught.value)
    assert time.monotonic() - started < 1.0


# -- the tick: measured, or the documented estimate -------------------------------------------------------------

def test_in_flight_and_the_counters_are_measured_from_every_serving_pod_and_audited(ctx, arm, kube, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _pool_with_pods(arm, kube, pool, {"vllm-h100-a": vllm_text(3, waiting=2, stop=100, length=5, seconds=900.5),
                                      "vllm-h100-b": vllm_text(4, stop=40, seconds=300.0)})
    # A pod still starting (Pending, no IP) serves nothing yet and is not read.
    kube.put_object({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "vllm-h100-c", "namespace": NAMESPACE, "labels": {"app.kubernetes.io/instance": DEPLOYMENT}},
        "spec": {"containers": [{"name": "vllm", "ports": [{"name": "http", "containerPort": 8000}]}]},
        "status": {"phase": "Pending"}}, "pods")
    _queue(ctx, pool, 12)  # Azure counts the 7 running requests' messages as well (invisible, not deleted)

    reading = scaling.read_pool(ctx, pool, NOW.timestamp(), serving=(NAMESPACE, DEPLOYMENT))
    obs = reading.observation()
    assert (obs.in_flight, obs.queued) == (7, 5)
    assert (obs.completed_total, obs.service_seconds_total) == (145, 1200.5)
    assert reading.problems == ()
    assert reading.inputs()["in_flight_source"] == "vllm"
    assert reading.inputs()["serving_metrics"] == {"pods": 2, "running": 7, "waiting": 2, "completed_total": 145,
                                                   "service_seconds_total": 1200.5}

    result = scaling.tick_pool(ctx, pool, now=NOW, switches=ON)
    [audited] = ctx.state.audit_trail(f"gpuscaling/{dev_platform.name}/{pool.name}", since=ctx.started)
    assert audited.inputs["in_flight_source"] == result.inputs["in_flight_source"] == "vllm"
    assert audited.inputs["serving_metrics"]["running"] == 7

    import argparse

    from shared import cli_scaling

    _, rows, text = cli_scaling.cmd_scaling(ctx, argparse.Namespace(scaling_action="status"))
    [row] = [r for r in rows if r["pool"] == pool.name]
    assert (row["in_flight"], row["in_flight_source"]) == (7, "vllm") and "in flight 7 (vllm)" in text


def test_more_running_than_the_queue_holds_leaves_nothing_queued(ctx, arm, kube, dev_platform):
    # The gateway also sends requests to vLLM directly: they run without a message in the queue.
    pool = dev_platform.gpu_pools[0]
    _pool_with_pods(arm, kube, pool, {"vllm-h100-a": vllm_text(6)})
    _queue(ctx, pool, 2)
    obs = scaling.read_pool(ctx, pool, NOW.timestamp(), serving=(NAMESPACE, DEPLOYMENT)).observation()
    assert (obs.in_flight, obs.queued) == (6, 0)


@pytest.mark.parametrize(("case", "problem"), [
    ("malformed text", "line 1: not a sample"),
    ("a server that does not answer", "ServiceUnavailable"),
    ("no port named http", "no container port named 'http'"),
    ("a pod slower than the tick's budget", "not read within"),
])
def test_one_unreadable_pod_falls_back_to_the_estimate_without_counters_and_says_why(
        ctx, arm, kube, dev_platform, monkeypatch, case, problem):
    pool = dev_platform.gpu_pools[0]
    texts: dict[str, str | None] = {"vllm-h100-a": vllm_text(1, stop=10), "vllm-h100-b": vllm_text(2, stop=20)}
    if case == "malformed text":
        texts["vllm-h100-b"] = "<html>bad gateway</html>\n"
    elif case == "a server that does not answer":
        texts["vllm-h100-b"] = None
    _pool_with_pods(arm, kube, pool, texts)
    if case == "no port named http":
        stored = kube.object("v1", "pods", "vllm-h100-b", NAMESPACE)
        stored["spec"]["containers"][0]["ports"][0]["name"] = "api"
        kube.put_object(stored, "pods")
    elif case == "a pod slower than the tick's budget":
        monkeypatch.setattr(scaling, "SERVING_METRICS_BUDGET_SECONDS", 0.2)
        kube.inject(path="/pods/vllm-h100-b:8000/proxy/", status=None, delay=0.6)
    _queue(ctx, pool, 20)

    started = time.monotonic()
    reading = scaling.read_pool(ctx, pool, NOW.timestamp(), serving=(NAMESPACE, DEPLOYMENT))
    assert time.monotonic() - started < 2.0
    obs = reading.observation()
    slots = pool.slots_per_node * 2
    assert (obs.in_flight, obs.queued) == (slots, 20 - slots)  # the estimate: every slot of a serving node busy
    assert (obs.completed_total, obs.service_seconds_total) == (None, None)  # a partial sum reads as a reset
    assert reading.inputs()["in_flight_source"] == "estimate"
    [recorded] = [p for p in reading.problems if "vllm-h100-b" in p]
    assert problem in recorded


def test_a_pool_without_running_serving_pods_keeps_the_estimate_and_reads_nothing(ctx, arm, kube, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _pool_with_pods(arm, kube, pool, {"vllm-h100-starting": vllm_text(1)}, phase="Pending")
    reading = scaling.read_pool(ctx, pool, NOW.timestamp(), serving=(NAMESPACE, DEPLOYMENT))
    assert reading.in_flight_source == "estimate" and reading.problems == ()
    assert kube.count("GET", "/pods/vllm-h100-starting:") == 0


def test_a_pod_going_away_between_ticks_never_reads_as_a_counter_reset(ctx, arm, kube, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _pool_with_pods(arm, kube, pool, {"vllm-h100-a": vllm_text(1, stop=100, seconds=500.0),
                                      "vllm-h100-b": vllm_text(1, stop=40, seconds=200.0)})
    _queue(ctx, pool, 2)
    first = scaling.tick_pool(ctx, pool, now=NOW, switches=ON)
    assert first.inputs["serving_metrics"]["completed_total"] == 140
    with kube.lock:  # pod b drained and gone; a finished 5 more
        del kube.objects[("v1", "pods")][(NAMESPACE, "vllm-h100-b")]
    kube.serve_pod_metrics(NAMESPACE, "vllm-h100-a", vllm_text(1, stop=105, seconds=525.0))
    second = scaling.tick_pool(ctx, pool, now=NOW + dt.timedelta(seconds=15), switches=ON)
    assert second.inputs["in_flight_source"] == "vllm"
    assert (second.inputs["serving_metrics"]["completed_total"],
            second.inputs["serving_metrics"]["service_seconds_total"]) == (145, 725.0)
    # The policy saw 5 completions in 15 s, not 105 (the plain sum dropping from 140 to 105 reads as a reset).
    state = scaling.load_carried(ctx.storage, dev_platform.name, pool.name)
    assert state.policy.completed_total == 145 and state.counters["pods"] == {"vllm-h100-a": [105.0, 525.0]}
