"""The Kubernetes emulator's Deployment controller and scheduler, through the official ``kubernetes`` client over a
real socket, and the GPU scaling tick end to end on it: pods follow the serving Deployment's replicas onto the
nodes ARM brings, in flight is read from their vLLM metrics, and a drain removes exactly the cordoned nodes' pods
before their machines go."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from _fixtures_saas import sandbox_context

from shared.services.scaling import serving_metrics
from shared.services.scaling import tick as scaling

pytestmark = pytest.mark.integration
NAMESPACE, DEPLOYMENT = "model-serving", "vllm-h100"
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
ON = scaling.Switches(enabled=True, dry_run=False, drain_timeout_seconds=600)
COST = "controller.kubernetes.io/pod-deletion-cost"


@pytest.fixture(scope="module")
def arm(linked_arm):
    return linked_arm


@pytest.fixture(scope="module")
def api(kube):
    from kubernetes import client

    config = client.Configuration()
    config.host = kube.base_url
    config.api_key = {"authorization": "sandbox-token"}
    config.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(config) as api_client:
        yield client.CoreV1Api(api_client), client.AppsV1Api(api_client)


@pytest.fixture
def core(api, kube, arm):
    arm.reset()
    kube.reset()
    return api[0]


def _scale(api, replicas: int) -> None:
    api[1].patch_namespaced_deployment(DEPLOYMENT, NAMESPACE, {"spec": {"replicas": replicas}})


def _pods(core) -> list:
    """The serving Deployment's pods, as the tick lists them (by its instance label)."""
    listed = core.list_namespaced_pod(NAMESPACE, label_selector=f"app.kubernetes.io/instance={DEPLOYMENT}")
    return sorted(listed.items, key=lambda p: p.metadata.name)


def _placed(core) -> dict[str, str | None]:
    return {p.metadata.name: p.spec.node_name for p in _pods(core)}


def _where(core) -> list[str | None]:
    """The nodes the pods run on, sorted, with one None per Pending pod last."""
    return sorted(_placed(core).values(), key=lambda node: (node is None, node or ""))


def _set_ready(core, node: str, ready: bool) -> None:
    """What the kubelet posts on the node's status subresource."""
    core.patch_node_status(node, {"status": {"conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady"}]}})


def test_replicas_up_make_pods_that_wait_pending_until_a_node_is_ready_then_run_one_per_gpu_node(core, api, kube):
    kube.scale_pool("h100", 2, ready=False)
    _scale(api, 3)
    pods = _pods(core)
    assert len(pods) == 3 and {p.status.phase for p in pods} == {"Pending"}
    assert all(p.metadata.name.startswith(f"{DEPLOYMENT}-") and p.metadata.owner_references[0].kind == "ReplicaSet"
               for p in pods)
    [why] = {p.status.conditions[0].message for p in pods}
    assert why.startswith("0/") and "untolerated taint {node.kubernetes.io/not-ready: }" in why
    first, second = kube.pool_node_names("h100")
    _set_ready(core, first, True)
    assert sorted(n for n in _placed(core).values() if n) == [first]  # the vLLM pod asks for the node's one GPU
    _set_ready(core, second, True)
    pods = _pods(core)
    assert sorted(p.spec.node_name for p in pods if p.spec.node_name) == [first, second]
    assert [p.status.phase for p in pods].count("Running") == 2 and all(p.status.pod_ip for p in pods
                                                                        if p.spec.node_name)
    [pending] = [p for p in pods if not p.spec.node_name]
    assert "2 Insufficient nvidia.com/gpu" in pending.status.conditions[0].message
    status = api[1].read_namespaced_deployment(DEPLOYMENT, NAMESPACE).status
    assert (status.replicas, status.ready_replicas) == (3, 2)


def test_cordoned_nodes_get_no_new_pods(core, api, kube):
    kube.scale_pool("h100", 3)
    a, b, c = kube.pool_node_names("h100")
    _scale(api, 1)
    assert list(_placed(core).values()) == [a]
    for node in (b, c):
        core.patch_node(node, {"spec": {"unschedulable": True}})
    _scale(api, 3)
    assert _where(core) == [a, None, None]
    pending = [p for p in _pods(core) if not p.spec.node_name]
    assert "2 node(s) were unschedulable" in pending[0].status.conditions[0].message
    core.patch_node(b, {"spec": {"unschedulable": None}})  # uncordoned: schedulable again
    assert _where(core) == [a, b, None]


@pytest.mark.parametrize(("marked", "replicas", "kept"), [
    pytest.param({1: "-1000"}, 2, {0, 2}, id="the lowest deletion cost goes first"),
    pytest.param({0: "-1000", 2: "-1000"}, 1, {1}, id="every pod marked with the lowest cost goes"),
    pytest.param({}, 2, {0, 1}, id="among equals the newest goes first"),
])
def test_replicas_down_remove_the_pods_the_replicaset_ranks_first(core, api, kube, marked, replicas, kept):
    kube.scale_pool("h100", 3)
    nodes = kube.pool_node_names("h100")
    _scale(api, 1)
    _scale(api, 2)
    _scale(api, 3)  # created one after the other: pod i is the i-th oldest, on node i
    by_node = {p.spec.node_name: p.metadata.name for p in _pods(core)}
    pods = [by_node[n] for n in nodes]
    for index, cost in marked.items():
        core.patch_namespaced_pod(pods[index], NAMESPACE, {"metadata": {"annotations": {COST: cost}}})
    _scale(api, replicas)
    assert set(_placed(core)) == {pods[i] for i in kept}


def test_pending_pods_go_before_running_ones_whatever_their_cost(core, api, kube):
    kube.scale_pool("h100", 1)
    _scale(api, 2)
    [running] = [p.metadata.name for p in _pods(core) if p.spec.node_name]
    assert [p.status.phase for p in _pods(core) if not p.spec.node_name] == ["Pending"]
    core.patch_namespaced_pod(running, NAMESPACE, {"metadata": {"annotations": {COST: "-1000"}}})
    _scale(api, 1)
    assert list(_placed(core)) == [running]


def test_a_deleted_machines_pods_go_and_the_replicaset_replaces_them(core, api, kube):
    kube.scale_pool("h100", 2)
    _scale(api, 2)
    first, second = kube.pool_node_names("h100")
    lost = next(name for name, node in _placed(core).items() if node == second)
    kube.remove_nodes([second])
    placed = _placed(core)
    assert lost not in placed and _where(core) == [first, None]


def test_running_serving_pods_answer_vllm_metrics_sharing_the_serving_load_up_to_their_slots(
        core, api, kube, dev_platform):
    pool = dev_platform.gpu_pools[0]
    ctx = sandbox_context(dev_platform, kube)
    kube.scale_pool("h100", 2)
    _scale(api, 3)
    running = [p.metadata.name for p in _pods(core) if p.status.phase == "Running"]
    [pending] = [p.metadata.name for p in _pods(core) if p.status.phase == "Pending"]

    def read(pod: str) -> serving_metrics.ServingMetrics:
        return serving_metrics.parse(ctx.cluster.pod_metrics(NAMESPACE, pod, 8000))

    assert [read(p).running for p in running] == [0, 0]  # measured, nothing to serve yet
    kube.set_serving_load(NAMESPACE, DEPLOYMENT, pool.slots_per_node + 3)
    assert [read(p).running for p in running] == [pool.slots_per_node, 3]
    kube.serve_pod_figures(NAMESPACE, running[1], {"running": 5, "waiting": 2, "success": 40, "latency_seconds": 80})
    figures = read(running[1])
    assert (figures.running, figures.waiting, figures.success_total, figures.e2e_seconds_sum) == (5, 2, 40, 80)
    from shared.errors import PlatformError

    with pytest.raises(PlatformError):  # a Pending pod has no IP: the API server answers 400
        ctx.cluster.pod_metrics(NAMESPACE, pending, 8000)
    [embed] = [p.metadata.name for p in core.list_namespaced_pod(NAMESPACE).items
               if p.metadata.name.startswith("embed-cpu-")][:1]
    with pytest.raises(PlatformError):  # not a serving pod: nothing listens on its port (503)
        ctx.cluster.pod_metrics(NAMESPACE, embed, 8000)


# -- the GPU scaling tick on it ----------------------------------------------------------------------------------

@pytest.fixture
def ctx(core, arm, kube, azurite, sandbox_ca, dev_platform):
    context = sandbox_context(dev_platform, arm, kube, PLATFORM_STORAGE_CONNECTION_STRING=azurite.connection_string,
                              TLS_CA_BUNDLE=str(sandbox_ca.ca_path), HTTP_TIMEOUT_SECONDS="5")
    pool = dev_platform.gpu_pools[0]
    context.storage.delete(scaling.STATE_TABLE, dev_platform.name, pool.name)
    while messages := context.storage.receive(pool.inference_queue, max_messages=32, visibility_timeout=1):
        for m in messages:
            context.storage.delete_message(pool.inference_queue, m)
    return context


def test_the_tick_wakes_the_pool_reads_vllm_and_drains_exactly_the_cordoned_nodes_pods_before_their_machines(
        ctx, core, arm, kube, dev_platform, azurite, tmp_path, capsys):
    from shared.local import enqueue

    pool = dev_platform.gpu_pools[0]
    settings = tmp_path / "sandbox.settings.json"  # as make run writes it
    settings.write_text(json.dumps({"Values": {"PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string}}))
    assert enqueue.main(["--settings", str(settings), pool.inference_queue, "12"]) == 0  # the banner's line
    assert f"queued 12 request(s) on {pool.inference_queue}: depth 12" in capsys.readouterr().out
    kube.set_serving_load(NAMESPACE, DEPLOYMENT, lambda: ctx.storage.queue_depth(pool.inference_queue))
    scaling.set_override(ctx, pool.name, 3, NOW + dt.timedelta(hours=2), by="test")  # a size to drain from
    woke = scaling.tick_pool(ctx, pool, now=NOW, switches=ON)
    assert woke.action == "scale" and woke.target == 3
    arm.pool(pool.name)  # the operation ends, the emulated autoscaler adds the nodes, the pods start on them
    nodes = kube.pool_node_names(pool.name)
    assert len(nodes) == woke.target
    placed = _placed(core)
    assert sorted(placed.values()) == nodes  # one Running pod on each new node

    measured = scaling.tick_pool(ctx, pool, now=NOW + dt.timedelta(seconds=15), switches=ON)
    assert measured.inputs["in_flight_source"] == "vllm"
    assert measured.inputs["serving_metrics"]["running"] == min(12, woke.target * pool.slots_per_node)

    scaling.set_override(ctx, pool.name, 1, NOW + dt.timedelta(hours=2), by="test")
    cordon = scaling.tick_pool(ctx, pool, now=NOW + dt.timedelta(seconds=30), switches=ON)
    assert (cordon.reason, cordon.action) == ("Override", "cordon")
    cordoned = {n.metadata.name for n in core.list_node(label_selector=f"kubernetes.azure.com/agentpool={pool.name}")
                .items if n.spec.unschedulable}
    assert len(cordoned) == woke.target - 1
    # The ReplicaSet removed exactly the pods on the cordoned nodes (deletion cost -1000); the kept one stays.
    assert _placed(core) == {name: node for name, node in placed.items() if node not in cordoned}

    removed = scaling.tick_pool(ctx, pool, now=NOW + dt.timedelta(seconds=45), switches=ON)
    assert removed.action == "delete-machines" and all(name in removed.message for name in cordoned)
    assert arm.count("POST", "/deleteMachines$") == 1
    arm.pool(pool.name)  # the operation settles: exactly those machines are gone
    assert set(kube.pool_node_names(pool.name)) == set(nodes) - cordoned
    assert _placed(core) == {name: node for name, node in placed.items() if node not in cordoned}


def test_a_pod_deleted_through_the_api_is_replaced_and_a_flux_reapply_leaves_the_pods_alone(core, api, kube):
    kube.scale_pool("h100", 1)
    _scale(api, 1)
    [before] = _placed(core)
    core.delete_namespaced_pod(before, NAMESPACE)
    [after] = _placed(core)
    assert after != before and _where(core) == kube.pool_node_names("h100")
    generation = api[1].read_namespaced_deployment(DEPLOYMENT, NAMESPACE).metadata.generation
    with kube.lock:  # the apps Kustomization reconciles: the declared manifest (GPU request 1, not "1") again
        kube._apply_declared("flux-system", "apps")
    assert api[1].read_namespaced_deployment(DEPLOYMENT, NAMESPACE).metadata.generation == generation
    assert list(_placed(core)) == [after]


def test_nodes_added_after_the_seed_post_ready_after_node_ready_seconds_and_then_get_their_pods(core, api, kube):
    now = [1000.0]
    kube.monotonic = lambda: now[0]  # reset() restores the real clock and the delay
    kube.node_ready_seconds = 30
    kube.scale_pool("h100", 1)
    _scale(api, 1)
    [node] = kube.pool_node_names("h100")
    [pod] = _pods(core)
    assert pod.status.phase == "Pending" and "node.kubernetes.io/not-ready" in pod.status.conditions[0].message
    now[0] += 29
    assert _where(core) == [None]
    now[0] += 1
    assert _where(core) == [node]  # the next request sees the node Ready and the pod scheduled
    assert core.read_node(node).status.conditions[0].status == "True"
