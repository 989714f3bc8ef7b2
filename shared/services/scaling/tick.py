"""One timer tick for the GPU pools: per pool, gather, decide (``policy.decide``), act. Under the pool's lease.

Gather (``read_pool``):
- queue depth from Storage (``inference_queue``). Azure's ApproximateMessagesCount includes messages
  being processed (invisible until the worker deletes them when the request ends), so queued is the depth
  less what is in flight, floored at 0.
- in flight **measured** from vLLM itself: every Running pod of the serving Deployment
  (``gpu_pools[].serving_deployment``) is read through the API server's pod proxy
  (``/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/metrics``, the port its pod spec names ``http``;
  ``serving_metrics`` parses the text): in flight = ``vllm:num_requests_running`` summed over the pods, and
  the policy's counters ``completed_total`` (``vllm:request_success_total``, every ``finished_reason``) and
  ``service_seconds_total`` (``vllm:e2e_request_latency_seconds_sum``) are the pods' sums, made monotone
  across pods coming and going (``carry_counters``: each pod's increase since the last tick, carried in the
  state row), since a sum that drops when a pod goes reads as a reset to the policy. Pods are read in
  parallel within ``SERVING_METRICS_BUDGET_SECONDS``.
- the **estimate** where nothing can be measured: ``min(depth, serving nodes x slots)`` in flight (every slot
  of a serving node assumed busy while anything waits) and no counters. It is used when the pool declares no
  serving Deployment, no serving pod is Running, or **any** serving pod's metrics cannot be read (RBAC,
  NetworkPolicy, timeout, malformed text, no ``http`` port): a partial sum would undercount in flight and read
  as a counter reset. The pod's problem goes to ``reading.problems``; the audited inputs say which source was
  used (``in_flight_source``: ``vllm`` or ``estimate``).
- the pool from ARM (count, min/max, provisioning state, ETag) and its nodes from Kubernetes: serving =
  Ready and not cordoned; on the way = the pool's desired size (``max(count, minCount)`` for an
  autoscaler pool) less serving and cordoned nodes.
- the carried state from the table ``gpuscaling`` (one row per environment and pool): the policy's
  state (JSON), a drain in progress, the last operation, the last decision, the pool's vLLM counters.

Act (``act``), through ``actuation.mutate`` with the pool's ETag, never waiting on AKS's operation:
- up: autoscaler pools get ``min_count`` (and ``max_count`` if needed), ``count`` sent back unchanged;
  manual pools get ``count`` (``NodePools.scale``). The operation is recorded; the next tick reads the
  pool again. A pool whose operation still runs (409 "in progress", or a transitional state) skips the tick.
- down, killing nothing: the least busy serving nodes are cordoned and their serving pods made the
  first the ReplicaSet removes (``controller.kubernetes.io/pod-deletion-cost``) while the serving
  Deployment's replicas drop; once no serving pod is left on them (or ``drain_timeout_seconds`` passed),
  ``min_count`` is lowered and exactly those machines are deleted (``deleteMachines``).
- quota exhausted: permanent; logged with the stable code ``GpuQuotaExhausted`` (alert on it) and, where
  the pool declares a ``fallback_pool``, the fallback is marked to take the demand (its own tick then
  sizes it from this pool's queue as well).

Kill switch and dry run per environment: app settings ``GPU_SCALING_ENABLED`` (default true) and
``GPU_SCALING_DRY_RUN`` (default false); and a runtime kill switch, ``set_autoscaling_paused`` (ChatOps
``pause|resume autoscaling <env>``), a row in the state table that every tick reads: while it is set,
ticks decide and audit as with ``GPU_SCALING_ENABLED=false`` and change nothing. Every decision is
audited with its inputs (target ``gpuscaling/<env>/<pool>``); every change through ``mutate`` is audited
on ``nodepool/<env>/<pool>``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any

from shared.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PermanentError,
    PlatformError,
    TemporaryError,
)
from shared.platform import GpuPool, PlatformEnvironment
from shared.retry import RetryPolicy
from shared.services.actuation import mutate
from shared.services.scaling import bounds, serving_metrics
from shared.services.scaling.policy import (
    Decision,
    Observation,
    Override,
    PolicyState,
    ScalingParameters,
    decide,
)

log = logging.getLogger("platform_core.gpu_scaling")

#: Pool changes get one attempt per tick: a 409 (operation in progress) or a throttle skips the tick and the next
#: tick, 15 s later, reads the pool again. Backing off inside the tick would hold the lease and the timer for minutes.
ONE_ATTEMPT = RetryPolicy(attempts=1)

ACTOR = "gpu-scaling"
STATE_TABLE = "gpuscaling"
ALERT_QUOTA = "GpuQuotaExhausted"
#: An autoscaler pool's minCount was raised but its nodes have not come for twice the time to ready: on AKS
#: that is the cluster autoscaler failing to add them (quota or capacity), which no PUT reports.
ALERT_STALLED = "GpuScaleUpStalled"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SETTLED = ("Succeeded", "Failed", "Canceled")
#: Seconds the reads of all serving pods' metrics may take together, and each one (through the API server's
#: pod proxy). A tick runs every 15 s, holds the pool's lease, and ticks the pools one after the other: a slow
#: or hung pod must cost the decision a few seconds at most (then the estimate stands in), never the tick.
SERVING_METRICS_BUDGET_SECONDS = 3.0
SERVING_METRICS_POD_TIMEOUT_SECONDS = 2.0
#: Pods read at once: a pool of dozens of nodes is read in a few rounds of round trips, not one after another.
SERVING_METRICS_PARALLEL = 8
#: The container port the serving pods' metrics are read on (gitops/apps/base/vllm: vLLM serves /metrics
#: on its API port, named so in every serving Deployment).
SERVING_PORT_NAME = "http"
#: The runtime kill switch's row in STATE_TABLE (partition: the environment); no pool is named so.
PAUSE_ROW = "~autoscaling-paused"


@dataclass(frozen=True)
class Switches:
    enabled: bool = True
    dry_run: bool = False
    #: seconds a cordoned node may keep serving before its machine is deleted anyway
    drain_timeout_seconds: float = 600.0
    #: why nothing is done when not enabled (the setting, or who paused autoscaling at runtime)
    disabled_because: str = "GPU_SCALING_ENABLED is false"


def switches_from(environ: Mapping[str, str]) -> Switches:
    """``GPU_SCALING_ENABLED``, ``GPU_SCALING_DRY_RUN``, ``GPU_SCALING_DRAIN_TIMEOUT_SECONDS``; ConfigError if bad."""
    problems: list[str] = []

    def flag(name: str, default: bool) -> bool:
        raw = (environ.get(name) or "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        problems.append(f"{name}: expected true or false, got {raw!r}")
        return default

    enabled = flag("GPU_SCALING_ENABLED", True)
    dry_run = flag("GPU_SCALING_DRY_RUN", False)
    timeout = 600.0
    raw = (environ.get("GPU_SCALING_DRAIN_TIMEOUT_SECONDS") or "").strip()
    if raw:
        try:
            timeout = float(raw)
            if not 0 <= timeout <= 3600:
                raise ValueError
        except ValueError:
            problems.append(f"GPU_SCALING_DRAIN_TIMEOUT_SECONDS: expected seconds in [0, 3600], got {raw!r}")
    if problems:
        raise ConfigError(problems)
    return Switches(enabled, dry_run, timeout)


def parameters_for(pool: GpuPool) -> ScalingParameters:
    """The policy's parameters for one pool: its bounds and slots from platform.yaml, then its overrides."""
    return ScalingParameters(min_count=pool.min_count, max_count=pool.max_count,
                             slots_per_node=pool.slots_per_node).with_overrides(dict(pool.scaling))


# -- gather ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeView:
    name: str
    ready: bool
    cordoned: bool
    serving_pods: int  # serving pods scheduled on it


@dataclass(frozen=True)
class ServingReading:
    """vLLM's own figures summed over every Running serving pod of the pool (all of them, or none is used)."""

    pods: tuple[str, ...]
    running: int  # requests on the GPUs now: the pool's in flight
    waiting: int  # accepted by a server, waiting for a place in its batch (part of "queued")
    #: the pool's counters (None when a pod does not export one): the pods' sum from ``read_pool``; made
    #: monotone across pods coming and going by ``carry_counters`` before the policy sees them
    completed_total: int | None
    service_seconds_total: float | None
    #: each pod's own counters as read: (pod, requests completed, seconds served)
    per_pod: tuple[tuple[str, float | None, float | None], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"pods": len(self.pods), "running": self.running, "waiting": self.waiting,
                "completed_total": self.completed_total, "service_seconds_total": self.service_seconds_total}


@dataclass(frozen=True)
class PoolReading:
    pool: GpuPool
    observed_at: float
    depth: int | None
    node_pool: Any  # shared.adapters.aks.NodePool | None
    nodes: tuple[NodeView, ...] | None
    problems: tuple[str, ...] = ()
    #: measured in flight and counters; None: in flight is estimated (see the module docstring)
    measured: ServingReading | None = None

    @property
    def in_flight_source(self) -> str:
        return "vllm" if self.measured is not None else "estimate"

    @property
    def serving(self) -> list[NodeView]:
        return [n for n in self.nodes or () if n.ready and not n.cordoned]

    @property
    def desired(self) -> int:
        np = self.node_pool
        if np is None:
            return 0
        return max(np.count, np.min_count or 0) if np.autoscaling else np.count

    def observation(self) -> Observation | None:
        if self.node_pool is None:
            return None
        if self.nodes is None:
            # No view of the nodes: count what AKS says exists as serving (never a reason to add).
            ready, cordoned = self.node_pool.count, 0
        else:
            ready, cordoned = len(self.serving), sum(1 for n in self.nodes if n.cordoned)
        provisioning = max(0, self.desired - ready - cordoned)
        if self.depth is None:
            return Observation(self.observed_at, None, None, ready, provisioning)
        if self.measured is not None:
            measured = self.measured
            return Observation(self.observed_at, max(0, self.depth - measured.running), measured.running, ready,
                               provisioning, measured.completed_total, measured.service_seconds_total)
        in_flight = min(self.depth, ready * self.pool.slots_per_node)
        return Observation(self.observed_at, self.depth - in_flight, in_flight, ready, provisioning)

    def inputs(self) -> dict[str, Any]:
        np = self.node_pool
        return {
            "depth": self.depth,
            "pool": None if np is None else {"count": np.count, "min_count": np.min_count,
                                            "max_count": np.max_count, "autoscaling": np.autoscaling,
                                            "provisioning_state": np.provisioning_state},
            "nodes": None if self.nodes is None else {
                "serving": len(self.serving), "cordoned": [n.name for n in self.nodes if n.cordoned]},
            "in_flight_source": self.in_flight_source,
            "serving_metrics": None if self.measured is None else self.measured.to_json(),
            "problems": list(self.problems),
        }


def read_pool(ctx: Any, pool: GpuPool, now: float, *, serving: tuple[str, str] | None = None) -> PoolReading:
    """Everything one decision needs; an unreadable input becomes None and a problem, never an exception."""
    problems: list[str] = []
    depth: int | None = None
    try:
        depth = ctx.storage.queue_depth(pool.inference_queue)
    except PlatformError as exc:
        problems.append(f"queue {pool.inference_queue}: {exc.code}")
    node_pool = None
    try:
        node_pool = ctx.node_pools.get(pool.name)
    except PlatformError as exc:
        problems.append(f"node pool {pool.name}: {exc.code}")
    nodes: tuple[NodeView, ...] | None = None
    serving_pods: list[dict] | None = None
    try:
        prefix = ctx.platform.node_label_prefix
        raw_nodes = ctx.cluster.nodes(label_selector=f"{prefix}/gpu-pool={pool.name}")
        if not raw_nodes:
            raw_nodes = ctx.cluster.nodes(label_selector=f"kubernetes.azure.com/agentpool={pool.name}")
        pods_on: dict[str, int] = {}
        if serving is not None:
            serving_pods = _serving_pods(ctx, serving)
            for pod in serving_pods:
                node_name = (pod.get("spec") or {}).get("nodeName")
                if node_name:
                    pods_on[node_name] = pods_on.get(node_name, 0) + 1
        else:
            # No Deployment this function sizes (another owner, e.g. KEDA): the pool's GPU workloads are
            # whatever pods hold its GPUs; a node is busy while one of them runs there.
            names = {n["metadata"]["name"] for n in raw_nodes}
            for node_name, pods in gpu_pods_on(ctx, pool, names).items():
                pods_on[node_name] = len(pods)
        nodes = tuple(_node_view(n, pods_on) for n in raw_nodes)
    except PlatformError as exc:
        problems.append(f"nodes of {pool.name}: {exc.code}")
    measured = None
    if serving is not None and serving_pods is not None:
        measured = read_serving_metrics(ctx, serving[0], serving_pods, problems)
    return PoolReading(pool, now, depth, node_pool, nodes, tuple(problems), measured)


def read_serving_metrics(ctx: Any, namespace: str, pods: list[dict], problems: list[str], *,
                         budget: float | None = None, timeout: float | None = None) -> ServingReading | None:
    """vLLM's figures summed over the Running ``pods``; None (and a problem per pod) unless every one was read.

    Only Running pods serve (a terminating pod is still Running while it finishes its requests, and is read);
    with none, nothing is measured and the caller estimates."""
    running = [p for p in pods if ((p.get("status") or {}).get("phase")) == "Running"]
    if not running:
        return None
    targets: list[tuple[str, int]] = []
    unreadable = 0
    for pod in running:
        name = pod["metadata"]["name"]
        port = _named_port(pod, SERVING_PORT_NAME)
        if port is None:
            problems.append(f"serving pod {namespace}/{name}: no container port named {SERVING_PORT_NAME!r} "
                            "to read its metrics on")
            unreadable += 1
        else:
            targets.append((name, port))
    if unreadable:
        return None
    budget = SERVING_METRICS_BUDGET_SECONDS if budget is None else budget
    timeout = SERVING_METRICS_POD_TIMEOUT_SECONDS if timeout is None else timeout

    def read(name: str, port: int) -> serving_metrics.ServingMetrics:
        return serving_metrics.parse(ctx.cluster.pod_metrics(namespace, name, port, timeout=timeout))

    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=min(SERVING_METRICS_PARALLEL, len(targets)),
                              thread_name_prefix="serving-metrics")
    try:
        futures = {pool.submit(read, name, port): name for name, port in targets}
        _, late = wait_for(futures, timeout=budget)
    finally:
        # Never wait for a late read: its own timeout ends it in the background.
        pool.shutdown(wait=False, cancel_futures=True)
    figures: list[serving_metrics.ServingMetrics] = []
    for future, name in futures.items():
        where = f"serving pod {namespace}/{name} metrics"
        if future in late:
            problems.append(f"{where}: not read within {budget:.0f}s")
            continue
        try:
            figures.append(future.result())
        except PlatformError as exc:
            problems.append(f"{where}: {exc.code}")
        except serving_metrics.MetricsError as exc:
            problems.append(f"{where}: {exc}")
    if len(figures) != len(targets):
        log.warning("in flight estimated: %d of %d serving pods' metrics unreadable (%.1fs)",
                    len(targets) - len(figures), len(targets), time.monotonic() - started)
        return None
    successes = [f.success_total for f in figures]
    seconds = [f.e2e_seconds_sum for f in figures]
    names = tuple(name for name, _ in targets)
    return ServingReading(
        pods=names,
        running=round(sum(f.running for f in figures)),
        waiting=round(sum(f.waiting for f in figures)),
        completed_total=None if None in successes else round(sum(s for s in successes if s is not None)),
        service_seconds_total=None if None in seconds else sum(s for s in seconds if s is not None),
        per_pod=tuple(zip(names, successes, seconds, strict=True)))


def carry_counters(measured: ServingReading | None, carried: dict[str, Any] | None
                   ) -> tuple[ServingReading | None, dict[str, Any] | None]:
    """The pool's counters as one monotone counter, whatever pods come and go; and what to carry to the next tick.

    A plain sum over the pods drops whenever a pod goes (a scale-down, a rollout) or restarts, and the policy
    reads any drop as a reset of the whole counter: the pool's lifetime completions as this tick's arrivals,
    a phantom burst after every scale-down. So each tick adds what every pod did since the last one: a pod seen
    before adds its increase, a new pod (or one whose counter went back: restarted) adds all it has; a pod
    gone adds nothing more. No counters this tick (estimated, or not exported) carries nothing: the next
    measured tick starts a fresh base, which the policy sees after a tick without counters, not as a reset."""
    if measured is None or measured.completed_total is None:
        return measured, None
    now = {pod: [completed, seconds] for pod, completed, seconds in measured.per_pod}
    if not carried:
        completed_total, seconds_total = float(measured.completed_total), measured.service_seconds_total
    else:
        before = carried.get("pods") or {}
        completed_total = float(carried["completed_total"])
        seconds_total = carried.get("service_seconds_total")
        if measured.service_seconds_total is None:
            seconds_total = None
        for pod, (completed, seconds) in now.items():
            was_completed, was_seconds = before.get(pod) or [None, None]
            completed_total += _increase(completed, was_completed)
            if seconds_total is not None:
                seconds_total += _increase(seconds, was_seconds)
        if seconds_total is None and measured.service_seconds_total is not None:
            seconds_total = measured.service_seconds_total  # exported again: a fresh base (the policy restarts it)
    state = {"pods": now, "completed_total": completed_total, "service_seconds_total": seconds_total}
    return (dataclasses.replace(measured, completed_total=round(completed_total), service_seconds_total=seconds_total),
            state)


def _increase(value: float | None, before: float | None) -> float:
    if value is None:
        return 0.0
    return value if before is None or value < before else value - before


def _named_port(pod: dict, name: str) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name and isinstance(port.get("containerPort"), int):
                return port["containerPort"]
    return None


def _node_view(node: dict, pods_on: dict[str, int]) -> NodeView:
    name = node["metadata"]["name"]
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    cordoned = bool((node.get("spec") or {}).get("unschedulable"))
    return NodeView(name, ready, cordoned, pods_on.get(name, 0))


#: the extended resource each vendor's device plugin advertises (NVIDIA and AMD GPU operators)
GPU_RESOURCES = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}


def workloads_namespace(platform: PlatformEnvironment, pool: GpuPool) -> str | None:
    """Where the pool's GPU workloads run: its serving Deployment's namespace, else the one the environment's
    serving Deployments share (gitops/apps/base/vllm: every model server is in it); None when none is declared."""
    own = serving_of(platform, pool)
    if own is not None:
        return own[0]
    return next((s[0] for p in platform.gpu_pools if (s := serving_of(platform, p)) is not None), None)


def gpu_pods_on(ctx: Any, pool: GpuPool, nodes: set[str]) -> dict[str, list[dict]]:
    """The pods holding the pool's GPUs on ``nodes``, by node: not finished, not a DaemonSet's (the device
    plugin and exporters stay with their node), asking for the vendor's GPU resource."""
    namespace = workloads_namespace(ctx.platform, pool)
    resource = GPU_RESOURCES.get(pool.vendor)
    if namespace is None or resource is None or not nodes:
        return {}
    out: dict[str, list[dict]] = {}
    for pod in ctx.cluster.list("v1", "pods", namespace=namespace):
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        node = spec.get("nodeName")
        if node not in nodes or status.get("phase") in ("Succeeded", "Failed"):
            continue
        if any(ref.get("kind") == "DaemonSet" for ref in pod["metadata"].get("ownerReferences") or ()):
            continue
        wants = [(c.get("resources") or {}) for c in spec.get("containers") or ()]
        if any(resource in (r.get("limits") or {}) or resource in (r.get("requests") or {}) for r in wants):
            out.setdefault(node, []).append(pod)
    return out


def _pods_to_evict(ctx: Any, pool: GpuPool, nodes: list[str]) -> list[dict]:
    """The pool's GPU pods on ``nodes`` not yet terminating (a terminating pod's grace period is running)."""
    return [pod for pods in gpu_pods_on(ctx, pool, set(nodes)).values() for pod in pods
            if not pod["metadata"].get("deletionTimestamp")]


def _evict(ctx: Any, pool: GpuPool, pods: list[dict]) -> None:
    """Ask the Eviction API to move ``pods`` off their cordoned nodes: their graceful shutdown finishes the
    requests in flight and their owner recreates them elsewhere, as ``kubectl drain`` and the
    cluster-autoscaler do. A PodDisruptionBudget that allows no disruption now answers 429: that pod is
    asked again on the next tick (the drain waits for it, up to its timeout)."""
    for pod in pods:
        meta = pod["metadata"]
        try:
            ctx.cluster.evict(meta["namespace"], meta["name"])
        except NotFoundError:
            continue
        except TemporaryError as exc:
            log.info("eviction of %s/%s refused for now: %s", meta["namespace"], meta["name"], exc.code,
                     extra={"pool": pool.name, "error_code": exc.code})


def _serving_pods(ctx: Any, serving: tuple[str, str]) -> list[dict]:
    namespace, deployment = serving
    return ctx.cluster.list("v1", "pods", namespace=namespace,
                            label_selector=f"app.kubernetes.io/instance={deployment}")


# -- carried state -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Carried:
    policy: PolicyState = field(default_factory=PolicyState)
    #: nodes cordoned for removal: {"nodes": [...], "since": epoch, "target": n}
    drain: dict[str, Any] | None = None
    #: the last operation asked of AKS: {"kind": ..., "at": epoch, "target": n}
    operation: dict[str, Any] | None = None
    #: set on a pool whose quota is exhausted: demand goes to this fallback pool
    fallback_to: str | None = None
    last: dict[str, Any] | None = None
    etag: str | None = None
    #: ticks capped at max_count (``bounds.Episode`` as JSON): a sustained episode proposes a higher max in git
    bounds: dict[str, Any] | None = None
    #: the pool's vLLM counters made monotone (``carry_counters``): each pod's last values and the totals
    counters: dict[str, Any] | None = None


def load_carried(storage: Any, env: str, pool: str) -> Carried:
    row = storage.get(STATE_TABLE, env, pool)
    if row is None:
        return Carried()

    def part(key: str) -> Any:
        raw = row.get(key)
        return json.loads(raw) if raw else None

    return Carried(PolicyState.from_json(part("policy")), part("drain"), part("operation"),
                   row.get("fallback_to") or None, part("last"), row.get("_etag"), part("bounds"), part("counters"))


def save_carried(storage: Any, env: str, pool: str, carried: Carried) -> None:
    entity = {"PartitionKey": env, "RowKey": pool,
              "policy": json.dumps(carried.policy.to_json(), sort_keys=True),
              "drain": json.dumps(carried.drain) if carried.drain else "",
              "operation": json.dumps(carried.operation) if carried.operation else "",
              "fallback_to": carried.fallback_to or "",
              "last": json.dumps(carried.last, default=str) if carried.last else "",
              "bounds": json.dumps(carried.bounds) if carried.bounds else "",
              "counters": json.dumps(carried.counters) if carried.counters else ""}
    if carried.etag:
        storage.replace(STATE_TABLE, entity, carried.etag)
    else:
        try:
            storage.insert(STATE_TABLE, entity)
        except ConflictError:
            row = storage.get(STATE_TABLE, env, pool)
            storage.replace(STATE_TABLE, entity, row["_etag"] if row else "*")


#: Attempts, a second apart, to take a pool's lease for an override while a tick holds it.
OVERRIDE_LEASE_ATTEMPTS = 15


def set_override(ctx: Any, pool: str, count: int, until: dt.datetime, by: str) -> Override:
    """Pin ``pool`` at ``count`` nodes until ``until`` (the policy honours it, within max_count)."""
    env = ctx.platform.name
    ctx.platform.gpu_pool(pool)  # KeyError for an unknown pool
    override = Override(count=count, expires_at=until.timestamp(), by=by)

    def write() -> None:
        with ctx.state.lease(_lease_name(env, pool), seconds=30):
            carried = load_carried(ctx.storage, env, pool)
            policy = PolicyState.from_json({**carried.policy.to_json(), "override": vars(override)})
            save_carried(ctx.storage, env, pool, _replace(carried, policy=policy))

    # A tick holds the pool's lease for its few seconds every 15 s: wait it out rather than fail the operator
    # (the write is idempotent: the same override again). Not for the lease's own duration (its Retry-After):
    # a tick releases it as soon as it is done.
    for attempt in range(OVERRIDE_LEASE_ATTEMPTS):
        try:
            write()
            break
        except TemporaryError as exc:
            if exc.code != "LeaseHeld" or attempt == OVERRIDE_LEASE_ATTEMPTS - 1:
                raise
            time.sleep(1.0)
    ctx.state.audit(actor=by or "platformctl", action="override", target=_lease_name(env, pool),
                    reason="ManualOverride", outcome="succeeded",
                    inputs={"count": count, "until": until.isoformat()})
    return override


def autoscaling_pause(storage: Any, env: str) -> dict[str, Any] | None:
    """The runtime kill switch, when set: {"by", "at", "reason"}; None when autoscaling may act."""
    row = storage.get(STATE_TABLE, env, PAUSE_ROW)
    if row is None or row.get("paused") is not True:
        return None
    return {"by": row.get("by", ""), "at": row.get("at", ""), "reason": row.get("reason", "")}


def set_autoscaling_paused(ctx: Any, *, paused: bool, by: str, reason: str, now: dt.datetime) -> bool:
    """Set or clear the environment's runtime kill switch (idempotent, audited); returns whether it changed."""
    env = ctx.platform.name
    row = ctx.storage.get(STATE_TABLE, env, PAUSE_ROW)
    was = bool(row and row.get("paused") is True)
    entity = {"PartitionKey": env, "RowKey": PAUSE_ROW, "paused": paused, "by": by, "at": now.isoformat(),
              "reason": reason}
    if was != paused:
        if row is None:
            try:
                ctx.storage.insert(STATE_TABLE, entity)
            except ConflictError:
                row = ctx.storage.get(STATE_TABLE, env, PAUSE_ROW)
        if row is not None:
            ctx.storage.replace(STATE_TABLE, entity, row["_etag"])
    ctx.state.audit(actor=by, action="pause" if paused else "resume", target=f"gpuscaling/{env}",
                    reason="AutoscalingPaused" if paused else "AutoscalingResumed",
                    outcome="succeeded" if was != paused else "skipped", inputs={"reason": reason},
                    message="" if was != paused else f"already {'paused' if paused else 'running'}")
    return was != paused


# -- one tick ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TickResult:
    pool: str
    target: int
    current: int
    reason: str
    message: str
    action: str  # none | scale | cordon | delete-machines | skipped | planned | failed
    inputs: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return vars(self)


def tick(ctx: Any, *, now: dt.datetime, switches: Switches, pools: list[str] | None = None,
         dry_run: bool = False) -> list[TickResult]:
    """One tick over the environment's GPU pools (or some of them). A failing pool does not stop the others."""
    results = []
    pause = autoscaling_pause(ctx.storage, ctx.platform.name) if switches.enabled else None
    if pause is not None:
        why = f"autoscaling paused by {pause['by']} at {pause['at']}"
        why += f": {pause['reason']}" if pause["reason"] else ""
        switches = dataclasses.replace(switches, enabled=False, disabled_because=why)
    for pool in ctx.platform.gpu_pools:
        if pools is not None and pool.name not in pools:
            continue
        try:
            results.append(tick_pool(ctx, pool, now=now, switches=switches, dry_run=dry_run))
        except PlatformError as exc:
            log.warning("gpu scaling of %s: %s: %s", pool.name, exc.code, exc,
                        extra={"pool": pool.name, "error_code": exc.code})
            results.append(TickResult(pool.name, 0, 0, exc.code, str(exc), "failed", {}))
    if switches.enabled:
        # After every pool has scaled, outside their leases; never raises (GitLab is not on the tick's path).
        bounds.propose_due(ctx, results, now=now, dry_run=dry_run or switches.dry_run)
    return results


def tick_pool(ctx: Any, pool: GpuPool, *, now: dt.datetime, switches: Switches,
              dry_run: bool = False) -> TickResult:
    env = ctx.platform.name
    dry = dry_run or switches.dry_run
    with ctx.state.lease(_lease_name(env, pool.name), seconds=60):
        carried = load_carried(ctx.storage, env, pool.name)
        t = now.timestamp()
        reading = read_pool(ctx, pool, t, serving=serving_of(ctx.platform, pool))
        measured, counters = carry_counters(reading.measured, carried.counters)
        reading = dataclasses.replace(reading, measured=measured)
        carried = _replace(carried, counters=counters)
        # A pool whose quota ran out sends its demand to the fallback: the fallback also sizes for it.
        extra = _fallback_demand(ctx, pool, env)
        obs = reading.observation()
        if obs is not None and extra and obs.queued is not None:
            obs = Observation(obs.observed_at, obs.queued + extra, obs.in_flight, obs.ready, obs.provisioning)
        decision = decide(parameters_for(pool), obs, carried.policy, t)
        inputs = {**reading.inputs(), "fallback_demand": extra, "figures": decision.figures,
                  "carried": {"drain": carried.drain, "operation": carried.operation}}
        if not switches.enabled:
            result = _result(pool, decision, "skipped", inputs, f"{switches.disabled_because}: nothing done")
            carried = _replace(carried, policy=decision.state)
        else:
            result, carried = act(ctx, pool, reading, decision, carried, switches, dry, inputs)
            if not dry and carried.drain is None:
                _raise_serving_replicas(ctx, pool, reading, result)
        carried = _replace(carried, last={"at": now.isoformat(), "target": result.target, "reason": result.reason,
                                          "message": result.message, "action": result.action},
                           bounds=bounds.track_decision(carried.bounds, decision, pool.max_count, t))
        inputs["bounds"] = {"declared": pool.max_count, "episode": carried.bounds,
                            "quota_exhausted": carried.fallback_to is not None}
        save_carried(ctx.storage, env, pool.name, carried)
    ctx.state.audit(actor=ACTOR, action="decide", target=_lease_name(env, pool.name), reason=result.reason,
                    outcome="planned" if dry else "succeeded", inputs=inputs,
                    message=f"{result.action}: {result.message}")
    log.info("gpu pool %s: %s -> %s (%s) %s", pool.name, result.current, result.target, result.reason,
             result.action, extra={"pool": pool.name, "reason": result.reason, "target": result.target})
    return result


def act(ctx: Any, pool: GpuPool, reading: PoolReading, decision: Decision, carried: Carried,
        switches: Switches, dry: bool, inputs: dict[str, Any]) -> tuple[TickResult, Carried]:
    """Carry out one decision; returns what was done and the state to carry."""
    env = ctx.platform.name
    carried = _replace(carried, policy=decision.state)
    np = reading.node_pool
    if np is None:
        return _result(pool, decision, "none", inputs), carried
    if np.provisioning_state not in SETTLED:
        return _result(pool, decision, "skipped", inputs,
                       f"an operation runs on the pool ({np.provisioning_state}): looking again next tick"), carried
    node_target = f"nodepool/{env}/{pool.name}"
    stalled = _stalled(pool, reading, carried)
    if stalled:
        log.error("%s: %s", ALERT_STALLED, stalled, extra={"error_code": ALERT_STALLED, "pool": pool.name,
                                                           "fallback_pool": pool.fallback_pool})
        carried = _replace(carried, fallback_to=pool.fallback_pool, operation=None)

    # A drain in progress comes first: finish it before anything else changes the pool.
    if carried.drain:
        return _continue_drain(ctx, pool, reading, decision, carried, switches, dry, inputs, node_target)

    if decision.target > decision.current:
        try:
            mutate(ctx, actor=ACTOR, action="scale", target=node_target, reason=decision.reason,
                   inputs={"count": decision.target, **inputs}, dry_run=dry, lease_seconds=30, policy=ONE_ATTEMPT,
                   change=lambda: ctx.node_pools.scale(pool.name, count=decision.target, expected_etag=np.etag,
                                                        wait=False))
        except TemporaryError as exc:
            return _result(pool, decision, "skipped", inputs, f"{exc.code}: looking again next tick"), carried
        except ConflictError:
            return (_result(pool, decision, "skipped", inputs,
                            "the pool changed since it was read (ETag): deciding again next tick"), carried)
        except PermanentError as exc:
            if exc.code == "QuotaExceeded":
                return _quota_exhausted(ctx, pool, decision, carried, inputs, exc)
            raise
        if dry:
            return _result(pool, decision, "planned", inputs), carried
        operation = {"kind": "scale", "at": reading.observed_at, "target": decision.target}
        return _result(pool, decision, "scale", inputs), _replace(carried, operation=operation, fallback_to=None)

    if decision.target < decision.current:
        return _start_drain(ctx, pool, reading, decision, carried, dry, inputs)
    return _result(pool, decision, "none", inputs), carried


def _raise_serving_replicas(ctx: Any, pool: GpuPool, reading: PoolReading, result: TickResult) -> None:
    """New nodes get pods: the serving Deployment has (at least) one pod per node the pool has or is getting
    that is not being drained. Only raised here; a scale-down lowers it when it cordons (``_start_drain``), so
    the ReplicaSet removes exactly the pods on the drained nodes. Pods asked for ahead of their node wait
    Pending and start when it is Ready (the cluster autoscaler counts the nodes already on their way)."""
    serving = serving_of(ctx.platform, pool)
    if serving is None or reading.nodes is None:
        return
    namespace, name = serving
    cordoned = sum(1 for n in reading.nodes if n.cordoned)
    want = max(len(reading.serving), reading.desired - cordoned, result.target if result.action == "scale" else 0)
    try:
        deployment = ctx.cluster.get("apps/v1", "deployments", name, namespace)
        if deployment is None:
            log.warning("serving deployment %s/%s not found: replicas left alone", namespace, name)
            return
        # The API server defaults an unset replicas to 1.
        current = (deployment.get("spec") or {}).get("replicas", 1)
        if current >= want:
            return
        env = ctx.platform.name
        mutate(ctx, actor=ACTOR, action="replicas", target=f"deployment/{env}/{namespace}/{name}",
               reason=result.reason, inputs={"replicas": want, "was": current, "pool": pool.name},
               lease_seconds=15,
               change=lambda: ctx.cluster.patch_merge("apps/v1", "deployments", name, {"spec": {"replicas": want}},
                                                      namespace))
    except PlatformError as exc:
        # The pool's change stands; the replicas are raised again next tick.
        log.warning("serving deployment %s/%s: replicas not raised to %d: %s", namespace, name, want, exc.code,
                    extra={"pool": pool.name, "error_code": exc.code})


def _start_drain(ctx: Any, pool: GpuPool, reading: PoolReading, decision: Decision, carried: Carried,
                 dry: bool, inputs: dict[str, Any]) -> tuple[TickResult, Carried]:
    env = ctx.platform.name
    excess = decision.current - decision.target
    # Nodes still on their way cannot be chosen; the least busy serving nodes, the newest among equals.
    victims = sorted(reading.serving, key=lambda n: (n.serving_pods, -_index(n.name)))[:excess]
    if not victims:
        return _result(pool, decision, "none", inputs, "nothing serving to remove yet"), carried
    names = [n.name for n in victims]
    if dry:
        mutate(ctx, actor=ACTOR, action="cordon", target=f"nodepool/{env}/{pool.name}", reason=decision.reason,
               inputs={"nodes": names, **inputs}, dry_run=True, change=lambda: None)
        return _result(pool, decision, "planned", inputs, f"would cordon {', '.join(names)}"), carried

    def cordon() -> None:
        for name in names:
            ctx.cluster.patch_merge("v1", "nodes", name, {"spec": {"unschedulable": True}})
        serving = serving_of(ctx.platform, pool)
        if serving is not None:
            namespace, deployment = serving
            # The ReplicaSet removes the pods with the lowest deletion cost first: exactly the ones on
            # the cordoned nodes; their graceful shutdown finishes the requests in flight.
            for pod in _serving_pods(ctx, serving):
                if (pod.get("spec") or {}).get("nodeName") in names:
                    ctx.cluster.patch_merge("v1", "pods", pod["metadata"]["name"],
                                            {"metadata": {"annotations": {DELETION_COST: "-1000"}}}, namespace)
            replicas = max(0, len(reading.serving) - len(names))
            try:
                ctx.cluster.patch_merge("apps/v1", "deployments", deployment, {"spec": {"replicas": replicas}},
                                        namespace)
            except NotFoundError:
                log.warning("serving deployment %s/%s not found: replicas left alone", namespace, deployment)
        else:
            _evict(ctx, pool, _pods_to_evict(ctx, pool, names))

    mutate(ctx, actor=ACTOR, action="cordon", target=f"nodepool/{env}/{pool.name}", reason=decision.reason,
           inputs={"nodes": names, **inputs}, lease_seconds=30, change=cordon)
    drain = {"nodes": names, "since": reading.observed_at, "target": decision.target}
    return (_result(pool, decision, "cordon", inputs, f"cordoned {', '.join(names)}; removing them once drained"),
            _replace(carried, drain=drain))


def _continue_drain(ctx: Any, pool: GpuPool, reading: PoolReading, decision: Decision, carried: Carried,
                    switches: Switches, dry: bool, inputs: dict[str, Any], node_target: str
                    ) -> tuple[TickResult, Carried]:
    drain = carried.drain or {}
    names = list(drain.get("nodes") or [])
    present = {n.name: n for n in reading.nodes or ()}
    remaining = [n for n in names if n in present]
    if not remaining:
        return _result(pool, decision, "none", inputs, "drained nodes are gone"), _replace(carried, drain=None)
    if decision.target > decision.current:
        # Demand came back before the machines went: serve again instead of deleting and re-adding.
        for name in remaining:
            ctx.cluster.patch_merge("v1", "nodes", name, {"spec": {"unschedulable": None}})
        return (_result(pool, decision, "uncordon", inputs, f"demand returned: uncordoned {', '.join(remaining)}"),
                _replace(carried, drain=None))
    busy = [n for n in remaining if present[n].serving_pods > 0]
    waited = reading.observed_at - float(drain.get("since") or reading.observed_at)
    if busy and waited < switches.drain_timeout_seconds and not dry and serving_of(ctx.platform, pool) is None:
        pods = _pods_to_evict(ctx, pool, busy)  # again: a PodDisruptionBudget may have refused the last ask
        if pods:
            mutate(ctx, actor=ACTOR, action="evict", target=f"nodepool/{ctx.platform.name}/{pool.name}",
                   reason=decision.reason, inputs={"pods": [p["metadata"]["name"] for p in pods], **inputs},
                   lease_seconds=30, change=lambda: _evict(ctx, pool, pods))
    if busy and waited < switches.drain_timeout_seconds:
        return (_result(pool, decision, "draining", inputs,
                        f"waiting for {', '.join(busy)} to finish their requests ({waited:.0f}s of "
                        f"{switches.drain_timeout_seconds:.0f}s)"), carried)
    np = reading.node_pool
    new_count = max(0, np.count - len(remaining))

    def remove() -> None:
        if np.autoscaling and (np.min_count or 0) > new_count:
            ctx.node_pools.scale(pool.name, min_count=new_count, expected_etag=np.etag, wait=True)
        ctx.node_pools.delete_machines(pool.name, remaining, wait=False)

    try:
        mutate(ctx, actor=ACTOR, action="delete-machines", target=node_target, reason=decision.reason,
               inputs={"machines": remaining, "timed_out": bool(busy), **inputs}, dry_run=dry, lease_seconds=60,
               policy=ONE_ATTEMPT, change=remove)
    except TemporaryError as exc:
        return _result(pool, decision, "skipped", inputs, f"{exc.code}: looking again next tick"), carried
    if dry:
        return _result(pool, decision, "planned", inputs, f"would delete {', '.join(remaining)}"), carried
    operation = {"kind": "delete-machines", "at": reading.observed_at, "machines": remaining}
    return (_result(pool, decision, "delete-machines", inputs, f"deleting {', '.join(remaining)}"
                    + (" (drain timed out)" if busy else "")),
            _replace(carried, drain=None, operation=operation))


def _quota_exhausted(ctx: Any, pool: GpuPool, decision: Decision, carried: Carried, inputs: dict[str, Any],
                     exc: PermanentError) -> tuple[TickResult, Carried]:
    fallback = pool.fallback_pool
    log.error("%s: %s", ALERT_QUOTA, exc, extra={"error_code": ALERT_QUOTA, "pool": pool.name,
                                                 "fallback_pool": fallback, "remediation": exc.remediation})
    message = f"{ALERT_QUOTA}: {exc.remediation}" + (
        f"; demand moves to {fallback}" if fallback else "; no fallback pool declared")
    return (TickResult(pool.name, decision.current, decision.current, ALERT_QUOTA, message, "failed", inputs),
            _replace(carried, fallback_to=fallback))


def _stalled(pool: GpuPool, reading: PoolReading, carried: Carried) -> str | None:
    """Why the last scale-up looks stuck (None when it does not)."""
    op, np = carried.operation, reading.node_pool
    if not op or op.get("kind") != "scale" or np is None or not np.autoscaling:
        return None
    waited = reading.observed_at - float(op.get("at") or reading.observed_at)
    limit = 2 * parameters_for(pool).time_to_ready_seconds
    if waited > limit and np.count < (np.min_count or 0):
        return (f"pool {pool.name} asked for {np.min_count} node(s) {waited:.0f}s ago and has {np.count}: the "
                "autoscaler is not adding nodes (check quota and the cluster autoscaler's events)"
                + (f"; demand moves to {pool.fallback_pool}" if pool.fallback_pool else ""))
    return None


def _fallback_demand(ctx: Any, pool: GpuPool, env: str) -> int:
    """Messages waiting in the queues of pools whose quota ran out and which fall back to this one."""
    extra = 0
    for other in ctx.platform.gpu_pools:
        if other.fallback_pool != pool.name:
            continue
        try:
            row = ctx.storage.get(STATE_TABLE, env, other.name)
            if row and row.get("fallback_to") == pool.name:
                extra += ctx.storage.queue_depth(other.inference_queue)
        except PlatformError:
            continue
    return extra


def serving_of(platform: PlatformEnvironment, pool: GpuPool) -> tuple[str, str] | None:
    """(namespace, name) of the pool's serving Deployment (``gpu_pools[].serving_deployment``), if it names one."""
    value = pool.serving_deployment
    if not value or "/" not in value:
        return None
    namespace, name = value.split("/", 1)
    return namespace, name


def _index(name: str) -> int:
    digits = "".join(ch for ch in name[-6:] if ch.isdigit())
    return int(digits) if digits else 0


def _result(pool: GpuPool, decision: Decision, action: str, inputs: dict[str, Any], message: str = "") -> TickResult:
    return TickResult(pool.name, decision.target, decision.current, decision.reason,
                      message or decision.message, action, inputs)


def _replace(carried: Carried, **changes: Any) -> Carried:
    from dataclasses import replace

    return replace(carried, **changes)


def _lease_name(env: str, pool: str) -> str:
    return f"gpuscaling/{env}/{pool}"


def seconds_until(expiry: float, now: dt.datetime) -> int:
    return max(0, math.ceil(expiry - now.timestamp()))
