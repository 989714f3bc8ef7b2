"""The GPU scaling tick end to end: Azurite queues and state, the ARM emulator's pools, the Kubernetes emulator's
nodes, through the real SDKs. Decisions are the real policy's; faults are injected in the emulators."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time

import pytest

from shared.context import Context
from shared.credentials import StaticTokenCredential
from shared.local.sandbox import Sandbox
from shared.local.sandbox.arm import vm_family
from shared.services.scaling import tick as scaling
from shared.settings import Settings

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
ON = scaling.Switches(enabled=True, dry_run=False, drain_timeout_seconds=600)


@pytest.fixture(scope="module")
def sandbox(dev_platform, tmp_path_factory):
    with Sandbox(dev_platform, tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture
def ctx(sandbox, azurite, dev_platform, storage):
    sandbox.arm.reset()
    sandbox.kubernetes.reset()
    environ = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
               "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "5", **sandbox.settings_env()}
    context = Context(settings=Settings.from_env(environ), platform=dev_platform,
                      credential=StaticTokenCredential(),
                      clock=lambda: dt.datetime.now(dt.UTC))
    context.started = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=1)  # audit records of this test only
    for pool in dev_platform.gpu_pools:
        context.storage.delete(scaling.STATE_TABLE, dev_platform.name, pool.name)
        _empty(context, pool.inference_queue)
    return context


def _empty(ctx, queue: str) -> None:
    while True:
        messages = ctx.storage.receive(queue, max_messages=32, visibility_timeout=1)
        if not messages:
            return
        for m in messages:
            ctx.storage.delete_message(queue, m)


def _queue(ctx, pool, n: int) -> None:
    for i in range(n):
        ctx.storage.send(pool.inference_queue, f'{{"prompt": "request {i}"}}')


def _tick(ctx, pool, at=NOW, switches=ON, **kw):
    return scaling.tick_pool(ctx, pool, now=at, switches=switches, **kw)


def _with_nodes(sandbox, pool, n: int) -> None:
    sandbox.arm.set_pool(pool.name, count=n)
    sandbox.kubernetes.scale_pool(pool.name, n)


def _nodes(sandbox, pool) -> dict[str, dict]:
    return {n["metadata"]["name"]: n for n in sandbox.kubernetes.objects.get(("v1", "nodes"), {}).values()
            if n["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == pool.name}


def test_queue_depth_is_read_from_azurite(ctx, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _queue(ctx, pool, 5)
    assert ctx.storage.queue_depth(pool.inference_queue) == 5


def test_an_autoscaler_pool_wakes_from_zero_by_min_count_with_count_sent_back_unchanged(ctx, sandbox, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _queue(ctx, pool, 12)
    result = _tick(ctx, pool)

    assert (result.reason, result.action, result.current) == ("WakeFromZero", "scale", 0)
    props = sandbox.arm.pool(pool.name)["properties"]
    assert props["minCount"] == result.target >= 1 and props["enableAutoScaling"] is True
    # (The emulator refuses a changed count on an autoscaler pool, as AKS does: the PUT sent it unchanged.)
    assert sandbox.arm.count("PUT", "agentPools") == 1
    # The operation is not waited for: recorded, and the next tick looks at the pool again.
    carried = scaling.load_carried(ctx.storage, dev_platform.name, pool.name)
    assert carried.operation["kind"] == "scale" and carried.last["reason"] == "WakeFromZero"
    # The emulated autoscaler then brings the nodes, which Kubernetes shows Ready; the next tick counts them.
    deadline = time.monotonic() + 5
    while len(_nodes(sandbox, pool)) < result.target and time.monotonic() < deadline:
        sandbox.arm.pool(pool.name)
        time.sleep(0.05)
    again = _tick(ctx, pool, at=NOW + dt.timedelta(seconds=15))
    assert again.inputs["nodes"]["serving"] == result.target
    assert again.action in ("none", "scale")
    records = ctx.state.audit_trail(f"gpuscaling/{dev_platform.name}/{pool.name}", since=ctx.started)
    assert [r.action for r in records] == ["decide", "decide"] and records[0].inputs["depth"] == 12
    scaled = ctx.state.audit_trail(f"nodepool/{dev_platform.name}/{pool.name}", since=ctx.started)
    assert (scaled[0].action, scaled[0].outcome) == ("scale", "succeeded")
    assert scaled[0].inputs["count"] == result.target


def test_a_manual_pool_gets_its_count(ctx, sandbox, dev_platform):
    pool = dev_platform.gpu_pools[0]
    sandbox.arm.set_pool(pool.name, enableAutoScaling=False, minCount=None, maxCount=None)
    _queue(ctx, pool, 12)
    result = _tick(ctx, pool)
    assert result.action == "scale"
    assert sandbox.arm.pool(pool.name)["properties"]["count"] == result.target


def test_a_pool_changed_since_it_was_read_is_left_for_the_next_tick(ctx, sandbox, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _queue(ctx, pool, 12)
    sandbox.arm.inject(status=412, method="PUT", path="agentPools", times=10)
    result = _tick(ctx, pool)
    assert result.action == "skipped" and "ETag" in result.message
    assert sandbox.arm.pool(pool.name)["properties"]["minCount"] == 0


def test_an_operation_in_progress_skips_the_tick(ctx, sandbox, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _queue(ctx, pool, 12)
    sandbox.arm.set_pool(pool.name, provisioningState="Scaling")
    result = _tick(ctx, pool)
    assert result.action == "skipped" and "Scaling" in result.message
    assert sandbox.arm.count("PUT", "agentPools") == 0


def test_a_409_operation_not_allowed_in_progress_skips_the_tick(ctx, sandbox, dev_platform, monkeypatch):
    pool = dev_platform.gpu_pools[0]
    _queue(ctx, pool, 12)
    sandbox.arm.inject(status=409, code="OperationNotAllowed", method="PUT", path="agentPools", times=10,
                       message="Operation is not allowed because there's an in progress scale node pool operation")
    # The issue: 409 "operation in progress" skips the tick. One attempt, no backoff inside the tick (the next
    # tick is the retry); a backoff would be recorded here instead of slept.
    waited: list[float] = []
    monkeypatch.setattr(scaling, "mutate", functools.partial(scaling.mutate, sleep=waited.append))
    result = _tick(ctx, pool)
    assert result.action == "skipped"
    assert waited == [] and sandbox.arm.count("PUT", "agentPools") == 1


def test_quota_exhaustion_alerts_and_moves_demand_to_the_fallback_pool(ctx, sandbox, dev_platform, caplog):
    h100, mi300x = dev_platform.gpu_pools
    assert h100.fallback_pool == mi300x.name
    # AKS refuses for quota a PUT that adds nodes (a manual pool's count); an autoscaler pool's minCount passes
    # and its autoscaler then fails to add nodes (not covered here).
    sandbox.arm.set_pool(h100.name, enableAutoScaling=False, minCount=None, maxCount=None)
    sandbox.arm.set_quota(vm_family(h100.vm_size), 0)
    _queue(ctx, h100, 12)
    with caplog.at_level("ERROR"):
        result = _tick(ctx, h100)
    assert (result.reason, result.action) == (scaling.ALERT_QUOTA, "failed")
    assert any(getattr(r, "error_code", None) == scaling.ALERT_QUOTA for r in caplog.records)
    assert scaling.load_carried(ctx.storage, dev_platform.name, h100.name).fallback_to == mi300x.name
    # The fallback pool now sizes for the H100 queue as well.
    fallback = _tick(ctx, mi300x)
    assert fallback.inputs["fallback_demand"] == 12
    assert fallback.action == "scale" and sandbox.arm.pool(mi300x.name)["properties"]["minCount"] >= 1


def test_quota_exhaustion_without_a_fallback_pool_only_alerts(ctx, sandbox, dev_platform):
    h100 = dataclasses.replace(dev_platform.gpu_pools[0], fallback_pool=None)
    sandbox.arm.set_pool(h100.name, enableAutoScaling=False, minCount=None, maxCount=None)
    sandbox.arm.set_quota(vm_family(h100.vm_size), 0)
    _queue(ctx, h100, 12)
    result = _tick(ctx, h100)
    assert result.reason == scaling.ALERT_QUOTA and "no fallback pool" in result.message


def test_the_kill_switch_and_dry_run_change_nothing_but_are_audited(ctx, sandbox, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _queue(ctx, pool, 12)
    off = _tick(ctx, pool, switches=dataclasses.replace(ON, enabled=False))
    dry = _tick(ctx, pool, at=NOW + dt.timedelta(seconds=15), switches=dataclasses.replace(ON, dry_run=True))
    assert (off.action, dry.action) == ("skipped", "planned")
    assert sandbox.arm.count("PUT", "agentPools") == 0
    outcomes = [r.outcome for r in ctx.state.audit_trail(f"gpuscaling/{dev_platform.name}/{pool.name}",
                                                         since=ctx.started)]
    assert outcomes == ["succeeded", "planned"]


def test_scale_down_drains_the_chosen_nodes_before_deleting_exactly_those_machines(ctx, sandbox, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _with_nodes(sandbox, pool, 3)
    scaling.set_override(ctx, pool.name, 1, NOW + dt.timedelta(hours=2), by="test")
    first = _tick(ctx, pool)
    assert (first.reason, first.action) == ("Override", "cordon")
    cordoned = [n for n, node in _nodes(sandbox, pool).items() if node["spec"].get("unschedulable")]
    assert len(cordoned) == 2
    # A serving pod still runs on one of them: the machine stays until it is gone.
    with sandbox.kubernetes.lock:
        sandbox.kubernetes._store("v1", "pods", {
            "metadata": {"name": "vllm-h100-abc", "namespace": "model-serving",
                         "labels": {"app.kubernetes.io/instance": "vllm-h100"}},
            "spec": {"nodeName": cordoned[0], "containers": [{"name": "vllm", "image": "vllm"}]}})
    waiting = _tick(ctx, pool, at=NOW + dt.timedelta(seconds=15))
    assert waiting.action == "draining" and cordoned[0] in waiting.message
    assert sandbox.arm.count("POST", "deleteMachines") == 0
    with sandbox.kubernetes.lock:
        pods = sandbox.kubernetes.objects[("v1", "pods")]
        del pods[next(k for k, v in pods.items() if v["metadata"]["name"] == "vllm-h100-abc")]
    done = _tick(ctx, pool, at=NOW + dt.timedelta(seconds=30))
    assert done.action == "delete-machines"
    assert sandbox.arm.count("POST", "/deleteMachines$") == 1
    kept = set(_nodes(sandbox, pool)) - set(cordoned)
    sandbox.arm.pool(pool.name)  # let the operation settle
    assert set(_nodes(sandbox, pool)) == kept and len(kept) == 1  # exactly the drained machines went
    assert sandbox.arm.pool(pool.name)["properties"]["count"] == 1


def test_a_pool_another_owner_sizes_is_drained_through_the_eviction_api_honouring_its_budget(
        ctx, sandbox, dev_platform):
    # mi300x declares no serving Deployment (KEDA sizes its pods): its GPU pods are found by what they hold
    # (amd.com/gpu) and evicted like kubectl drain does, never killed with their machine.
    pool = next(p for p in dev_platform.gpu_pools if p.serving_deployment is None)
    kube = sandbox.kubernetes
    for (namespace, name), _ in list(kube.objects.get(("apps/v1", "deployments"), {}).items()):
        if namespace == "model-serving":  # only the pod this test places holds the pool's GPUs
            ctx.cluster.patch_merge("apps/v1", "deployments", name, {"spec": {"replicas": 0}}, namespace)
    _with_nodes(sandbox, pool, 1)
    node = next(iter(_nodes(sandbox, pool)))
    with kube.lock:
        kube._store("v1", "pods", {
            "metadata": {"name": "vllm-mi300x-abc", "namespace": "model-serving", "labels": {"app": "vllm-mi300x"}},
            "spec": {"nodeName": node, "containers": [{"name": "vllm", "image": "vllm",
                                                       "resources": {"limits": {"amd.com/gpu": "1"}}}]},
            "status": {"phase": "Running"}})
        kube._store("v1", "pods", {  # a DaemonSet's pod stays with its node: not a workload to drain
            "metadata": {"name": "amd-exporter-x", "namespace": "model-serving",
                         "ownerReferences": [{"kind": "DaemonSet", "name": "amd-exporter", "apiVersion": "apps/v1"}]},
            "spec": {"nodeName": node, "containers": [{"name": "e", "image": "e",
                                                       "resources": {"limits": {"amd.com/gpu": "1"}}}]},
            "status": {"phase": "Running"}})
        kube._store("policy/v1", "poddisruptionbudgets", {
            "metadata": {"name": "vllm-mi300x", "namespace": "model-serving"},
            "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "vllm-mi300x"}}},
            "status": {"disruptionsAllowed": 0}})
    scaling.set_override(ctx, pool.name, 0, NOW + dt.timedelta(hours=2), by="test")
    first = _tick(ctx, pool)
    assert (first.reason, first.action) == ("Override", "cordon") and kube.evictions == []  # the budget said no
    waiting = _tick(ctx, pool, at=NOW + dt.timedelta(seconds=15))
    assert waiting.action == "draining" and sandbox.arm.count("POST", "deleteMachines") == 0
    with kube.lock:
        kube.objects[("policy/v1", "poddisruptionbudgets")][("model-serving", "vllm-mi300x")]["status"] = {
            "disruptionsAllowed": 1}
    assert _tick(ctx, pool, at=NOW + dt.timedelta(seconds=30)).action == "draining"  # asked again: granted
    assert kube.evictions == [("model-serving", "vllm-mi300x-abc")]
    done = _tick(ctx, pool, at=NOW + dt.timedelta(seconds=45))
    assert done.action == "delete-machines" and sandbox.arm.count("POST", "/deleteMachines$") == 1
    assert [r.action for r in ctx.state.audit_trail(f"nodepool/dev-uaenorth/{pool.name}", limit=10)
            if r.action == "evict"], "the second ask is audited"


def test_an_override_waits_out_a_tick_holding_the_pools_lease(ctx, dev_platform):
    import threading

    pool = dev_platform.gpu_pools[0]
    held, release = threading.Event(), threading.Event()

    def tick_in_progress():
        with ctx.state.lease(scaling._lease_name(dev_platform.name, pool.name), seconds=15):
            held.set()
            release.wait(5)

    worker = threading.Thread(target=tick_in_progress)
    worker.start()
    held.wait(5)
    threading.Timer(1.5, release.set).start()
    try:
        scaling.set_override(ctx, pool.name, 2, NOW + dt.timedelta(hours=1), by="test")
    finally:
        release.set()
        worker.join()
    assert scaling.load_carried(ctx.storage, dev_platform.name, pool.name).policy.override.count == 2


def test_platformctl_override_status_and_decide_drive_the_same_tick(ctx, sandbox, dev_platform):
    import argparse

    from shared import cli_scaling

    pool = dev_platform.gpu_pools[0]
    code, data, text = cli_scaling.cmd_scaling(ctx, argparse.Namespace(
        scaling_action="override", pool=pool.name, count=2, duration="2h", by="alice", dry_run=False))
    assert code == 0 and data["count"] == 2 and "pinned at 2" in text
    code, data, text = cli_scaling.cmd_scaling(ctx, argparse.Namespace(scaling_action="decide", pool=pool.name))
    assert (data["reason"], data["target"], data["action"]) == ("Override", 2, "planned")
    assert sandbox.arm.count("PUT", "agentPools") == 0  # decide is a dry run
    code, rows, text = cli_scaling.cmd_scaling(ctx, argparse.Namespace(scaling_action="status"))
    [row] = [r for r in rows if r["pool"] == pool.name]
    assert row["override"]["count"] == 2 and row["last"]["reason"] == "Override" and row["depth"] == 0
    assert "override: 2 until" in text
    # priced from the one price source: nodes billed now x the pool's VM price (issue 16)
    assert row["cost_per_hour"] == row["billed_nodes"] * row["hourly_price"] and "GPU pools cost" in text


def test_the_timer_function_scales_the_sandbox_end_to_end(ctx, sandbox, dev_platform, monkeypatch):
    """The registered Functions timer, run through the local host's admin endpoint, as `make run` serves it."""
    import requests

    from shared.context import set_context
    from shared.local.host import LocalHost

    monkeypatch.setenv("GPU_SCALING_SCHEDULE", "*/15 * * * * *")
    import function_app

    pool = dev_platform.gpu_pools[0]
    _queue(ctx, pool, 12)
    set_context(ctx)
    # The app has queue-triggered functions (drift): the host polls them from the same Azurite.
    host = LocalHost(function_app.app, port=0, run_timers=False, storage=ctx.storage)
    url = host.start()
    try:
        assert "gpu_scaling" in host.functions
        assert requests.post(f"{url}/admin/functions/gpu_scaling", json={}, timeout=5).status_code == 202
        deadline = time.monotonic() + 30
        while sandbox.arm.pool(pool.name)["properties"]["minCount"] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sandbox.arm.pool(pool.name)["properties"]["minCount"] >= 1
        while not _nodes(sandbox, pool) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _nodes(sandbox, pool)  # the emulated autoscaler brought the nodes; Kubernetes shows them
    finally:
        host.stop()
        set_context(None)


def test_an_autoscaler_pool_whose_nodes_never_come_alerts_and_falls_back(ctx, sandbox, dev_platform, caplog):
    h100, mi300x = dev_platform.gpu_pools
    sandbox.arm.autoscaler_delay = 3600  # the autoscaler never gets there (quota, capacity)
    _queue(ctx, h100, 12)
    assert _tick(ctx, h100).action == "scale"
    with caplog.at_level("ERROR"):
        _tick(ctx, h100, at=NOW + dt.timedelta(seconds=2 * 480 + 30))
    assert any(getattr(r, "error_code", None) == scaling.ALERT_STALLED for r in caplog.records)
    assert scaling.load_carried(ctx.storage, dev_platform.name, h100.name).fallback_to == mi300x.name


def _replicas(sandbox, namespace="model-serving", name="vllm-h100"):
    deployment = sandbox.kubernetes.objects[("apps/v1", "deployments")].get((namespace, name))
    return None if deployment is None else deployment["spec"].get("replicas", 1)


def _set_replicas(sandbox, replicas: int, namespace="model-serving", name="vllm-h100") -> None:
    """As a client would (the emulator's Deployment controller follows)."""
    deployment = sandbox.kubernetes.object("apps/v1", "deployments", name, namespace)
    deployment["spec"]["replicas"] = replicas
    sandbox.kubernetes.put_object(deployment, "deployments")


def test_new_nodes_get_pods_the_serving_deployment_follows_a_scale_up_and_is_never_lowered_outside_a_drain(
        ctx, sandbox, dev_platform):
    # The function, not KEDA, sizes the serving Deployment (gitops pauses the ScaledObject): a pool that wakes
    # must get pods, or its nodes serve nothing.
    pool = dev_platform.gpu_pools[0]
    assert pool.serving_deployment == "model-serving/vllm-h100"
    _set_replicas(sandbox, 0)
    _queue(ctx, pool, 12)
    woke = _tick(ctx, pool)
    assert woke.action == "scale" and _replicas(sandbox) == woke.target >= 1
    raised = ctx.state.audit_trail(f"deployment/{dev_platform.name}/model-serving/vllm-h100", since=ctx.started)
    assert [(r.action, r.outcome, r.inputs["replicas"]) for r in raised] == [("replicas", "succeeded", woke.target)]
    # The pods wait Pending for their nodes; once the autoscaler brought them, one runs on each.
    sandbox.arm.pool(pool.name)
    running = [p["spec"].get("nodeName") for p in sandbox.kubernetes.objects[("v1", "pods")].values()
               if p["metadata"]["labels"].get("app.kubernetes.io/instance") == "vllm-h100"
               and p["status"]["phase"] == "Running"]
    assert sorted(running) == sorted(_nodes(sandbox, pool)) and len(running) == woke.target
    # While the nodes come, the next ticks keep the replicas (the pool's minCount counts them).
    again = _tick(ctx, pool, at=NOW + dt.timedelta(seconds=15))
    assert _replicas(sandbox) == max(woke.target, again.target)


def test_dry_run_and_kill_switch_leave_the_serving_replicas_alone(ctx, sandbox, dev_platform):
    pool = dev_platform.gpu_pools[0]
    _set_replicas(sandbox, 0)
    _queue(ctx, pool, 12)
    _tick(ctx, pool, switches=dataclasses.replace(ON, dry_run=True))
    _tick(ctx, pool, at=NOW + dt.timedelta(seconds=15), switches=dataclasses.replace(ON, enabled=False))
    assert _replicas(sandbox) == 0
