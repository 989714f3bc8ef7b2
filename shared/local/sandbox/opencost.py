"""OpenCost's allocation API on loopback (http, as the in-cluster Service serves it).

Contract (opencost pkg/costmodel/aggregation.go ``ComputeAllocationHandler``, router.go ``WrapData``,
core/pkg/opencost/allocation_json.go): ``GET /allocation`` (and the older ``/allocation/compute``) with
``window`` (``7d``, ``24h``, ``30m``, ``today``, ``month``, ``lastmonth`` or ``<RFC 3339>,<RFC 3339>``),
``aggregate`` (comma list of ``cluster``, ``node``, ``namespace``, ``controller``, ``pod``, ``label:<name>``),
``accumulate`` and ``includeIdle``; answers ``{"code": 200, "status": "success", "data": [{name: allocation}]}``
with one set per step (the whole window when accumulated), the idle capacity as ``__idle__`` and workloads
without an aggregated label as ``__unallocated__``. An invalid window or aggregate is a 400 whose body is a
plain-text reason (Go's ``http.Error``).

Seeded with workloads of the sandbox's environment (its GPU pools' serving Deployments, the platform's
services), priced per hour with the OpenCost rates derived from the platform's price file, so the numbers
agree with what the cluster's OpenCost would report. ``now`` is injectable.

In Azure OpenCost answers the app only behind the internal Gateway's SecurityPolicy (gitops/.../monitoring/
opencost-route.yaml): Envoy's JWT filter refuses a request without a token, or with one it cannot verify,
with 401 and a plain-text reason (``Jwt is missing``, ``Jwt verification fails``; Envoy Gateway's JWT
authentication); a verified token without the app role meets the authorization's default Deny, a 403
``RBAC: access denied``. The emulator stands for that route: it admits only ``accepted_tokens`` (the sandbox's
static credential's token) and refuses ``roleless_tokens`` with 403, so tests prove the adapter sends the
credential.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.local.sandbox.base import Emulator, HttpError, Request, Response, bearer_token, utc_now
from shared.platform import PlatformEnvironment


@dataclass(frozen=True)
class Workload:
    namespace: str
    controller: str
    node_size: str
    cpu_cores: float
    ram_gib: float
    gpus: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def pod(self) -> str:
        return f"{self.controller}-0"


#: The serving Deployments' --served-model-name and pod label ``model`` (gitops/apps/base/vllm); a pool's
#: fallback pool serves the same model.
SERVED_MODEL = "platform-llm"


def seed_workloads(platform: PlatformEnvironment) -> list[Workload]:
    """What the cluster runs: a serving pod per GPU pool (one node each) and the platform's services."""
    from shared.services.cost_prices import load

    book = load()
    out = []
    for pool in platform.gpu_pools:
        namespace, _, name = (pool.serving_deployment or f"model-serving/vllm-{pool.name}").partition("/")
        shape = book.price(platform.location, pool.vm_size)
        out.append(Workload(namespace, name, pool.vm_size, shape.vcpus * 0.9, shape.memory_gib * 0.8,
                            shape.gpus, {"team": "inference", "model": SERVED_MODEL, "tenant": "shared"}))
    out += [
        Workload("qdrant", "qdrant", "Standard_D8ds_v5", 2, 8, labels={"team": "search", "tenant": "shared"}),
        Workload("mlflow", "mlflow", "Standard_D8ds_v5", 1, 2, labels={"team": "ml-platform", "tenant": "shared"}),
        Workload("monitoring", "prometheus", "Standard_D4ds_v5", 1, 4, labels={"team": "platform"}),
    ]
    return out


_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_window(text: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """OpenCost's window forms (opencost core/pkg/opencost/window.go ``ParseWindowWithOffset``)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if text == "today":
        return day, now
    if text == "month":
        return day.replace(day=1), now
    if text == "lastmonth":
        end = day.replace(day=1)
        return (end - dt.timedelta(days=1)).replace(day=1), end
    match = _DURATION.match(text)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        return now - dt.timedelta(**{_UNITS[unit]: n}), now
    if "," in text:
        try:
            start, end = (dt.datetime.fromisoformat(p.strip().replace("Z", "+00:00")) for p in text.split(",", 1))
        except ValueError:
            pass
        else:
            if start < end:
                return start, end
    raise HttpError(400, "BadWindow", f"Invalid 'window' parameter: illegal window: {text}")


AGGREGATES = ("cluster", "node", "namespace", "controller", "pod")


class OpenCostEmulator(Emulator):
    name = "opencost"
    tls = False

    #: The audience the sandbox's app asks its token for (platform.yaml cost.opencost.audience in Azure).
    audience = "api://platform-opencost-sandbox"

    def __init__(self, platform: PlatformEnvironment, *, now: Callable[[], dt.datetime] = utc_now,
                 accepted_tokens: frozenset[str] = frozenset({"sandbox-token"}),
                 roleless_tokens: frozenset[str] = frozenset()) -> None:
        self.platform = platform
        self.now = now
        #: Tokens the route's JWT check admits (StaticTokenCredential's by default).
        self.accepted_tokens = accepted_tokens
        #: Tokens that verify but lack the app role (the route's authorization denies them).
        self.roleless_tokens = roleless_tokens
        self.workloads = seed_workloads(platform)
        from shared.services.cost_prices import OPENCOST_REGION, load, opencost_rates

        self.book = load()
        self.rates = opencost_rates(self.book, OPENCOST_REGION)
        super().__init__()

    def routes(self) -> None:
        self.route("GET", r"/allocation(?:/compute)?", self.allocation)
        self.route("GET", r"/healthz", lambda request: Response(200, "ok"))

    def error_body(self, status: int, code: str, message: str) -> Any:
        return message + "\n"  # http.Error: text/plain

    def authenticate(self, request: Request) -> Response | None:
        token = bearer_token(request)
        if not token:
            return Response(401, "Jwt is missing", {"WWW-Authenticate": "Bearer realm=\"opencost\""})
        if token in self.roleless_tokens:
            return Response(403, "RBAC: access denied")
        if token not in self.accepted_tokens:
            return Response(401, "Jwt verification fails",
                            {"WWW-Authenticate": "Bearer realm=\"opencost\", error=\"invalid_token\""})
        return None

    def settings_env(self) -> dict[str, str]:
        return {"OPENCOST_URL": self.base_url, "OPENCOST_AUDIENCE": self.audience}

    # -- the API ----------------------------------------------------------------------------

    def allocation(self, request: Request) -> Response:
        start, end = parse_window(request.query.get("window", ""), self.now())
        keys = [k.strip() for k in request.query.get("aggregate", "").split(",") if k.strip()]
        for key in keys:
            if key not in AGGREGATES and not re.match(r"^label:[\w.\-/]+$", key):
                raise HttpError(400, "BadAggregate", f"Invalid 'aggregate' parameter: unknown property: {key}")
        hours = (end - start).total_seconds() / 3600
        out: dict[str, dict[str, Any]] = {}
        for w in self.workloads:
            name = "/".join(self._value(w, k) for k in keys) or "__all__"
            self._add(out, name, self._allocation(w, hours, start, end), w)
        if request.query.get("includeIdle", "false").lower() == "true":
            self._add(out, "__idle__", self._idle(hours, start, end), None)
        return Response(200, {"code": 200, "status": "success", "data": [out]})

    def _value(self, w: Workload, key: str) -> str:
        if key.startswith("label:"):
            return w.labels.get(key[6:], "__unallocated__")
        return {"cluster": self.platform.cluster_name, "node": f"aks-{w.node_size.lower()}-0",
                "namespace": w.namespace, "controller": w.controller, "pod": w.pod}[key]

    def _allocation(self, w: Workload, hours: float, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        cpu = w.cpu_cores * self.rates.cpu * hours
        ram = w.ram_gib * self.rates.ram * hours
        gpu = w.gpus * self.rates.gpu * hours
        return {"name": "", "properties": {"cluster": self.platform.cluster_name, "namespace": w.namespace},
                "window": {"start": _iso(start), "end": _iso(end)}, "start": _iso(start), "end": _iso(end),
                "minutes": hours * 60, "cpuCores": w.cpu_cores, "cpuCoreHours": w.cpu_cores * hours,
                "cpuCost": cpu, "gpuCount": w.gpus, "gpuHours": w.gpus * hours, "gpuCost": gpu,
                "ramBytes": w.ram_gib * 2**30, "ramByteHours": w.ram_gib * 2**30 * hours, "ramCost": ram,
                "pvCost": 0.0, "networkCost": 0.0, "loadBalancerCost": 0.0, "sharedCost": 0.0,
                "externalCost": 0.0, "totalCost": cpu + ram + gpu}

    def _idle(self, hours: float, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        """One idle GPU on the largest GPU pool and a spare CPU node: what min_count and headroom cost."""
        idle_gpu = min(1.0, max((p.gpus_per_node for p in self.platform.gpu_pools), default=0))
        w = Workload("", "", "", 4.0, 16.0, idle_gpu)
        idle = self._allocation(w, hours, start, end)
        idle["properties"] = {"cluster": self.platform.cluster_name}
        return idle

    @staticmethod
    def _add(out: dict[str, dict[str, Any]], name: str, alloc: dict[str, Any], w: Workload | None) -> None:
        if name in out:
            for key in ("cpuCost", "gpuCost", "ramCost", "totalCost", "gpuHours", "cpuCoreHours", "ramByteHours"):
                out[name][key] += alloc[key]
            return
        alloc["name"] = name
        if w is not None and name != "__idle__":
            alloc["properties"]["labels"] = dict(w.labels)
        out[name] = alloc


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
