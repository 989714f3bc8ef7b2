"""The Kubernetes emulator's Deployment controller, scheduler and pod garbage collector: the small part of
kube-controller-manager and kube-scheduler the GPU scaling tick relies on. It runs inside the emulator, under
its lock, when a write changes something it follows (a Deployment, a Node, a Pod deleted): no background
thread, so what a test reads right after its write is already the controlled state.

What it does:

- **Deployment -> ReplicaSet -> Pods.** For every Deployment, one ReplicaSet ``<deployment>-<pod-template-hash>``
  (owned by the Deployment, ``controller: true``) and ``spec.replicas`` Pods ``<replicaset>-<suffix>`` (owned by
  the ReplicaSet) with the template's labels and annotations plus ``pod-template-hash``
  (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#pod-template-hash-label). An unset
  ``spec.replicas`` counts as 1, the API server's default. A changed template gets a new ReplicaSet and the old
  one's pods go at once: rollouts are not stepped (no ``maxSurge``/``maxUnavailable``).
- **Scale-down victims** as the ReplicaSet controller ranks them
  (https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#scaling-a-replicaset and
  ``ActivePodsWithRanks`` in pkg/controller/controller_utils.go): unscheduled before scheduled, Pending before
  Running, not ready before ready, then the lower ``controller.kubernetes.io/pod-deletion-cost``
  (https://kubernetes.io/docs/reference/labels-annotations-taints/#pod-deletion-cost), then pods on nodes with
  more of the ReplicaSet's pods, then the newer. Deleted pods disappear at once: graceful termination (the
  330 s vLLM gives its requests) is not emulated.
- **Scheduling** (kube-scheduler's filters, simplified): a Pod goes to a node that is Ready, schedulable
  (``spec.unschedulable`` not set: cordoned nodes get no new pods), matches the template's ``nodeSelector``,
  whose ``NoSchedule``/``NoExecute`` taints the pod tolerates
  (https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/), and has room for the pod's
  **extended resources** (``nvidia.com/gpu``, ``amd.com/gpu``: allocatable less what pods bound there request;
  the vLLM pod requests its node's GPU, so one serving pod per H100 node). CPU and memory are not counted (the
  emulated nodes' capacities are placeholders), nor affinity, spread constraints or priorities; among fitting
  nodes the one with the fewest pods of the ReplicaSet wins, then the name. A pod that fits nowhere stays
  ``Pending`` (``PodScheduled=False``, reason ``Unschedulable``, the scheduler's "0/N nodes are available: ..."
  message) and is scheduled when a node becomes Ready or schedulable. A scheduled pod is ``Running`` and Ready at
  once with a pod IP (image pull and model load are the node's time to ready in the ARM emulator).
- **Pod garbage collection**: pods bound to a node that no longer exists (its machine deleted) are deleted
  (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-garbage-collection) and the
  ReplicaSet replaces them (Pending until a node fits). Deleting a Deployment deletes its ReplicaSets and pods
  (background cascading deletion).

What it does not do: adopt pods it did not create (a pod written directly, as some tests do, is left alone but
its requests count on its node), StatefulSets, DaemonSets, Jobs, preemption, readiness probes,
``minReadySeconds``. (Evictions and the PodDisruptionBudgets that gate them are the emulator's ``eviction``
subresource, in kubernetes.py: an evicted pod comes here as deleted and is replaced.)

**vLLM metrics of the serving pods.** A Running pod of a pool's serving Deployment (``platform.yaml``
``gpu_pools[].serving_deployment``) answers ``/metrics`` on its container port named ``http`` through the pod
proxy with vLLM's Prometheus text (``vllm:num_requests_running``, ``vllm:num_requests_waiting``,
``vllm:request_success_total{finished_reason="stop"}``, ``vllm:e2e_request_latency_seconds_sum``). Its figures,
in this order: what the sandbox set for that pod (``serve_pod_figures``); else its share of the Deployment's
**serving load** (``set_serving_load``: a number, or a callable the sandbox wires to the pool's queue depth): the
load is split over the Running pods in name order, each taking up to its slots (``requests_per_gpu`` x the GPUs
it requests), and nothing completes (the sandbox has no model: counters stay 0); else all zeros. Text set for a
pod with ``serve_pod_metrics`` wins over all of these.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

from shared.local.sandbox.base import iso, utc_now

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
TEMPLATE_HASH = "pod-template-hash"
#: The characters Kubernetes uses in generated names and hashes (apimachinery's rand.SafeEncodeString: no vowels,
#: no look-alikes).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
#: Extended resources the scheduler counts (the GPUs; CPU and memory are not modelled).
COUNTED_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")

Load = int | Callable[[], int | None]


def safe_encode(digest: bytes, length: int) -> str:
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in digest[:length])


def template_hash(template: dict[str, Any]) -> str:
    """A stable hash of the pod template (Kubernetes: FNV-32a of the template, safe-encoded)."""
    return safe_encode(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest(), 10)


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """A toleration matches a taint with the same effect (or none given) and key, by ``Exists`` or ``Equal``;
    an empty key with ``Exists`` tolerates everything."""
    for t in tolerations or []:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        operator = t.get("operator") or "Equal"
        if not t.get("key"):
            if operator == "Exists":
                return True
            continue
        if t.get("key") != taint.get("key"):
            continue
        if operator == "Exists" or str(t.get("value") or "") == str(taint.get("value") or ""):
            return True
    return False


def requests_of(pod: dict[str, Any]) -> dict[str, int]:
    """The counted resources a pod requests (a request defaults to its limit, as the API server does)."""
    total: dict[str, int] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        asked = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name in COUNTED_RESOURCES:
            if name in asked:
                total[name] = total.get(name, 0) + int(str(asked[name]))
    return total


def is_ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def vllm_metrics_text(running: int, waiting: int = 0, success: int = 0, latency_seconds: float = 0.0,
                      model: str = "model") -> str:
    """The samples of a vLLM V1 server's /metrics the GPU scaling tick reads, labelled as vLLM labels them."""
    labels = f'engine="0",model_name="{model}"'
    return (f"# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            f"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{{labels}}} {float(running)}\n"
            f"# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
            f"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{{{labels}}} {float(waiting)}\n"
            f"# HELP vllm:request_success_total Count of successfully processed requests.\n"
            f"# TYPE vllm:request_success_total counter\n"
            f'vllm:request_success_total{{{labels},finished_reason="stop"}} {float(success)}\n'
            f"# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.\n"
            f"# TYPE vllm:e2e_request_latency_seconds histogram\n"
            f"vllm:e2e_request_latency_seconds_sum{{{labels}}} {float(latency_seconds)}\n"
            f"vllm:e2e_request_latency_seconds_count{{{labels}}} {float(success)}\n")


class DeploymentController:
    """Runs on the emulator's object store (``emulator.objects``), always under ``emulator.lock``."""

    PODS, NODES, RS, DEPLOYMENTS = ("v1", "pods"), ("v1", "nodes"), ("apps/v1", "replicasets"), \
        ("apps/v1", "deployments")

    def __init__(self, emulator: Any) -> None:
        self.k = emulator
        #: creation order of the pods this controller made: (namespace, name) -> sequence number
        self._born: dict[tuple[str, str], int] = {}
        self._seq = 0
        #: (namespace, deployment) -> the load its Running pods serve (see the module docstring)
        self.serving_load: dict[tuple[str, str], Load] = {}
        #: (namespace, pod) -> figures set by the sandbox: running, waiting, success, latency_seconds
        self.pod_figures: dict[tuple[str, str], dict[str, float]] = {}

    def reset(self) -> None:
        self._born.clear()
        self._seq = 0
        self.serving_load.clear()
        self.pod_figures.clear()

    # -- store helpers ------------------------------------------------------------------------

    def _items(self, key: tuple[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
        return self.k.objects.setdefault(key, {})

    @staticmethod
    def _controller_uid(obj: dict[str, Any]) -> str | None:
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("controller"):
                return ref.get("uid")
        return None

    def _owned(self, key: tuple[str, str], namespace: str, uid: str) -> list[dict[str, Any]]:
        return [o for (ns, _), o in self._items(key).items() if ns == namespace and self._controller_uid(o) == uid]

    def _delete(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        ns, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        if self._items(key).pop((ns, name), None) is not None:
            self.k._rv += 1
            self._born.pop((ns, name), None)
            self.pod_figures.pop((ns, name), None)

    # -- events -------------------------------------------------------------------------------

    def deployment_written(self, deployment: dict[str, Any]) -> None:
        self._sync(deployment)
        self.schedule_pending()

    def deployment_deleted(self, deployment: dict[str, Any]) -> None:
        ns, uid = deployment["metadata"].get("namespace", ""), deployment["metadata"].get("uid")
        for rs in self._owned(self.RS, ns, uid):
            for pod in self._owned(self.PODS, ns, rs["metadata"]["uid"]):
                self._delete(self.PODS, pod)
            self._delete(self.RS, rs)

    def pod_deleted(self, pod: dict[str, Any]) -> None:
        """A ReplicaSet's pod deleted by someone else: the ReplicaSet replaces it."""
        self._born.pop((pod["metadata"].get("namespace", ""), pod["metadata"]["name"]), None)
        self._resync_owner_of(pod)
        self.schedule_pending()

    def nodes_gone(self, names: set[str]) -> None:
        """The pod garbage collector: pods bound to nodes that no longer exist go; their ReplicaSets replace them."""
        lost = [p for p in self._items(self.PODS).values() if (p.get("spec") or {}).get("nodeName") in names]
        for pod in lost:
            self._delete(self.PODS, pod)
        for pod in lost:
            self._resync_owner_of(pod)
        self.schedule_pending()

    def _resync_owner_of(self, pod: dict[str, Any]) -> None:
        rs_uid = self._controller_uid(pod)
        if rs_uid is None:
            return
        ns = pod["metadata"].get("namespace", "")
        rs = next((r for (n, _), r in self._items(self.RS).items() if n == ns and r["metadata"]["uid"] == rs_uid),
                  None)
        dep_uid = self._controller_uid(rs) if rs is not None else None
        deployment = next((d for (n, _), d in self._items(self.DEPLOYMENTS).items()
                           if n == ns and d["metadata"].get("uid") == dep_uid), None)
        if deployment is not None:
            self._sync(deployment)

    # -- the Deployment and ReplicaSet controllers ---------------------------------------------

    def _sync(self, deployment: dict[str, Any]) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        ns, uid = meta.get("namespace", ""), meta["uid"]
        template = copy.deepcopy(spec.get("template") or {})
        wanted = spec.get("replicas", 1)
        wanted = wanted if isinstance(wanted, int) and wanted >= 0 else 1
        pod_hash = template_hash(template)
        rs_name = f"{meta['name']}-{pod_hash}"
        for old in self._owned(self.RS, ns, uid):
            if old["metadata"]["name"] != rs_name:  # a changed template: the old ReplicaSet's pods go at once
                for pod in self._owned(self.PODS, ns, old["metadata"]["uid"]):
                    self._delete(self.PODS, pod)
                self._delete(self.RS, old)
        rs = self._items(self.RS).get((ns, rs_name))
        if rs is None:
            labels = {**((template.get("metadata") or {}).get("labels") or {}), TEMPLATE_HASH: pod_hash}
            template.setdefault("metadata", {})["labels"] = labels
            selector = copy.deepcopy(spec.get("selector") or {"matchLabels": {}})
            selector.setdefault("matchLabels", {})[TEMPLATE_HASH] = pod_hash
            rs = self.k._store(*self.RS, {
                "metadata": {"name": rs_name, "namespace": ns, "labels": dict(labels),
                             "annotations": {"deployment.kubernetes.io/revision": "1"},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                                  "uid": uid, "controller": True, "blockOwnerDeletion": True}]},
                "spec": {"replicas": wanted, "selector": selector, "template": template}})
        if rs["spec"].get("replicas") != wanted:
            rs["spec"]["replicas"] = wanted
            rs["metadata"]["generation"] = rs["metadata"].get("generation", 1) + 1
            self.k._rv += 1
            rs["metadata"]["resourceVersion"] = str(self.k._rv)
        rs["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = str(wanted)
        pods = self._owned(self.PODS, ns, rs["metadata"]["uid"])
        for _ in range(wanted - len(pods)):
            pods.append(self._new_pod(rs))
        if len(pods) > wanted:
            for pod in sorted(pods, key=lambda p: self._rank(p, pods))[:len(pods) - wanted]:
                self._delete(self.PODS, pod)
        self._status(deployment, rs)

    def _rank(self, pod: dict[str, Any], siblings: list[dict[str, Any]]) -> tuple:
        """Sort key: the first pods are the first the ReplicaSet deletes (see the module docstring)."""
        node = (pod.get("spec") or {}).get("nodeName")
        phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get((pod.get("status") or {}).get("phase"), 0)
        try:
            cost = int((pod["metadata"].get("annotations") or {}).get(DELETION_COST, 0))
        except ValueError:
            cost = 0  # the API server refuses a non-integer cost; an unreadable one counts as the default
        on_node = sum(1 for p in siblings if node and (p.get("spec") or {}).get("nodeName") == node)
        born = self._born.get((pod["metadata"].get("namespace", ""), pod["metadata"]["name"]), 0)
        return (bool(node), phase, is_ready(pod), cost, -on_node, -born)

    def _new_pod(self, rs: dict[str, Any]) -> dict[str, Any]:
        template = rs["spec"]["template"]
        ns, rs_name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        while True:
            self._seq += 1
            suffix = safe_encode(hashlib.sha256(f"{ns}/{rs_name}/{self._seq}".encode()).digest(), 5)
            name = f"{rs_name}-{suffix}"
            if (ns, name) not in self._items(self.PODS):
                break
        spec = copy.deepcopy(template.get("spec") or {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        tmeta = template.get("metadata") or {}
        pod = {"metadata": {"name": name, "namespace": ns, "labels": dict(tmeta.get("labels") or {}),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                                                 "uid": rs["metadata"]["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]},
               "spec": spec,
               "status": {"phase": "Pending", "qosClass": "Burstable"}}
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmeta["annotations"])
        self._born[(ns, name)] = self._seq
        return self.k._store(*self.PODS, pod)

    def _status(self, deployment: dict[str, Any], rs: dict[str, Any]) -> None:
        pods = self._owned(self.PODS, rs["metadata"]["namespace"], rs["metadata"]["uid"])
        ready = sum(1 for p in pods if is_ready(p))
        wanted = rs["spec"]["replicas"]
        rs["status"] = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                        "availableReplicas": ready, "observedGeneration": rs["metadata"].get("generation", 1)}
        status = deployment.setdefault("status", {})
        status.update(observedGeneration=deployment["metadata"].get("generation", 1), replicas=len(pods),
                      updatedReplicas=len(pods), readyReplicas=ready, availableReplicas=ready)
        if len(pods) > ready:
            status["unavailableReplicas"] = len(pods) - ready
        else:
            status.pop("unavailableReplicas", None)
        status["conditions"] = [{"type": "Available", "status": "True" if ready >= wanted else "False",
                                 "reason": "MinimumReplicasAvailable" if ready >= wanted
                                 else "MinimumReplicasUnavailable"}]

    # -- the scheduler ------------------------------------------------------------------------

    def schedule_pending(self) -> None:
        """Bind every Pending pod this controller made to a node that fits (or say why none does)."""
        pending = sorted((p for p in self._items(self.PODS).values()
                          if self._controller_uid(p) is not None and not (p.get("spec") or {}).get("nodeName")),
                         key=lambda p: self._born.get((p["metadata"]["namespace"], p["metadata"]["name"]), 0))
        if not pending:
            return
        nodes = sorted(self._items(self.NODES).values(), key=lambda n: n["metadata"]["name"])
        touched: set[str] = set()
        for pod in pending:
            node, why = self._fit(pod, nodes)
            if node is None:
                self._unschedulable(pod, why, len(nodes))
            else:
                self._bind(pod, node)
            touched.add(self._controller_uid(pod) or "")
        for rs in list(self._items(self.RS).values()):
            if rs["metadata"]["uid"] in touched:
                dep_uid = self._controller_uid(rs)
                deployment = next((d for d in self._items(self.DEPLOYMENTS).values()
                                   if d["metadata"].get("uid") == dep_uid), None)
                if deployment is not None:
                    self._status(deployment, rs)

    def _fit(self, pod: dict[str, Any], nodes: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, int]]:
        spec = pod.get("spec") or {}
        selector = spec.get("nodeSelector") or {}
        asked = requests_of(pod)
        why: dict[str, int] = {}
        fitting = []
        for node in nodes:
            labels = node["metadata"].get("labels") or {}
            untolerated = [t for t in (node.get("spec") or {}).get("taints") or []
                           if t.get("effect") in ("NoSchedule", "NoExecute")
                           and not tolerates(spec.get("tolerations") or [], t)]
            # The default profile's filter order; a node counts under the first filter it fails.
            if (node.get("spec") or {}).get("unschedulable"):
                reason = "node(s) were unschedulable"
            elif not is_ready(node):  # the node lifecycle controller taints it node.kubernetes.io/not-ready
                reason = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
            elif untolerated:
                t = untolerated[0]
                reason = f"node(s) had untolerated taint {{{t.get('key')}: {t.get('value', '')}}}"
            elif any(labels.get(k) != v for k, v in selector.items()):
                reason = "node(s) didn't match Pod's node affinity/selector"
            else:
                short = [r for r, n in asked.items() if self._free(node, r) < n]
                if short:
                    reason = f"Insufficient {short[0]}"
                else:
                    fitting.append(node)
                    continue
            why[reason] = why.get(reason, 0) + 1
        if not fitting:
            return None, why
        rs_uid = self._controller_uid(pod)

        def siblings(node: dict[str, Any]) -> int:
            return sum(1 for p in self._items(self.PODS).values()
                       if (p.get("spec") or {}).get("nodeName") == node["metadata"]["name"]
                       and self._controller_uid(p) == rs_uid)

        return min(fitting, key=lambda n: (siblings(n), n["metadata"]["name"])), why

    def _free(self, node: dict[str, Any], resource: str) -> int:
        allocatable = int(str(((node.get("status") or {}).get("allocatable") or {}).get(resource, 0)))
        used = sum(requests_of(p).get(resource, 0) for p in self._items(self.PODS).values()
                   if (p.get("spec") or {}).get("nodeName") == node["metadata"]["name"]
                   and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
        return allocatable - used

    def _unschedulable(self, pod: dict[str, Any], why: dict[str, int], total: int) -> None:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(why.items()))
        message = f"0/{total} nodes are available" + (f": {reasons}." if reasons else ".")
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
        status = pod.setdefault("status", {})
        before = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or []]
        if before != [condition]:
            condition["lastTransitionTime"] = iso(utc_now()).split(".")[0] + "Z"
            status["conditions"] = [condition]
            self.k._rv += 1
            pod["metadata"]["resourceVersion"] = str(self.k._rv)

    def _bind(self, pod: dict[str, Any], node: dict[str, Any]) -> None:
        now = iso(utc_now()).split(".")[0] + "Z"
        pod["spec"]["nodeName"] = node["metadata"]["name"]
        self.k._pod_ips += 1
        n = self.k._pod_ips
        host_ip = next((a.get("address") for a in (node.get("status") or {}).get("addresses") or []
                        if a.get("type") == "InternalIP"), None)
        pod["status"] = {
            "phase": "Running", "podIP": f"10.244.{(n >> 8) & 255}.{n & 255}",
            "podIPs": [{"ip": f"10.244.{(n >> 8) & 255}.{n & 255}"}], "startTime": now, "qosClass": "Burstable",
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
            "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "ready": True, "started": True,
                                   "imageID": f"{c.get('image')}@sha256:"
                                              + hashlib.sha256(str(c.get("image")).encode()).hexdigest(),
                                   "containerID": "containerd://" + hashlib.sha256(
                                       f"{pod['metadata']['name']}/{c.get('name')}".encode()).hexdigest(),
                                   "restartCount": 0, "state": {"running": {"startedAt": now}}}
                                  for c in pod["spec"].get("containers") or []]}
        if host_ip:
            pod["status"]["hostIP"] = host_ip
        self.k._rv += 1
        pod["metadata"]["resourceVersion"] = str(self.k._rv)

    # -- what serving pods answer on /metrics ---------------------------------------------------

    def serving_text(self, namespace: str, pod_name: str, port: int) -> str | None:
        """The vLLM text an emulated serving pod answers on ``port``; None when it is not one (or not that port)."""
        pod = self._items(self.PODS).get((namespace, pod_name))
        if pod is None or self._controller_uid(pod) is None:
            return None
        served = self._serving_deployment(pod)
        if served is None:
            return None
        deployment, pool = served
        http = next((p.get("containerPort") for c in pod["spec"].get("containers") or []
                     for p in c.get("ports") or [] if p.get("name") == "http"), None)
        if http != port:
            return None
        model = next((a.split("=", 1)[1] for c in pod["spec"].get("containers") or [] for a in c.get("args") or []
                      if isinstance(a, str) and a.startswith("--served-model-name=")), pod_name)
        figures = self.pod_figures.get((namespace, pod_name))
        if figures is None:
            figures = {"running": self._share(namespace, deployment, pod_name, pool)}
        return vllm_metrics_text(int(figures.get("running", 0)), int(figures.get("waiting", 0)),
                                 int(figures.get("success", 0)), float(figures.get("latency_seconds", 0.0)), model)

    def _serving_deployment(self, pod: dict[str, Any]) -> tuple[str, Any] | None:
        """(deployment name, its GPU pool) when the pod belongs to a pool's serving Deployment."""
        ns = pod["metadata"]["namespace"]
        rs_uid = self._controller_uid(pod)
        rs = next((r for (n, _), r in self._items(self.RS).items() if n == ns and r["metadata"]["uid"] == rs_uid),
                  None)
        if rs is None:
            return None
        owner = next((ref.get("name") for ref in rs["metadata"].get("ownerReferences") or [] if ref.get("controller")),
                     None)
        for pool in self.k.platform.gpu_pools:
            if pool.serving_deployment == f"{ns}/{owner}":
                return owner, pool
        return None

    def _share(self, namespace: str, deployment: str, pod_name: str, pool: Any) -> int:
        load = self.serving_load.get((namespace, deployment), 0)
        total = load() if callable(load) else load
        remaining = max(0, int(total or 0))
        running = sorted(
            (p for p in self._items(self.PODS).values()
             if p["metadata"]["namespace"] == namespace and (p.get("status") or {}).get("phase") == "Running"
             and (self._serving_deployment(p) or ("",))[0] == deployment),
            key=lambda p: p["metadata"]["name"])
        for pod in running:
            gpus = sum(requests_of(pod).values()) or 1
            take = min(remaining, pool.requests_per_gpu * gpus)
            if pod["metadata"]["name"] == pod_name:
                return take
            remaining -= take
        return 0
