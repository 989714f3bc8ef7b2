"""Kubernetes API server emulator: enough of it for the automations, seeded like a dev AKS cluster.

Served: discovery (``/version``, ``/api``, ``/apis``), and every registered resource generically,
core (``/api/v1/...``) and grouped (``/apis/{group}/{version}/...``), namespaced or cluster-scoped:
GET, LIST (``labelSelector``, ``fieldSelector`` on the fields each kind supports, ``limit``/``continue``),
POST, PUT, PATCH (JSON merge patch and JSON patch everywhere; strategic merge on built-in kinds only,
applied as a merge patch: custom resources answer 415 as the real server does), DELETE, and the
``status`` subresource: where a kind has one, writes to the main resource keep ``status`` and writes to
``/status`` change nothing else. ``metadata.resourceVersion`` is one cluster-wide counter;
``metadata.generation`` moves only when ``spec`` changes, as the real API server does.

The pod proxy (``GET /api/v1/namespaces/{ns}/pods/{name}[:{port}]/proxy/{path}``) answers for the pods it
holds as kube-apiserver does (pkg/registry/core/pod: ResourceLocation): 404 for an unknown pod, 400 "address
not allowed" for a pod without ``status.podIP``, 503 ServiceUnavailable "error trying to reach service: dial tcp
...: connect: connection refused" when nothing listens there (the pod is not Running, or serves nothing on that
port); otherwise what the pod's server answers. A pod's server is set by tests (``serve_pod_metrics``) or the
sandbox (``POST /_sandbox/pod-metrics``): Prometheus text on ``/metrics``, as vLLM serves it; a Running pod of a
pool's serving Deployment made by the emulated controller serves vLLM's text by default (deployments.py).

Controllers run where a write changes what they follow (no background thread): Deployments get a ReplicaSet and
``spec.replicas`` pods, scheduled onto Ready, schedulable nodes that match their ``nodeSelector``, tolerate their
taints and have their GPUs free, else Pending until such a node comes; scale-down removes the pods the ReplicaSet
controller ranks first (``controller.kubernetes.io/pod-deletion-cost``); pods of deleted nodes go and are
replaced. A Running pod of a pool's serving Deployment answers vLLM's ``/metrics`` through the pod proxy by
default. What is and is not emulated: ``shared/local/sandbox/deployments.py``.

Not served: ``watch``. Discovery does not advertise the verb, and ``?watch=true`` answers 405, so a
client that needs watch learns it here rather than against a real cluster.

Flux is simulated: setting ``reconcile.fluxcd.io/requestedAt`` on a Flux object, or changing its
spec, is "handled" after ``reconcile_delay`` seconds (0 = at once): ``status.lastHandledReconcileAt``
takes the annotation's value and ``observedGeneration`` catches up with ``generation``. A Kustomization's
reconcile also applies what it declares again, as the kustomize-controller's server-side apply does: every
object of a kind this emulator serves is created if absent, and otherwise gets the declared fields back (a
merge of the declared body over the live one: fields the manifest does not set, such as replicas a scaler
owns, stay); an object annotated ``kustomize.toolkit.fluxcd.io/ssa: IfNotPresent`` is only ever created,
never updated (https://fluxcd.io/flux/components/kustomize/kustomizations/#controlling-the-apply-behavior-of-resources).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from shared.local.sandbox.base import Emulator, HttpError, Request, Response, bearer_token, iso, utc_now
from shared.local.sandbox.declared import REPO_ROOT, flux_objects
from shared.local.sandbox.deployments import DeploymentController, Load
from shared.platform import PlatformEnvironment

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
#: Flux's per-object apply policy: create the object if it is absent, never update it.
IF_NOT_PRESENT = ("kustomize.toolkit.fluxcd.io/ssa", "IfNotPresent")
FLUX_GROUPS = ("source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io")

# (group/version or "v1", plural) -> (kind, namespaced)
BUILTIN_RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "nodes"): ("Node", False),
    ("v1", "namespaces"): ("Namespace", False),
    ("v1", "pods"): ("Pod", True),
    ("v1", "configmaps"): ("ConfigMap", True),
    ("v1", "secrets"): ("Secret", True),
    ("v1", "services"): ("Service", True),
    ("v1", "events"): ("Event", True),
    ("apps/v1", "deployments"): ("Deployment", True),
    ("apps/v1", "statefulsets"): ("StatefulSet", True),
    ("apps/v1", "daemonsets"): ("DaemonSet", True),
    ("source.toolkit.fluxcd.io/v1", "gitrepositories"): ("GitRepository", True),
    ("source.toolkit.fluxcd.io/v1", "helmrepositories"): ("HelmRepository", True),
    ("source.toolkit.fluxcd.io/v1", "helmcharts"): ("HelmChart", True),
    ("kustomize.toolkit.fluxcd.io/v1", "kustomizations"): ("Kustomization", True),
    ("helm.toolkit.fluxcd.io/v2", "helmreleases"): ("HelmRelease", True),
    # Envoy Gateway's Backends: the inference gateway's, one per model owned by model_routing (README "AI stack").
    ("gateway.envoyproxy.io/v1alpha1", "backends"): ("Backend", True),
    # Read by the compliance scan (shared/services/compliance): workloads, network and routes as the real API
    # serves them (Gateway API and Kyverno's reports are CRDs: custom resources, no strategic merge).
    ("apps/v1", "replicasets"): ("ReplicaSet", True),
    # PodDisruptionBudgets gate the Eviction API (``pods/<name>/eviction``, below).
    ("policy/v1", "poddisruptionbudgets"): ("PodDisruptionBudget", True),
    ("batch/v1", "jobs"): ("Job", True),
    ("batch/v1", "cronjobs"): ("CronJob", True),
    ("networking.k8s.io/v1", "networkpolicies"): ("NetworkPolicy", True),
    ("networking.k8s.io/v1", "ingresses"): ("Ingress", True),
    ("gateway.networking.k8s.io/v1", "gateways"): ("Gateway", True),
    ("gateway.networking.k8s.io/v1", "httproutes"): ("HTTPRoute", True),
    ("wgpolicyk8s.io/v1alpha2", "policyreports"): ("PolicyReport", True),
    ("wgpolicyk8s.io/v1alpha2", "clusterpolicyreports"): ("ClusterPolicyReport", False),
}

#: API groups served by kube-apiserver itself; anything else is a custom resource (a CRD).
BUILTIN_GROUPS = frozenset({"", "apps", "batch", "autoscaling", "policy", "networking.k8s.io",
                            "rbac.authorization.k8s.io", "storage.k8s.io", "coordination.k8s.io",
                            "discovery.k8s.io", "events.k8s.io", "scheduling.k8s.io"})
#: Kinds with no ``status`` subresource (every other registered kind has one).
NO_STATUS_KINDS = frozenset({"ConfigMap", "Secret", "ServiceAccount", "Event", "NetworkPolicy",
                             "PolicyReport", "ClusterPolicyReport"})
#: Field selectors every kind supports, and the extra ones a few built-in kinds register (kube-apiserver's
#: field label conversion functions: pkg/apis/core/v1/conversion.go). Anything else answers
#: 400 "field label not supported: <field>" (https://github.com/kubernetes/kubernetes/issues/10515).
COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
KIND_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                      "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
                      "status.nominatedNodeName"}),
    "Node": frozenset({"spec.unschedulable"}),
    "Namespace": frozenset({"status.phase"}),
    "Secret": frozenset({"type"}),
    "Event": frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}),
}
#: Kinds holding pod specs, whose resource quantities are serialized as strings.
POD_TEMPLATE_KINDS = frozenset({"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"})
MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH = ("application/merge-patch+json",
                                            "application/strategic-merge-patch+json",
                                            "application/json-patch+json")

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - a git-like id, not security  # nosec B324


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class LabelSelector:
    """``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x,y)``, comma-separated."""

    _TERM = re.compile(
        r"\s*(?:(?P<not>!)\s*(?P<nkey>[\w./-]+)|(?P<key>[\w./-]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[\w.-]*)"
        r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?)\s*(?:,|$)"
    )

    def __init__(self, text: str | None) -> None:
        self.terms: list[tuple[str, str, Any]] = []
        text = (text or "").strip()
        pos = 0
        while pos < len(text):
            m = self._TERM.match(text, pos)
            if m is None or m.end() == pos:
                raise HttpError(400, "BadRequest", f"unable to parse requirement: {text[pos:]!r}")
            if m.group("not"):
                self.terms.append((m.group("nkey"), "!exists", None))
            elif m.group("setop"):
                values = {v.strip() for v in m.group("values").split(",") if v.strip()}
                self.terms.append((m.group("key"), m.group("setop"), values))
            elif m.group("op"):
                self.terms.append((m.group("key"), "!=" if m.group("op") == "!=" else "=", m.group("value")))
            else:
                self.terms.append((m.group("key"), "exists", None))
            pos = m.end()

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        for key, op, value in self.terms:
            present, actual = key in labels, labels.get(key)
            if op == "exists":
                ok = present
            elif op == "!exists":
                ok = not present
            elif op == "=":
                ok = present and actual == value
            elif op == "!=":
                ok = actual != value
            elif op == "in":
                ok = present and actual in value
            else:  # notin
                ok = actual not in value
            if not ok:
                return False
        return True


class FieldSelector:
    """``a=b``, ``a==b``, ``a!=b``, comma-separated, over the fields the kind supports (else 400)."""

    def __init__(self, text: str | None, kind: str) -> None:
        self.terms: list[tuple[str, bool, str]] = []
        supported = COMMON_FIELDS | KIND_FIELDS.get(kind, frozenset())
        for term in filter(None, (t.strip() for t in (text or "").split(","))):
            match = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", term)
            if match is None:
                raise HttpError(400, "BadRequest", f"invalid selector: '{text}'; can't understand '{term}'")
            field, op, value = match.groups()
            if field not in supported:
                raise HttpError(400, "BadRequest", f"field label not supported: {field}")
            self.terms.append((field, op == "!=", value))

    def matches(self, obj: dict[str, Any]) -> bool:
        for path, negate, value in self.terms:
            node: Any = obj
            for part in path.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            actual = "" if node is None else (str(node).lower() if isinstance(node, bool) else str(node))
            if (actual == value) == negate:
                return False
        return True


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test, copy, move) on a copy of ``target``."""
    if not isinstance(operations, list):
        raise HttpError(400, "BadRequest", "the JSON patch must be a list of operations")
    doc = copy.deepcopy(target)

    def walk(pointer: str) -> tuple[Any, str]:
        if not pointer.startswith("/"):
            raise HttpError(422, "Invalid", f"invalid JSON pointer: {pointer!r}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, parts[-1]

    def get(pointer: str) -> Any:
        parent, key = walk(pointer)
        return parent[int(key)] if isinstance(parent, list) else parent[key]

    for op in operations:
        try:
            kind, path = op["op"], op["path"]
            if kind == "test":
                if get(path) != op.get("value"):
                    raise HttpError(422, "Invalid", f"the server rejected our request due to an error in our "
                                                    f"request: testing value {path} failed")
                continue
            value = copy.deepcopy(op["value"]) if kind in ("add", "replace") else None
            if kind in ("copy", "move"):
                value = copy.deepcopy(get(op["from"]))
                if kind == "move":
                    parent, key = walk(op["from"])
                    del parent[int(key) if isinstance(parent, list) else key]
            parent, key = walk(path)
            if kind == "remove":
                del parent[int(key) if isinstance(parent, list) else key]
            elif isinstance(parent, list):
                index = len(parent) if key == "-" else int(key)
                if kind == "replace":
                    parent[index] = value
                else:
                    parent.insert(index, value)
            elif kind in ("add", "replace", "copy", "move"):
                if kind == "replace" and key not in parent:
                    raise KeyError(key)
                parent[key] = value
            else:
                raise HttpError(422, "Invalid", f"unknown JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError):
            raise HttpError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                            f"cannot apply {op!r}") from None
    return doc


class KubernetesEmulator(Emulator):
    name = "kubernetes"

    def __init__(self, platform: PlatformEnvironment, *, tls: bool = False, reconcile_delay: float = 0.0,
                 simulate_flux: bool = True, revision: str | None = None, gpu_nodes: dict[str, int] | None = None,
                 system_nodes: int | None = None, system_vm_size: str | None = None,
                 kubernetes_version: str = "v1.32.4", repository_root: Path = REPO_ROOT,
                 node_ready_seconds: float = 0.0) -> None:
        self.tls = tls
        #: The checkout whose flux.tf and gitops/ the Flux objects are seeded from.
        self.repository_root = Path(repository_root)
        self.platform = platform
        self.reconcile_delay = reconcile_delay
        self.simulate_flux = simulate_flux
        self.kubernetes_version = kubernetes_version
        #: The git revision Flux reports as applied (``main@sha1:<this>``).
        self.revision = revision or sha1_hex(f"{platform.name}-initial")
        #: Bearer tokens seen, so tests can check which credential the client used.
        self.tokens_seen: list[str] = []
        self.resources: dict[tuple[str, str], tuple[str, bool]] = dict(BUILTIN_RESOURCES)
        #: (group/version, plural) -> {(namespace or "", name): object}
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = 1000
        self._timers: list[threading.Timer] = []
        self._initial = (reconcile_delay, simulate_flux, system_nodes, system_vm_size, dict(gpu_nodes or {}))
        self._declared = flux_objects(platform.name, self.repository_root)
        #: Set by the sandbox: the default branch's head in the GitLab emulator (Flux fetches it on reconcile).
        self.source_head: Any = None
        #: What the pods' servers answer on /metrics: (namespace, pod, port) -> Prometheus text.
        self.pod_metrics: dict[tuple[str, str, int], str] = {}
        #: (namespace, pod) of every eviction granted, oldest first (tests read it)
        self.evictions: list[tuple[str, str]] = []
        #: kube-controller-manager's Deployment/ReplicaSet controllers, the scheduler and the pod GC (deployments.py)
        self.deployments = DeploymentController(self)
        self._pod_ips = 0
        #: Seconds a node added after the seed stays NotReady (its kubelet registering; a GPU node takes minutes
        #: in AKS: driver, image pull). Checked on every request, no thread: see ``_post_ready``.
        self.node_ready_seconds = self._node_ready_seconds = node_ready_seconds
        #: The clock of those delays (tests replace it rather than sleep); node name -> when it posts Ready.
        self.monotonic = time.monotonic
        self._unready: dict[str, float] = {}
        super().__init__()
        self._seed(system_nodes, system_vm_size, gpu_nodes)

    def reset(self) -> None:
        """Back to the seeded cluster (objects, resources, tokens seen, faults, request log), same port."""
        reconcile_delay, simulate_flux, system_nodes, system_vm_size, gpu_nodes = self._initial
        with self.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self.reconcile_delay, self.simulate_flux = reconcile_delay, simulate_flux
            self.tokens_seen.clear()
            self.resources = dict(BUILTIN_RESOURCES)
            self.objects.clear()
            self._rv = 1000
            self.faults.clear()
            self.requests.clear()
            self.pod_metrics.clear()
            self.evictions.clear()
            self.deployments.reset()
            self._pod_ips = 0
            self._unready.clear()
            self.monotonic = time.monotonic
            self.node_ready_seconds = self._node_ready_seconds
            self._seed(system_nodes, system_vm_size, gpu_nodes)

    def settings_env(self) -> dict[str, str]:
        return {"KUBERNETES_API_URL": self.base_url}

    def stop(self) -> None:
        with self.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        super().stop()

    # -- envelope, auth -----------------------------------------------------------------------

    def error_body(self, status: int, code: str, message: str) -> Any:
        reason = code if code and not code.isdigit() else _REASONS.get(status, "Unknown")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": status}

    def authenticate(self, request: Request) -> Response | None:
        token = bearer_token(request)
        if not token:
            return Response(401, self.error_body(401, "Unauthorized", "Unauthorized"))
        with self.lock:
            if not self.tokens_seen or self.tokens_seen[-1] != token:
                self.tokens_seen.append(token)
        return None

    # -- public helpers for tests and the sandbox ---------------------------------------------

    def register_resource(self, api_version: str, plural: str, kind: str, namespaced: bool = True) -> None:
        with self.lock:
            self.resources[(api_version, plural)] = (kind, namespaced)

    def object(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        with self.lock:
            self._post_ready()
            obj = self.objects.get((api_version, plural), {}).get((namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def put_object(self, obj: dict[str, Any], plural: str) -> dict[str, Any]:
        """Create or replace an object directly (seeding, or simulating a change made by someone else)."""
        with self.lock:
            return self._store(obj["apiVersion"], plural, copy.deepcopy(obj), replace=True)

    def sync_tls_secret(self, ref: str, pem_bundle: str) -> dict[str, Any]:
        """What external-secrets does with the origin certificate (gitops/infrastructure/configs/base/secrets):
        a ``kubernetes.io/tls`` Secret ``namespace/name`` whose ``tls.crt`` holds the certificate blocks and
        ``tls.key`` the private key of the Key Vault secret."""
        blocks = [(m.group(1), m.group(0)) for m in
                  re.finditer(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----\n?", pem_bundle, re.S)]
        crt = "".join(text for kind, text in blocks if kind == "CERTIFICATE")
        key = "".join(text for kind, text in blocks if kind.endswith("PRIVATE KEY"))
        namespace, _, name = ref.partition("/")
        with self.lock:
            if ("", namespace) not in self.objects.get(("v1", "namespaces"), {}):
                self._store("v1", "namespaces", {"metadata": {"name": namespace, "labels": {
                    "kubernetes.io/metadata.name": namespace}}, "status": {"phase": "Active"}})
            return self._store("v1", "secrets", {
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {"reconcile.external-secrets.io/managed": "true"}},
                "data": {"tls.crt": base64.b64encode(crt.encode()).decode(),
                         "tls.key": base64.b64encode(key.encode()).decode()},
            }, replace=True)

    def scale_pool(self, pool: str, count: int, *, ready: bool = True, seeding: bool = False) -> None:
        """Make the nodes of an agent pool match ``count`` (what AKS does after a scale). New nodes register
        NotReady and post Ready ``node_ready_seconds`` later (0: at once; the seed's nodes are Ready);
        ``ready=False``: they stay NotReady until a write to their ``status`` says otherwise."""
        with self.lock:
            nodes = self.objects.setdefault(("v1", "nodes"), {})
            existing = sorted(k for k, n in nodes.items()
                              if n["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == pool)
            gone = {nodes[key]["metadata"]["name"] for key in existing[count:]}
            for key in existing[count:]:
                del nodes[key]
            template = self._pool_template(pool)
            # New nodes take the lowest free VMSS indexes (machines deleted by name leave gaps).
            taken = {nodes[k]["metadata"]["name"] for k in existing[:count]}
            index, have = 0, min(len(existing), count)
            while have < count:
                node = self._node(pool, index, *template)
                delayed = ready and not seeding and self.node_ready_seconds > 0
                if not ready or delayed:
                    node["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                                                     "message": "container runtime network not ready"}]
                index += 1
                if node["metadata"]["name"] not in taken:
                    self._store("v1", "nodes", node, replace=True)
                    if delayed:
                        self._unready[node["metadata"]["name"]] = self.monotonic() + self.node_ready_seconds
                    have += 1
            if gone:
                self.deployments.nodes_gone(gone)

    def serve_pod_metrics(self, namespace: str, pod: str, text: str | None, port: int | None = None) -> int:
        """Make the pod's server answer ``text`` on ``/metrics`` (None: stop serving); returns the port, by
        default the pod's container port named ``http`` (or its first one)."""
        with self.lock:
            if port is None:
                obj = self._existing("v1", "pods", namespace, pod)
                port = _declared_port(obj, "http") or _declared_port(obj, None)
                if port is None:
                    raise HttpError(400, "BadRequest", f"pod {namespace}/{pod} declares no container port")
            if text is None:
                self.pod_metrics.pop((namespace, pod, port), None)
            else:
                self.pod_metrics[(namespace, pod, port)] = text
            return port

    def set_serving_load(self, namespace: str, deployment: str, load: Load | None) -> None:
        """Requests the serving Deployment's Running pods report as running (a number, or a callable read at each
        metrics request; None: 0), split over the pods up to their slots (deployments.py)."""
        with self.lock:
            if load is None:
                self.deployments.serving_load.pop((namespace, deployment), None)
            else:
                self.deployments.serving_load[(namespace, deployment)] = load

    def serve_pod_figures(self, namespace: str, pod: str, figures: dict[str, float] | None) -> None:
        """The vLLM figures an emulated serving pod reports (``running``, ``waiting``, ``success``,
        ``latency_seconds``; None: back to its share of the serving load)."""
        with self.lock:
            if figures is None:
                self.deployments.pod_figures.pop((namespace, pod), None)
            else:
                self.deployments.pod_figures[(namespace, pod)] = {k: float(v) for k, v in figures.items()}

    def _post_ready(self) -> None:
        """Nodes whose ``node_ready_seconds`` are up turn Ready (as their kubelet would post), and Pending pods may
        now be scheduled on them. Runs at every request and helper read, under the lock: no background thread."""
        due = [name for name, when in self._unready.items() if when <= self.monotonic()]
        if not due:
            return
        now = iso(utc_now()).split(".")[0] + "Z"
        for node in self.objects.get(("v1", "nodes"), {}).values():
            if node["metadata"]["name"] in due:
                node["status"]["conditions"] = [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                                 "message": "kubelet is posting ready status",
                                                 "lastTransitionTime": now}]
                self._rv += 1
                node["metadata"]["resourceVersion"] = str(self._rv)
        for name in due:
            del self._unready[name]
        self.deployments.schedule_pending()

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self._post_ready()
        return super().dispatch(request)

    def pool_node_names(self, pool: str) -> list[str]:
        """The names of an agent pool's nodes (its machines, as AKS names them)."""
        with self.lock:
            self._post_ready()
            nodes = self.objects.get(("v1", "nodes"), {})
            return sorted(n["metadata"]["name"] for n in nodes.values()
                          if n["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == pool)

    def remove_nodes(self, names: list[str]) -> None:
        """Delete these nodes (AKS deleted their machines)."""
        with self.lock:
            nodes = self.objects.get(("v1", "nodes"), {})
            for key in [k for k, n in nodes.items() if n["metadata"]["name"] in set(names)]:
                del nodes[key]
            self.deployments.nodes_gone(set(names))

    def _control(self, request: Request) -> Response:
        """Besides faults: ``POST /_sandbox/pod-metrics`` ``{"namespace": ..., "pod": ..., "text": "..." or null,
        "port": n (optional)}`` sets what a pod serves on /metrics (``serve_pod_metrics``), or with
        ``"figures": {"running": n, "waiting": n, "success": n, "latency_seconds": s}`` (or null) the figures an
        emulated serving pod reports (``serve_pod_figures``); ``POST /_sandbox/serving-load``
        ``{"deployment": "model-serving/vllm-h100", "running": n}`` the load its pods share (``set_serving_load``);
        ``POST /_sandbox/drift`` ``{"kind": "kustomizations", "name": "apps", "suspend": true}`` or
        ``{"name": "apps", "fail": "kustomize build failed"}`` (Ready=False) or
        ``{"name": "apps", "stalled": "..."}``: the Flux states drift detection reports."""
        if request.path == "/_sandbox/pod-metrics" and request.method == "POST":
            body = request.json() or {}
            if not isinstance(body, dict) or not body.get("namespace") or not body.get("pod"):
                return Response(400, {"error": "expected {\"namespace\", \"pod\", \"text\", \"port\"?}"})
            if "figures" in body:
                figures = body["figures"]
                if figures is not None and (not isinstance(figures, dict) or not all(
                        isinstance(v, int | float) and not isinstance(v, bool) for v in figures.values())):
                    return Response(400, {"error": "figures: an object of numbers, or null"})
                self.serve_pod_figures(str(body["namespace"]), str(body["pod"]), figures)
                return Response(200, {"namespace": body["namespace"], "pod": body["pod"], "figures": figures})
            try:
                port = self.serve_pod_metrics(str(body["namespace"]), str(body["pod"]), body.get("text"),
                                              body.get("port"))
            except HttpError as err:
                return Response(err.status, {"error": err.message})
            return Response(200, {"namespace": body["namespace"], "pod": body["pod"], "port": port})
        if request.path == "/_sandbox/serving-load" and request.method == "POST":
            body = request.json() or {}
            target = str(body.get("deployment") or "") if isinstance(body, dict) else ""
            running = body.get("running") if isinstance(body, dict) else None
            if "/" not in target or not (running is None or (isinstance(running, int) and running >= 0)):
                return Response(400, {"error": "expected {\"deployment\": \"namespace/name\", \"running\": n >= 0}"})
            namespace, deployment = target.split("/", 1)
            self.set_serving_load(namespace, deployment, running)
            return Response(200, {"deployment": target, "running": running})
        if request.path == "/_sandbox/drift" and request.method == "POST":
            body = request.json() or {}
            if not isinstance(body, dict):
                return Response(400, {"error": "expected a JSON object"})
            plural = body.get("kind", "kustomizations")
            gv = next((g for g, p in self.resources if p == plural and g.split("/")[0] in FLUX_GROUPS), None)
            with self.lock:
                obj = self.objects.get((gv, plural), {}).get((body.get("namespace", "flux-system"), body.get("name")))
                if obj is None:
                    return Response(404, {"error": f"no {plural} {body.get('name')!r}"})
                if "suspend" in body:
                    obj.setdefault("spec", {})["suspend"] = bool(body["suspend"])
                    obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
                for key, condition in (("fail", "Ready"), ("stalled", "Stalled")):
                    if key in body:
                        conditions = [c for c in obj.setdefault("status", {}).get("conditions", [])
                                      if c.get("type") != condition]
                        conditions.append({"type": condition, "status": "True" if key == "stalled" else "False",
                                           "reason": "BuildFailed", "message": str(body[key]),
                                           "lastTransitionTime": iso(utc_now()).split(".")[0] + "Z"})
                        obj["status"]["conditions"] = conditions
                self._rv += 1
                obj["metadata"]["resourceVersion"] = str(self._rv)
                return Response(200, copy.deepcopy(obj))
        return super()._control(request)

    def _follow_source(self, gv: str, plural: str, obj: dict[str, Any]) -> None:
        """On a reconcile, the emulated source-controller fetches ``source_head()`` and the
        kustomize-controller applies it (when the sandbox wires this emulator to the GitLab one)."""
        head = self.source_head() if self.source_head is not None else None
        if not head or obj.get("spec", {}).get("suspend"):
            return
        self._follow_source_revision(obj, plural, head)

    def _follow_source_revision(self, obj: dict[str, Any], plural: str, head: str) -> None:
        revision = f"{self.platform.gitlab.default_branch}@sha1:{head}"
        status = obj.setdefault("status", {})
        if plural == "gitrepositories":
            status.setdefault("artifact", {})["revision"] = revision
        elif plural == "kustomizations":
            status["lastAppliedRevision"] = status["lastAttemptedRevision"] = revision

    # -- routes -------------------------------------------------------------------------------

    def routes(self) -> None:
        self.route("GET", r"/version", self.version)
        self.route("GET", r"/api", self.core_versions)
        self.route("GET", r"/apis", self.group_list)
        self.route("GET", r"/api/v1", self.resource_list)
        self.route("GET", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)", self.resource_list)
        self.route("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<target>[^/]+)/proxy(?P<rest>/.*)?",
                   self.pod_proxy)
        self.route("POST", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/eviction", self.evict_pod)
        core = r"/api/(?P<version>v1)"
        grouped = r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)"
        tail = r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
        for prefix in (core, grouped):
            for method, handler in (("GET", self.list_objects), ("POST", self.create_object)):
                self.route(method, prefix + tail, handler)
            item = prefix + tail + r"/(?P<name>[^/]+)(?:/(?P<sub>status))?"
            for method, handler in (("GET", self.get_object), ("PUT", self.replace_object),
                                    ("PATCH", self.patch_object), ("DELETE", self.delete_object)):
                self.route(method, item, handler)

    def pod_proxy(self, request: Request) -> Response:
        """kube-apiserver's pod proxy: ``name``, ``name:port`` or ``scheme:name:port``; no port means the
        pod's first declared container port; the API server then dials ``podIP:port``."""
        ns, target = request.params["ns"], request.params["target"]
        parts = target.split(":")  # apimachinery's SplitSchemeNamePort
        scheme, name, port_text = {1: lambda: ("", parts[0], ""), 2: lambda: ("", *parts),
                                   3: lambda: tuple(parts)}.get(len(parts), lambda: ("", "", ""))()
        if not name or scheme not in ("", "http", "https"):
            raise HttpError(400, "BadRequest", f'invalid pod request "{target}"')
        pod = self._existing("v1", "pods", ns, name)
        port_text = port_text or str(_declared_port(pod, None) or "")
        ip = (pod.get("status") or {}).get("podIP") or ""
        if not ip:
            raise HttpError(400, "BadRequest", "address not allowed")
        refused = HttpError(503, "ServiceUnavailable",
                            f"error trying to reach service: dial tcp {ip}:{port_text}: connect: connection refused")
        if (pod.get("status") or {}).get("phase") != "Running" or not port_text.isdigit():
            raise refused
        text = self.pod_metrics.get((ns, name, int(port_text)))
        if text is None:
            text = self.deployments.serving_text(ns, name, int(port_text))
        if text is None:
            raise refused
        if (request.params.get("rest") or "/") != "/metrics":
            return Response(404, {"detail": "Not Found"})  # the pod's own server (vLLM's FastAPI) answers
        return Response(200, text, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    def evict_pod(self, request: Request) -> Response:
        """The Eviction API (kubernetes.io/docs/concepts/scheduling-eviction/api-eviction): a policy/v1
        ``Eviction`` for the pod named in the path. A PodDisruptionBudget selecting the pod (``matchLabels``)
        whose ``status.disruptionsAllowed`` is 0 refuses with 429; more than one selecting it is a 500, as the
        API server answers; otherwise the pod is deleted (this emulator skips the grace period; its owner
        replaces it) and the answer is a ``Success`` Status."""
        ns, name = request.params["ns"], request.params["name"]
        body = self._body(request)
        if body.get("kind") != "Eviction" or (body.get("metadata") or {}).get("name") != name:
            raise HttpError(400, "BadRequest", "name in URL does not match name in Eviction object")
        pod = self._existing("v1", "pods", ns, name)
        labels = pod["metadata"].get("labels") or {}
        budgets = [b for (bns, _), b in self.objects.get(("policy/v1", "poddisruptionbudgets"), {}).items()
                   if bns == ns and _selects((b.get("spec") or {}).get("selector") or {}, labels)]
        if len(budgets) > 1:
            raise HttpError(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the "
                                                  "eviction subresource does not support.")
        if budgets and ((budgets[0].get("status") or {}).get("disruptionsAllowed", 1)) <= 0:
            raise HttpError(429, "TooManyRequests",
                            "Cannot evict pod as it would violate the pod's disruption budget.")
        del self.objects[("v1", "pods")][(ns, name)]
        self._rv += 1
        self.evictions.append((ns, name))
        self.deployments.pod_deleted(pod)  # its ReplicaSet replaces it, on a node that is not cordoned
        return Response(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})

    def version(self, request: Request) -> Response:
        major, minor = self.kubernetes_version.lstrip("v").split(".")[:2]
        return Response(200, {"major": major, "minor": minor, "gitVersion": self.kubernetes_version,
                              "platform": "linux/amd64", "goVersion": "go1.23.8"})

    def core_versions(self, request: Request) -> Response:
        return Response(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})

    def group_list(self, request: Request) -> Response:
        groups: dict[str, list[str]] = {}
        for gv, _ in self.resources:
            if "/" in gv:
                group, version = gv.split("/")
                versions = groups.setdefault(group, [])
                if version not in versions:
                    versions.append(version)
        return Response(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
             "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}} for g, vs in groups.items()
        ]})

    def resource_list(self, request: Request) -> Response:
        gv = self._gv(request)
        found = [(plural, kind, ns) for (g, plural), (kind, ns) in self.resources.items() if g == gv]
        if not found:
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        verbs = ["create", "delete", "get", "list", "patch", "update"]  # no watch: not served
        return Response(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
            {"name": plural, "singularName": kind.lower(), "namespaced": ns, "kind": kind, "verbs": verbs}
            for plural, kind, ns in found
        ]})

    # -- resource handlers --------------------------------------------------------------------

    @staticmethod
    def _gv(request: Request) -> str:
        group = request.params.get("group")
        return f"{group}/{request.params['version']}" if group else request.params["version"]

    def _resource(self, request: Request) -> tuple[str, str, str, bool, str]:
        gv, plural = self._gv(request), request.params["plural"]
        if (gv, plural) not in self.resources:
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        kind, namespaced = self.resources[(gv, plural)]
        ns = request.params.get("ns", "")
        if ns and not namespaced:
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        return gv, plural, kind, namespaced, ns

    @staticmethod
    def _qualified(gv: str, plural: str) -> str:
        return f"{plural}.{gv.split('/')[0]}" if "/" in gv else plural

    def _existing(self, gv: str, plural: str, ns: str, name: str) -> dict[str, Any]:
        obj = self.objects.get((gv, plural), {}).get((ns, name))
        if obj is None:
            raise HttpError(404, "NotFound", f'{self._qualified(gv, plural)} "{name}" not found')
        return obj

    def list_objects(self, request: Request) -> Response:
        gv, plural, kind, _, ns = self._resource(request)
        if request.query.get("watch", "").lower() in ("true", "1"):
            raise HttpError(405, "MethodNotAllowed", "watch is not served by this API server emulator; "
                                                     "discovery does not list the verb")
        selector = LabelSelector(request.query.get("labelSelector"))
        fields = FieldSelector(request.query.get("fieldSelector"), kind)
        try:
            limit = int(request.query.get("limit") or 0)
        except ValueError:
            raise HttpError(400, "BadRequest",
                            f'strconv.ParseInt: parsing "{request.query["limit"]}": invalid syntax') from None
        items = sorted(
            (key, obj) for key, obj in self.objects.get((gv, plural), {}).items()
            if (not ns or key[0] == ns) and selector.matches(obj["metadata"].get("labels"))
            and fields.matches(obj)
        )
        start = 0
        if request.query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(request.query["continue"].encode()))
                start = int(token["start"])
            except (ValueError, KeyError, TypeError):
                raise HttpError(400, "BadRequest", "continue key is not valid") from None
        page = items[start:start + limit] if limit > 0 else items[start:]
        metadata: dict[str, Any] = {"resourceVersion": str(self._rv)}
        end = start + len(page)
        if limit > 0 and end < len(items):
            metadata["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": self._rv, "start": end}).encode()).decode()
            metadata["remainingItemCount"] = len(items) - end
        return Response(200, {"kind": f"{kind}List", "apiVersion": gv, "metadata": metadata,
                              "items": [copy.deepcopy(obj) for _, obj in page]})

    def get_object(self, request: Request) -> Response:
        gv, plural, _, _, ns = self._resource(request)
        return Response(200, copy.deepcopy(self._existing(gv, plural, ns, request.params["name"])))

    def create_object(self, request: Request) -> Response:
        gv, plural, kind, namespaced, ns = self._resource(request)
        body = self._body(request)
        meta = body.setdefault("metadata", {})
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise HttpError(422, "Invalid", f"{kind} is invalid: metadata.name: Required value")
        if namespaced:
            meta["namespace"] = ns or meta.get("namespace") or "default"
            if ("", meta["namespace"]) not in self.objects.get(("v1", "namespaces"), {}):
                raise HttpError(404, "NotFound", f'namespaces "{meta["namespace"]}" not found')
        body["apiVersion"], body["kind"] = gv, kind
        if (meta.get("namespace", ""), meta["name"]) in self.objects.get((gv, plural), {}):
            raise HttpError(409, "AlreadyExists", f'{self._qualified(gv, plural)} "{meta["name"]}" already exists')
        return Response(201, copy.deepcopy(self._store(gv, plural, body)))

    def replace_object(self, request: Request) -> Response:
        gv, plural, _, _, ns = self._resource(request)
        name = request.params["name"]
        current = self._existing(gv, plural, ns, name)
        body = self._body(request)
        self._check_version(gv, plural, name, current, body.get("metadata", {}).get("resourceVersion"))
        if request.params.get("sub") == "status":
            self._check_status_subresource(gv, plural)
            updated = copy.deepcopy(current)
            updated["status"] = body.get("status")
        else:
            updated = body
            updated["metadata"] = {**body.get("metadata", {}), "name": name}
            self._keep_status(gv, plural, current, updated)
        return Response(200, copy.deepcopy(self._update(gv, plural, current, updated)))

    def patch_object(self, request: Request) -> Response:
        gv, plural, _, _, ns = self._resource(request)
        name = request.params["name"]
        current = self._existing(gv, plural, ns, name)
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        # Custom resources have no strategic-merge metadata: the real server refuses that patch type there
        # (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/).
        accepted = [JSON_PATCH, MERGE_PATCH] + ([STRATEGIC_PATCH] if self._builtin(gv) else [])
        if content_type not in accepted:
            raise HttpError(415, "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted media types include: "
                            + ", ".join(accepted))
        status_only = request.params.get("sub") == "status"
        if status_only:
            self._check_status_subresource(gv, plural)
        if content_type == JSON_PATCH:
            updated = json_patch(current, request.json())
        else:
            patch = self._body(request)
            self._check_version(gv, plural, name, current, patch.get("metadata", {}).get("resourceVersion"))
            updated = merge_patch(copy.deepcopy(current), patch)
        if status_only:  # the status subresource changes status and nothing else
            updated = {**copy.deepcopy(current), "status": updated.get("status")}
        else:
            self._keep_status(gv, plural, current, updated)
        updated.setdefault("metadata", {})["name"] = name
        return Response(200, copy.deepcopy(self._update(gv, plural, current, updated)))

    @staticmethod
    def _builtin(gv: str) -> bool:
        return (gv.split("/")[0] if "/" in gv else "") in BUILTIN_GROUPS

    def _has_status(self, gv: str, plural: str) -> bool:
        return self.resources[(gv, plural)][0] not in NO_STATUS_KINDS

    def _check_status_subresource(self, gv: str, plural: str) -> None:
        if not self._has_status(gv, plural):
            raise HttpError(404, "NotFound", "the server could not find the requested resource")

    def _keep_status(self, gv: str, plural: str, current: dict[str, Any], updated: dict[str, Any]) -> None:
        """Where a status subresource exists, a write to the main resource leaves status as it was."""
        if not self._has_status(gv, plural):
            return
        if "status" in current:
            updated["status"] = copy.deepcopy(current["status"])
        else:
            updated.pop("status", None)

    def delete_object(self, request: Request) -> Response:
        gv, plural, _, _, ns = self._resource(request)
        name = request.params["name"]
        obj = self._existing(gv, plural, ns, name)
        del self.objects[(gv, plural)][(ns, name)]
        self._rv += 1
        if (gv, plural) == ("v1", "nodes"):
            self.deployments.nodes_gone({name})
        elif (gv, plural) == ("v1", "pods"):
            self.deployments.pod_deleted(obj)
            # The pod registry answers the pod itself, marked for deletion, where most kinds answer a Status
            # (https://github.com/kubernetes/kubernetes/issues/78343); graceful termination is not emulated: it is
            # gone at once.
            gone = copy.deepcopy(obj)
            gone["metadata"].update(deletionTimestamp=iso(utc_now()).split(".")[0] + "Z",
                                    deletionGracePeriodSeconds=0)
            return Response(200, gone)
        elif (gv, plural) == ("apps/v1", "deployments"):
            self.deployments.deployment_deleted(obj)
        return Response(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "details": {"name": name, "group": gv.split("/")[0] if "/" in gv else "",
                                          "kind": plural, "uid": obj["metadata"].get("uid")}})

    # -- storage ------------------------------------------------------------------------------

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "BadRequest", "the request body must be a JSON object")
        return body

    def _check_version(self, gv: str, plural: str, name: str, current: dict[str, Any], wanted: Any) -> None:
        if wanted and str(wanted) != current["metadata"]["resourceVersion"]:
            raise HttpError(409, "Conflict", f'Operation cannot be fulfilled on {self._qualified(gv, plural)} '
                                             f'"{name}": the object has been modified; please apply your changes '
                                             f'to the latest version and try again')

    def _store(self, gv: str, plural: str, obj: dict[str, Any], replace: bool = False) -> dict[str, Any]:
        kind, namespaced = self.resources[(gv, plural)]
        obj["apiVersion"], obj["kind"] = gv, kind
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "") if namespaced else ""
        if not namespaced:
            meta.pop("namespace", None)
        if kind in POD_TEMPLATE_KINDS:
            _canonical_quantities(obj)
        self._rv += 1
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", iso(utc_now()).split(".")[0] + "Z")
        meta["resourceVersion"] = str(self._rv)
        if "spec" in obj:
            meta.setdefault("generation", 1)
        self.objects.setdefault((gv, plural), {})[(ns, meta["name"])] = obj
        self._after_write(gv, plural, None, obj)
        return obj

    def _update(self, gv: str, plural: str, current: dict[str, Any], updated: dict[str, Any]) -> dict[str, Any]:
        meta = updated.setdefault("metadata", {})
        old = current["metadata"]
        # Identity and server-managed fields cannot be changed by a client.
        for key in ("uid", "creationTimestamp", "namespace"):
            if key in old:
                meta[key] = old[key]
        meta["generation"] = old.get("generation", 1 if "spec" in updated else None)
        if meta["generation"] is None:
            meta.pop("generation")
        elif updated.get("spec") != current.get("spec"):
            meta["generation"] += 1
        updated["apiVersion"], updated["kind"] = current["apiVersion"], current["kind"]
        if updated["kind"] in POD_TEMPLATE_KINDS:
            _canonical_quantities(updated)
        if updated == current:
            return current  # a no-op write does not bump resourceVersion
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        key = (old.get("namespace", ""), old["name"])
        self.objects[(gv, plural)][key] = updated
        self._after_write(gv, plural, current, updated)
        return updated

    # -- controllers --------------------------------------------------------------------------

    def _after_write(self, gv: str, plural: str, before: dict[str, Any] | None, obj: dict[str, Any]) -> None:
        if gv == "apps/v1" and plural == "deployments":
            self.deployments.deployment_written(obj)
        elif gv == "v1" and plural == "nodes":
            self.deployments.schedule_pending()
        if not self.simulate_flux or gv.split("/")[0] not in FLUX_GROUPS or before is None:
            return
        requested = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
        status = obj.get("status") or {}
        pending = (requested and requested != status.get("lastHandledReconcileAt")) or \
            obj["metadata"].get("generation") != status.get("observedGeneration")
        if not pending:
            return
        key = (gv, plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if self.reconcile_delay <= 0:
            self._reconcile(*key)
        else:
            timer = threading.Timer(self.reconcile_delay, self._reconcile_later, args=key)
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def _reconcile_later(self, gv: str, plural: str, ns: str, name: str) -> None:
        with self.lock:
            self._reconcile(gv, plural, ns, name)

    def _reconcile(self, gv: str, plural: str, ns: str, name: str) -> None:
        obj = self.objects.get((gv, plural), {}).get((ns, name))
        if obj is None:
            return
        status = obj.setdefault("status", {})
        requested = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
        if requested:
            status["lastHandledReconcileAt"] = requested
        status["observedGeneration"] = obj["metadata"].get("generation", 1)
        self._follow_source(gv, plural, obj)
        if plural == "kustomizations" and not (obj.get("spec") or {}).get("suspend"):
            self._apply_declared(ns, name)
        now = iso(utc_now()).split(".")[0] + "Z"
        for cond in status.get("conditions", []):
            if cond.get("type") == "Ready":
                cond.update(status="True", lastTransitionTime=now, observedGeneration=status["observedGeneration"])
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _apply_declared(self, namespace: str, name: str) -> None:
        """What the Kustomization ``namespace/name`` declares, applied again (see the module docstring)."""
        owner = next((d for d in self._declared if d.kind == "Kustomization" and d.name == name
                      and d.namespace == namespace), None)
        if owner is None:
            return
        plurals = {(gv, kind): plural for (gv, plural), (kind, _) in self.resources.items()}
        for declared in owner.applies:
            plural = plurals.get((declared.get("apiVersion"), declared.get("kind")))
            if plural is None or declared["kind"] in ("Namespace", "Kustomization"):
                continue
            meta = declared.get("metadata") or {}
            _, namespaced = self.resources[(declared["apiVersion"], plural)]
            key = (meta.get("namespace", "default") if namespaced else "", meta["name"])
            live = self.objects.get((declared["apiVersion"], plural), {}).get(key)
            if live is not None and (meta.get("annotations") or {}).get(IF_NOT_PRESENT[0]) == IF_NOT_PRESENT[1]:
                continue
            body = copy.deepcopy(declared)
            body.setdefault("metadata", {}).setdefault("namespace", key[0] or None)
            if not key[0]:
                body["metadata"].pop("namespace", None)
            body["metadata"]["labels"] = {**(meta.get("labels") or {}), "kustomize.toolkit.fluxcd.io/name": name,
                                          "kustomize.toolkit.fluxcd.io/namespace": namespace}
            if live is None:
                self._store(declared["apiVersion"], plural, body)
                continue
            merged = merge_patch(copy.deepcopy(live), {k: v for k, v in body.items() if k != "status"})
            if merged.get("kind") in POD_TEMPLATE_KINDS:
                _canonical_quantities(merged)  # as stored: a manifest's 1 is the live "1", not a change
            if merged != live:
                if merged.get("spec") != live.get("spec"):
                    merged["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
                self._rv += 1
                merged["metadata"]["resourceVersion"] = str(self._rv)
                self.objects[(declared["apiVersion"], plural)][key] = merged
                if plural == "deployments":
                    self.deployments.deployment_written(merged)

    # -- seed ---------------------------------------------------------------------------------

    def _pool_template(self, pool: str) -> tuple[str, str, dict[str, str], list[dict[str, str]], dict[str, str]]:
        if pool == "system":
            return ("System", self._system_vm_size, {}, [{"key": "CriticalAddonsOnly", "value": "true",
                                                          "effect": "NoSchedule"}], {})
        declared = self._cluster_pools.get(pool)
        if declared is not None:  # the CPU pool: the labels and taints infra/modules/aks gives it
            taints = [_taint(t) for t in declared.taints]
            return (declared.mode, declared.vm_size, dict(declared.labels), taints, {})
        spec = self.platform.gpu_pool(pool)
        resource = "nvidia.com/gpu" if spec.vendor == "nvidia" else "amd.com/gpu"
        prefix = self.platform.node_label_prefix  # the labels infra/modules/aks sets on GPU pools
        labels = {f"{prefix}/gpu-vendor": spec.vendor, f"{prefix}/gpu-pool": spec.name,
                  f"{prefix}/gpus-per-node": str(spec.gpus_per_node), f"{prefix}/workload": "inference",
                  f"{prefix}/inference-queue": spec.inference_queue, "accelerator": spec.vendor}
        if spec.mig_profile:
            labels["nvidia.com/mig.config"] = spec.mig_profile
        return ("User", spec.vm_size, labels, [{"key": resource, "value": "present", "effect": "NoSchedule"}],
                {resource: str(spec.gpus_per_node)})

    def _node(self, pool: str, index: int, mode: str, vm_size: str, extra_labels: dict[str, str],
              taints: list[dict[str, str]], gpus: dict[str, str]) -> dict[str, Any]:
        name = f"aks-{pool}-{sha1_hex(pool)[:8]}-vmss{index:06d}"
        zone = f"{self.platform.location}-{index % 3 + 1}"
        return {
            "metadata": {"name": name, "labels": {
                "kubernetes.azure.com/agentpool": pool, "agentpool": pool, "kubernetes.azure.com/mode": mode.lower(),
                "node.kubernetes.io/instance-type": vm_size, "beta.kubernetes.io/instance-type": vm_size,
                "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
                "topology.kubernetes.io/region": self.platform.location, "topology.kubernetes.io/zone": zone,
                "kubernetes.azure.com/cluster": f"MC_{self.platform.resource_group}_{self.platform.cluster_name}",
                **extra_labels}},
            "spec": {"providerID": f"azure:///subscriptions/{self.platform.subscription_id}/resourceGroups/"
                                   f"mc_{self.platform.resource_group}/providers/Microsoft.Compute/"
                                   f"virtualMachineScaleSets/aks-{pool}-vmss/virtualMachines/{index}",
                     "taints": taints},
            "status": {
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", **gpus},
                "allocatable": {"cpu": "7820m", "memory": "27Gi", "pods": "110", **gpus},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status"}],
                # Every field of NodeSystemInfo the API marks required (the official client refuses a node without).
                "nodeInfo": {"kubeletVersion": self.kubernetes_version, "kubeProxyVersion": self.kubernetes_version,
                             "osImage": "Ubuntu 22.04.5 LTS", "operatingSystem": "linux",
                             "kernelVersion": "5.15.0-1079-azure",
                             "containerRuntimeVersion": "containerd://1.7.27-1", "architecture": "amd64",
                             "machineID": sha1_hex(f"machine-{name}")[:32],
                             "systemUUID": str(uuid.UUID(sha1_hex(f"uuid-{name}")[:32])),
                             "bootID": str(uuid.UUID(sha1_hex(f"boot-{name}")[:32]))},
                "addresses": [{"type": "InternalIP", "address": f"10.224.{index // 250}.{index % 250 + 4}"},
                              {"type": "Hostname", "address": name}],
            },
        }

    @staticmethod
    def _released(release: dict[str, Any], flux_namespace: str, now: str, ready: Any,
                  oci_tags: dict[tuple[str, str], str] | None = None) -> dict[str, Any]:
        """A HelmRelease's status once helm-controller installed its chart (version as declared: in
        ``spec.chart.spec``, or, for ``spec.chartRef`` to an OCIRepository, that repository's ``ref.tag``)."""
        chart_spec = ((release.get("spec") or {}).get("chart") or {}).get("spec") or {}
        chart = chart_spec.get("chart") or release["metadata"]["name"]
        version = str(chart_spec.get("version") or "0.0.0")
        chart_ref = (release.get("spec") or {}).get("chartRef") or {}
        if chart_ref.get("kind") == "OCIRepository":
            ref_ns = chart_ref.get("namespace") or release["metadata"]["namespace"]
            chart = chart_ref.get("name") or chart
            version = (oci_tags or {}).get((ref_ns, chart), version)
        name, ns = release["metadata"]["name"], release["metadata"]["namespace"]
        digest = "sha256:" + hashlib.sha256(f"{chart}{version}".encode()).hexdigest()
        message = f"Helm install succeeded for release {ns}/{name}.v1 with chart {chart}@{version}"
        return {"observedGeneration": 1, "lastAttemptedGeneration": 1, "lastAttemptedRevision": version,
                "lastAttemptedConfigDigest": digest, "lastAttemptedReleaseAction": "install",
                "helmChart": f"{flux_namespace}/{ns}-{name}", "storageNamespace": ns,
                "conditions": [*ready("InstallSucceeded", message),
                               {"type": "Released", "status": "True", "reason": "InstallSucceeded",
                                "message": message, "lastTransitionTime": now, "observedGeneration": 1}],
                "history": [{"name": name, "namespace": ns, "version": 1, "status": "deployed", "chartName": chart,
                             "chartVersion": version, "configDigest": digest, "digest": digest,
                             "firstDeployed": now, "lastDeployed": now}]}

    def _seed(self, system_nodes: int | None, system_vm_size: str | None, gpu_nodes: dict[str, int] | None) -> None:
        # Nodes for every pool platform.yaml declares (declared.py), at the pool's minimum as the ARM seed;
        # explicit ``system_nodes``/``system_vm_size`` win (tests of other shapes).
        from shared.local.sandbox.declared import cluster_pools

        self._cluster_pools = {d.name: d for d in cluster_pools(self.platform.name, self.repository_root)}
        system = self._cluster_pools.get("system")
        self._system_vm_size = system_vm_size or (system.vm_size if system else "Standard_D4ds_v5")
        if system_nodes is None:
            system_nodes = system.min_count if system else 2
        now = iso(utc_now()).split(".")[0] + "Z"
        ns_names = ("default", "kube-system", "kube-public", "kube-node-lease")  # every cluster has these
        for ns in ns_names:
            self._store("v1", "namespaces", {"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                                             "status": {"phase": "Active"}})
        self.scale_pool("system", system_nodes, seeding=True)
        for name, declared in self._cluster_pools.items():
            if name != "system":
                self.scale_pool(name, declared.min_count, seeding=True)
        for pool in self.platform.gpu_pools:
            self.scale_pool(pool.name, (gpu_nodes or {}).get(pool.name, pool.min_count), seeding=True)

        revision = f"{self.platform.gitlab.default_branch}@sha1:{self.revision}"

        def ready(reason: str, message: str, generation: int = 1) -> list[dict[str, Any]]:
            return [{"type": "Ready", "status": "True", "reason": reason, "message": message,
                     "lastTransitionTime": now, "observedGeneration": generation}]

        # The Flux objects and what they apply, as the repository declares them (infra/modules/aks/flux.tf,
        # gitops/clusters/<env>, the kustomize trees they point at): see shared/local/sandbox/declared.py.
        plurals = {(gv, kind): plural for (gv, plural), (kind, _) in self.resources.items()}
        declared = self._declared
        applied: list[tuple[Any, dict[str, Any]]] = []  # (applying Kustomization, object)
        for item in declared:
            applied.extend((item, obj) for obj in item.applies if obj.get("kind") != "Kustomization")
        namespaces = set(ns_names) | {o["metadata"]["name"] for _, o in applied if o["kind"] == "Namespace"}
        namespaces |= {d.namespace for d in declared}
        for ns in sorted(namespaces - set(ns_names)):
            self._store("v1", "namespaces", {"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                                             "status": {"phase": "Active"}})
        for item in declared:
            body = copy.deepcopy(item.body)
            body.pop("status", None)
            if item.kind == "GitRepository":
                path = f"gitrepository/{item.namespace}/{item.name}/{self.revision}.tar.gz"
                body["status"] = {
                    "observedGeneration": 1,
                    "conditions": ready("Succeeded", f"stored artifact for revision '{revision}'"),
                    "artifact": {"revision": revision, "lastUpdateTime": now, "path": path,
                                 "digest": "sha256:" + hashlib.sha256(revision.encode()).hexdigest(),
                                 "url": f"http://source-controller.{item.namespace}.svc.cluster.local./{path}"}}
            else:
                body["status"] = {
                    "observedGeneration": 1, "lastAppliedRevision": revision, "lastAttemptedRevision": revision,
                    "conditions": ready("ReconciliationSucceeded", f"Applied revision: {revision}"),
                    "inventory": {"entries": [{"id": f"{ns}_{name}_{group}_{kind}", "v": "v1"}
                                              for ns, name, group, kind in item.inventory]}}
            self._store(item.api_version, plurals[(item.api_version, item.kind)], body)
        oci_tags = {(o["metadata"].get("namespace") or owner.namespace, o["metadata"]["name"]):
                    str(((o.get("spec") or {}).get("ref") or {}).get("tag") or "0.0.0")
                    for owner, o in applied if o["kind"] == "OCIRepository"}
        for owner, obj in applied:
            plural = plurals.get((obj["apiVersion"], obj["kind"]))
            if plural is None or obj["kind"] == "Namespace":
                continue  # a kind this emulator does not serve: listed in the inventory only
            body = copy.deepcopy(obj)
            meta = body.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            meta["labels"] = {**(meta.get("labels") or {}), "kustomize.toolkit.fluxcd.io/name": owner.name,
                              "kustomize.toolkit.fluxcd.io/namespace": owner.namespace}
            if body["kind"] == "HelmRelease":
                body["status"] = self._released(body, owner.namespace, now, ready, oci_tags)
            elif body["kind"] == "HelmRepository":
                body["status"] = {"observedGeneration": 1, "conditions": ready("Succeeded", "stored artifact")}
            self._store(obj["apiVersion"], plural, body)
        system_node = min(self.objects[("v1", "nodes")], default=("", ""))[1]
        flux_namespace = declared[0].namespace if declared else "flux-system"  # the extension's namespace
        for controller in ("source-controller", "kustomize-controller", "helm-controller", "notification-controller"):
            self._store("v1", "pods", {
                "metadata": {"name": f"{controller}-{sha1_hex(controller)[:10]}-{sha1_hex(controller)[10:15]}",
                             "namespace": flux_namespace, "labels": {"app": controller}},
                "spec": {"nodeName": system_node, "containers": [{
                    "name": "manager", "image": f"ghcr.io/fluxcd/{controller}:v1.5.0"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            })


def _canonical_quantities(node: Any) -> None:
    """Resource quantities as the API server serializes them: strings (a manifest's ``nvidia.com/gpu: 1`` reads
    back as ``"1"``; the official client refuses a number there)."""
    if isinstance(node, list):
        for item in node:
            _canonical_quantities(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "resources" and isinstance(value, dict):
                for part in ("requests", "limits"):
                    if isinstance(value.get(part), dict):
                        value[part] = {k: v if isinstance(v, str) else str(v) for k, v in value[part].items()}
            else:
                _canonical_quantities(value)


def _declared_port(pod: dict[str, Any], name: str | None) -> int | None:
    """The container port named ``name`` (None: the first one declared)."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if name is None or port.get("name") == name:
                return port.get("containerPort")
    return None


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector's ``matchLabels`` against ``labels`` (an empty selector selects every pod, as in policy/v1)."""
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _taint(text: str) -> dict[str, str]:
    """``key=value:Effect`` (as AKS and Terraform write taints) as a Node's ``spec.taints`` item."""
    key_value, _, effect = text.partition(":")
    key, _, value = key_value.partition("=")
    return {"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect}
