"""Kubernetes API server emulator: enough of it for the automations, seeded like a dev AKS cluster.

Served: discovery (``/version``, ``/api``, ``/apis``), and every registered resource generically,
core (``/api/v1/...``) and grouped (``/apis/{group}/{version}/...``), namespaced or cluster-scoped:
GET, LIST (``labelSelector``, ``fieldSelector`` on metadata, ``limit``/``continue``), POST, PUT,
PATCH (merge and strategic-merge, both applied as JSON merge patch), DELETE, and the ``status``
subresource. ``metadata.resourceVersion`` is one cluster-wide counter; ``metadata.generation``
moves only when ``spec`` changes, as the real API server does.

Flux is simulated: setting ``reconcile.fluxcd.io/requestedAt`` on a Flux object, or changing its
spec, is "handled" after ``reconcile_delay`` seconds (0 = at once): ``status.lastHandledReconcileAt``
takes the annotation's value and ``observedGeneration`` catches up with ``generation``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import threading
import uuid
from typing import Any

from shared.local.sandbox.base import Emulator, HttpError, Request, Response, bearer_token, iso, utc_now
from shared.platform import PlatformEnvironment

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FLUX_GROUPS = ("source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io")

# (group/version or "v1", plural) -> (kind, namespaced)
BUILTIN_RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "nodes"): ("Node", False),
    ("v1", "namespaces"): ("Namespace", False),
    ("v1", "pods"): ("Pod", True),
    ("v1", "configmaps"): ("ConfigMap", True),
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
}

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - a git-like id, not security


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


def _field_matches(obj: dict[str, Any], selector: str | None) -> bool:
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        negate = "!=" in term
        path, _, value = term.partition("!=" if negate else "=")
        value = value.lstrip("=")
        node: Any = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if (str(node) == value if node is not None else value == "") == negate:
            return False
    return True


class KubernetesEmulator(Emulator):
    name = "kubernetes"

    def __init__(self, platform: PlatformEnvironment, *, tls: bool = False, reconcile_delay: float = 0.0,
                 simulate_flux: bool = True, revision: str | None = None, gpu_nodes: dict[str, int] | None = None,
                 system_nodes: int = 2, system_vm_size: str = "Standard_D4ds_v5",
                 kubernetes_version: str = "v1.32.4") -> None:
        self.tls = tls
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
        #: Set by the sandbox: the default branch's head in the GitLab emulator (Flux fetches it on reconcile).
        self.source_head: Any = None
        super().__init__()
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
            obj = self.objects.get((api_version, plural), {}).get((namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def put_object(self, obj: dict[str, Any], plural: str) -> dict[str, Any]:
        """Create or replace an object directly (seeding, or simulating a change made by someone else)."""
        with self.lock:
            return self._store(obj["apiVersion"], plural, copy.deepcopy(obj), replace=True)

    def scale_pool(self, pool: str, count: int) -> None:
        """Make the nodes of an agent pool match ``count`` (what AKS does after a scale)."""
        with self.lock:
            nodes = self.objects.setdefault(("v1", "nodes"), {})
            existing = sorted(k for k, n in nodes.items()
                              if n["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == pool)
            for key in existing[count:]:
                del nodes[key]
            template = self._pool_template(pool)
            for i in range(len(existing), count):
                self._store("v1", "nodes", self._node(pool, i, *template), replace=True)

    def _control(self, request: Request) -> Response:
        """Besides faults: ``POST /_sandbox/drift`` ``{"kind": "kustomizations", "name": "apps",
        "suspend": true}`` or ``{"name": "apps", "fail": "kustomize build failed"}`` (Ready=False) or
        ``{"name": "apps", "stalled": "..."}``: the Flux states drift detection reports."""
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
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
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
        selector = LabelSelector(request.query.get("labelSelector"))
        items = sorted(
            (key, obj) for key, obj in self.objects.get((gv, plural), {}).items()
            if (not ns or key[0] == ns) and selector.matches(obj["metadata"].get("labels"))
            and _field_matches(obj, request.query.get("fieldSelector"))
        )
        start = 0
        if request.query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(request.query["continue"].encode()))
                start = int(token["start"])
            except (ValueError, KeyError, TypeError):
                raise HttpError(400, "BadRequest", "continue key is not valid") from None
        limit = int(request.query.get("limit") or 0)
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
            updated = copy.deepcopy(current)
            updated["status"] = body.get("status")
        else:
            updated = body
            updated["metadata"] = {**body.get("metadata", {}), "name": name}
            if "status" in current:
                updated["status"] = current["status"]  # status is written through the subresource only
        return Response(200, copy.deepcopy(self._update(gv, plural, current, updated)))

    def patch_object(self, request: Request) -> Response:
        gv, plural, _, _, ns = self._resource(request)
        name = request.params["name"]
        current = self._existing(gv, plural, ns, name)
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise HttpError(415, "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted media types include: "
                            "application/merge-patch+json, application/strategic-merge-patch+json "
                            f"(got {content_type!r})")
        patch = self._body(request)
        self._check_version(gv, plural, name, current, patch.get("metadata", {}).get("resourceVersion"))
        if request.params.get("sub") == "status":
            patch = {"status": patch.get("status")} if "status" in patch else {}
        updated = merge_patch(copy.deepcopy(current), patch)
        updated["metadata"]["name"] = name
        return Response(200, copy.deepcopy(self._update(gv, plural, current, updated)))

    def delete_object(self, request: Request) -> Response:
        gv, plural, _, _, ns = self._resource(request)
        name = request.params["name"]
        obj = self._existing(gv, plural, ns, name)
        del self.objects[(gv, plural)][(ns, name)]
        self._rv += 1
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
            self._deployment_controller(obj)
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
        now = iso(utc_now()).split(".")[0] + "Z"
        for cond in status.get("conditions", []):
            if cond.get("type") == "Ready":
                cond.update(status="True", lastTransitionTime=now, observedGeneration=status["observedGeneration"])
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    @staticmethod
    def _deployment_controller(obj: dict[str, Any]) -> None:
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        status = obj.setdefault("status", {})
        ready = min(status.get("readyReplicas", replicas), replicas)
        status.update(observedGeneration=obj["metadata"].get("generation", 1), replicas=replicas,
                      updatedReplicas=replicas, readyReplicas=ready, availableReplicas=ready)

    # -- seed ---------------------------------------------------------------------------------

    def _pool_template(self, pool: str) -> tuple[str, str, dict[str, str], list[dict[str, str]], dict[str, str]]:
        if pool == "system":
            return ("System", self._system_vm_size, {}, [{"key": "CriticalAddonsOnly", "value": "true",
                                                          "effect": "NoSchedule"}], {})
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
                "nodeInfo": {"kubeletVersion": self.kubernetes_version, "osImage": "Ubuntu 22.04.5 LTS",
                             "containerRuntimeVersion": "containerd://1.7.27-1", "architecture": "amd64"},
            },
        }

    def _seed(self, system_nodes: int, system_vm_size: str, gpu_nodes: dict[str, int] | None) -> None:
        self._system_vm_size = system_vm_size
        now = iso(utc_now()).split(".")[0] + "Z"
        ns_names = ("default", "kube-system", "flux-system", "inference", "ingress-nginx", "cert-manager",
                    "monitoring")
        for ns in ns_names:
            self._store("v1", "namespaces", {"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                                             "status": {"phase": "Active"}})
        self.scale_pool("system", system_nodes)
        for pool in self.platform.gpu_pools:
            self.scale_pool(pool.name, (gpu_nodes or {}).get(pool.name, pool.min_count))

        revision = f"{self.platform.gitlab.default_branch}@sha1:{self.revision}"

        def ready(reason: str, message: str, generation: int = 1) -> list[dict[str, Any]]:
            return [{"type": "Ready", "status": "True", "reason": reason, "message": message,
                     "lastTransitionTime": now, "observedGeneration": generation}]

        host = self.platform.gitlab.url.split("://", 1)[-1].rstrip("/")
        self._store("source.toolkit.fluxcd.io/v1", "gitrepositories", {
            "metadata": {"name": "flux-system", "namespace": "flux-system"},
            "spec": {"interval": "1m0s", "url": f"ssh://git@{host}/{self.platform.gitlab.project}.git",
                     "ref": {"branch": self.platform.gitlab.default_branch}, "secretRef": {"name": "flux-system"},
                     "timeout": "60s"},
            "status": {"observedGeneration": 1, "conditions": ready("Succeeded", f"stored artifact for revision "
                                                                                 f"'{revision}'"),
                       "artifact": {"revision": revision, "digest": "sha256:" + hashlib.sha256(
                           revision.encode()).hexdigest(), "lastUpdateTime": now,
                           "path": f"gitrepository/flux-system/flux-system/{self.revision}.tar.gz",
                           "url": f"http://source-controller.flux-system.svc.cluster.local./gitrepository/"
                                  f"flux-system/flux-system/{self.revision}.tar.gz"}},
        })
        base = self.platform.gitlab.gitops_path
        layers = (
            ("flux-system", f"./{base}", [], [("flux-system", "flux-system", "kustomize.toolkit.fluxcd.io",
                                               "Kustomization")]),
            ("infra-controllers", "./gitops/infrastructure/controllers", [], [
                ("ingress-nginx", "ingress-nginx", "helm.toolkit.fluxcd.io", "HelmRelease"),
                ("cert-manager", "cert-manager", "helm.toolkit.fluxcd.io", "HelmRelease"),
                ("monitoring", "kube-prometheus-stack", "helm.toolkit.fluxcd.io", "HelmRelease")]),
            ("infra-configs", "./gitops/infrastructure/configs", ["infra-controllers"], [
                ("", "letsencrypt", "cert-manager.io", "ClusterIssuer")]),
            ("apps", f"./gitops/apps/{self.platform.name}", ["infra-configs"], [
                ("inference", "vllm", "apps", "Deployment"), ("inference", "vllm", "", "Service")]),
        )
        for name, path, depends, inventory in layers:
            self._store("kustomize.toolkit.fluxcd.io/v1", "kustomizations", {
                "metadata": {"name": name, "namespace": "flux-system",
                             "labels": {"platform.example.com/layer": name.split("-")[0]}},
                "spec": {"interval": "10m0s", "path": path, "prune": True, "wait": True, "timeout": "5m0s",
                         "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                         "dependsOn": [{"name": d} for d in depends]},
                "status": {"observedGeneration": 1, "lastAppliedRevision": revision,
                           "lastAttemptedRevision": revision,
                           "conditions": ready("ReconciliationSucceeded", f"Applied revision: {revision}"),
                           "inventory": {"entries": [{"id": f"{ns}_{n}_{g}_{k}", "v": "v1"}
                                                     for ns, n, g, k in inventory]}},
            })
        charts = (
            ("ingress-nginx", "ingress-nginx", "ingress-nginx", "4.12.1", "1.12.1",
             "https://kubernetes.github.io/ingress-nginx"),
            ("cert-manager", "cert-manager", "cert-manager", "v1.17.2", "v1.17.2", "https://charts.jetstack.io"),
            ("kube-prometheus-stack", "monitoring", "kube-prometheus-stack", "72.6.2", "v0.82.2",
             "https://prometheus-community.github.io/helm-charts"),
        )
        for name, ns, chart, version, app_version, repo_url in charts:
            self._store("source.toolkit.fluxcd.io/v1", "helmrepositories", {
                "metadata": {"name": chart, "namespace": "flux-system"},
                "spec": {"interval": "24h", "url": repo_url},
                "status": {"observedGeneration": 1, "conditions": ready("Succeeded", "stored artifact")},
            })
            digest = "sha256:" + hashlib.sha256(f"{chart}{version}".encode()).hexdigest()
            message = f"Helm install succeeded for release {ns}/{name}.v1 with chart {chart}@{version}"
            self._store("helm.toolkit.fluxcd.io/v2", "helmreleases", {
                "metadata": {"name": name, "namespace": ns, "labels": {"kustomize.toolkit.fluxcd.io/name":
                                                                       "infra-controllers"}},
                "spec": {"interval": "30m", "releaseName": name, "driftDetection": {"mode": "enabled"},
                         "chart": {"spec": {"chart": chart, "version": version, "sourceRef": {
                             "kind": "HelmRepository", "name": chart, "namespace": "flux-system"}}},
                         "install": {"crds": "CreateReplace"}, "upgrade": {"crds": "CreateReplace"}},
                "status": {"observedGeneration": 1, "lastAttemptedGeneration": 1, "lastAttemptedRevision": version,
                           "lastAttemptedConfigDigest": digest, "lastAttemptedReleaseAction": "install",
                           "helmChart": f"flux-system/{ns}-{name}", "storageNamespace": ns,
                           "conditions": [*ready("InstallSucceeded", message),
                                          {"type": "Released", "status": "True", "reason": "InstallSucceeded",
                                           "message": message, "lastTransitionTime": now, "observedGeneration": 1}],
                           "history": [{"name": name, "namespace": ns, "version": 1, "status": "deployed",
                                        "chartName": chart, "chartVersion": version, "appVersion": app_version,
                                        "configDigest": digest, "digest": digest, "firstDeployed": now,
                                        "lastDeployed": now}]},
            })
        gpu_pool = self.platform.gpu_pools[0] if self.platform.gpu_pools else None
        selector = {"app.kubernetes.io/name": "vllm"}
        pod_spec: dict[str, Any] = {"containers": [{
            "name": "vllm", "image": "vllm/vllm-openai:v0.9.1",
            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
            "ports": [{"containerPort": 8000, "name": "http"}],
            "resources": {"limits": {"nvidia.com/gpu": "1"}} if gpu_pool and gpu_pool.vendor == "nvidia"
            else {"limits": {"amd.com/gpu": "1"}}}]}
        if gpu_pool:
            pod_spec["nodeSelector"] = {"kubernetes.azure.com/agentpool": gpu_pool.name}
            pod_spec["tolerations"] = [{"key": "nvidia.com/gpu" if gpu_pool.vendor == "nvidia" else "amd.com/gpu",
                                        "operator": "Exists", "effect": "NoSchedule"}]
        self._store("apps/v1", "deployments", {
            "metadata": {"name": "vllm", "namespace": "inference", "labels": {
                **selector, "kustomize.toolkit.fluxcd.io/name": "apps",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": selector}, "spec": pod_spec}},
            "status": {"readyReplicas": 0},
        })
        gpu_nodes_ready = gpu_pool is not None and any(
            n["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == gpu_pool.name
            for n in self.objects[("v1", "nodes")].values())
        self._store("v1", "pods", {
            "metadata": {"name": "vllm-7d9c8b6f5d-x2k4p", "namespace": "inference", "labels": selector},
            "spec": pod_spec,
            "status": {"phase": "Running" if gpu_nodes_ready else "Pending",
                       "conditions": [] if gpu_nodes_ready else [{
                           "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                           "message": "0/2 nodes are available: 2 node(s) had untolerated taint "
                                      "{CriticalAddonsOnly: true}."}]},
        })
        system_node = min(self.objects[("v1", "nodes")], default=("", ""))[1]
        for controller in ("source-controller", "kustomize-controller", "helm-controller", "notification-controller"):
            self._store("v1", "pods", {
                "metadata": {"name": f"{controller}-{sha1_hex(controller)[:10]}-{sha1_hex(controller)[10:15]}",
                             "namespace": "flux-system", "labels": {"app": controller}},
                "spec": {"nodeName": system_node, "containers": [{
                    "name": "manager", "image": f"ghcr.io/fluxcd/{controller}:v1.5.0"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            })
        self._store("v1", "configmaps", {
            "metadata": {"name": "platform-facts", "namespace": "flux-system"},
            "data": {"environment": self.platform.name, "location": self.platform.location,
                     "cluster": self.platform.cluster_name},
        })
