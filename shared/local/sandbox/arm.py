"""An Azure Resource Manager emulator for the one resource provider we drive: Microsoft.ContainerService.

It speaks the REST contract azure-mgmt-containerservice uses (paths, ``api-version``, ARM's error
envelope, ``nextLink`` paging, ``properties.eTag`` + ``If-Match``, the ``Azure-AsyncOperation`` long-
running-operation protocol) and enforces the rules that shape our scaling code:

- one operation per pool at a time (a second PUT answers 409 OperationNotAllowed "in progress");
- autoscaler-enabled pools refuse a changed ``count``; min/max bounds are validated; raising ``minCount``
  above ``count`` leaves ``count`` alone in the PUT: an emulated cluster autoscaler moves it into
  ``[minCount, maxCount]`` ``autoscaler_delay`` seconds after the operation ends (and a linked Kubernetes
  emulator gets the nodes);
- per-VM-family and total regional core quota, refused as AKS's preflight check does (``QuotaExceeded``,
  "exceeding approved standardNCADSH100v5Family Cores quota" / "... Total Regional Cores quota");
- every call needs ``Authorization: Bearer <token>``.

``listClusterUserCredential`` answers a kubeconfig as an Entra ID cluster with local accounts disabled
does: the server URL, the cluster CA and a kubelogin exec (or, with ``format=azure``, auth-provider)
user stanza, with no secret in it. The server is the cluster's FQDN unless a test points it at a
Kubernetes emulator with ``set_api_server``.

The estate is seeded from the platform facts (``infra/envs/<env>/platform.yaml``), so the sandbox and
the tests see the same pools Terraform declares.
"""

from __future__ import annotations

import base64
import copy
import re
import threading
import time
import uuid
from typing import Any

from shared.local.sandbox.base import (
    Emulator,
    HttpError,
    Request,
    Response,
    SandboxCA,
    bearer_token,
    iso,
    utc_now,
)
from shared.platform import PlatformEnvironment

_PROVIDER = "Microsoft.ContainerService"
_CLUSTER_PATH = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"(?i:Microsoft\.ContainerService)/(?i:managedClusters)/(?P<cluster>[^/]+)"
)
# ARM's api-versions are date-shaped, with an optional -preview suffix; anything else is malformed.
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
#: The api-versions this emulator serves for managedClusters and agentPools: what the pinned
#: azure-mgmt-containerservice (41.8.0) sends. Any other is refused as ARM refuses a version the resource
#: provider does not register (400 NoRegisteredProviderFound), so that an SDK upgrade shows up here first
#: (tests/integration/test_emulators.py checks that the installed SDK sends one of these).
ACCEPTED_API_VERSIONS = ("2026-08-01",)
_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")  # AKS: lower-case alphanumerics, 1-12, letter first
_OPERATION_API_VERSION = "2016-03-30"  # what AKS puts in its Azure-AsyncOperation URLs
_GPU_TAINTS = {"nvidia": "nvidia.com/gpu=present:NoSchedule", "amd": "amd.com/gpu=present:NoSchedule"}
_UNLIMITED = 1_000_000
#: kubelogin's ids, as AKS writes them into Entra ID kubeconfigs (public, not secrets).
_AKS_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
_AZURE_CLI_CLIENT_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"


def vm_family(vm_size: str) -> str:
    """The compute quota a VM size counts against, spelled as Azure's quota errors and ``az vm list-usage``
    spell it: the series letters upper-cased, the family joined to "Family" with no space.

    Standard_NC40ads_H100_v5 -> 'standardNCADSH100v5Family' (as in "exceeding approved standardDASv5Family
    Cores quota", https://github.com/Azure/karpenter-provider-azure/issues/192 and
    https://github.com/cilium/cilium/issues/31859, "approved standardBSFamily Cores quota").
    """
    parts = vm_size.split("_")[1:] if vm_size.lower().startswith("standard_") else vm_size.split("_")
    if not parts:
        return vm_size
    series = re.sub(r"\d+", "", parts[0]).upper()  # the vCPU count is not part of the family
    return "standard" + series + "".join(parts[1:]) + "Family"


#: The subscription-wide quota every VM size also counts against.
TOTAL_REGIONAL = "Total Regional"


def vm_cores(vm_size: str) -> int:
    """vCPUs of a VM size, read from its name (Standard_ND96isr_MI300X_v5 -> 96)."""
    parts = vm_size.split("_")
    first = parts[1] if len(parts) > 1 and parts[0].lower() == "standard" else parts[0]
    match = re.search(r"\d+", first)
    return int(match.group(0)) if match else 1


class ArmEmulator(Emulator):
    name = "arm"
    tls = True  # azure-core refuses to send bearer tokens over http

    #: Pools per page in list answers: small so that every test exercises ``nextLink``.
    page_size = 2

    def __init__(
        self,
        platform: PlatformEnvironment,
        *,
        operation_seconds: float = 0.0,
        private_cluster: bool = False,
        kubernetes_version: str = "1.32.6",
        autoscaler_delay: float = 0.0,
    ) -> None:
        self.platform = platform
        #: Seconds after an operation ends before the emulated cluster autoscaler moves ``count`` into
        #: ``[minCount, maxCount]`` (the real one reacts in ~10 s, then nodes take minutes).
        self.autoscaler_delay = autoscaler_delay
        #: Set by ``link_kubernetes``: the API server emulator whose nodes follow the pools' counts.
        self._kubernetes: Any = None
        self._timers: list[threading.Timer] = []
        #: (pool, reason) each time the emulated autoscaler could not scale (a quota), oldest first.
        self.autoscaler_events: list[tuple[str, str]] = []
        #: How long a PUT's operation stays InProgress; 0 = it completes on the first read after the PUT.
        self.operation_seconds = operation_seconds
        #: Tokens accepted; None = any non-empty bearer token (tests narrow it to exercise 401).
        self.accepted_tokens: set[str] | None = None
        #: vm size prefix (or family name) -> approved cores in the region.
        self.quotas: dict[str, int] = {}
        #: api-version values clients sent, to notice when an SDK upgrade moves it.
        self.api_versions: set[str] = set()
        #: operation id -> {"pool", "started", "status", "error", "final": props to apply}
        self.operations: dict[str, dict[str, Any]] = {}
        #: Set by ``fail_next_operation``: the next accepted PUT's operation ends Failed with this error.
        self._next_failure: dict[str, str] | None = None
        #: Set by ``set_api_server``: (url, CA PEM) the user kubeconfig advertises instead of the FQDN.
        self._api_server: tuple[str, bytes] | None = None
        #: The CA PEM advertised by default: the one this emulator serves with (known after ``start``).
        self._default_ca_pem = b""
        self._initial = (operation_seconds, private_cluster, kubernetes_version, autoscaler_delay)
        self._pools: dict[str, dict[str, Any]] = {}
        self._cluster = self._seed_cluster(private_cluster, kubernetes_version)
        super().__init__()

    def reset(self, *, private_cluster: bool | None = None) -> None:
        """Back to the seeded estate (pools, operations, quotas, faults, request log), keeping the port.

        Restarting a server costs ~0.5 s (``shutdown`` polls); tests share one emulator and reset it.
        """
        operation_seconds, private, version, autoscaler_delay = self._initial
        with self.lock:
            self._cancel_timers()
            self.autoscaler_events.clear()
            self.operation_seconds = operation_seconds
            self.autoscaler_delay = autoscaler_delay
            self.accepted_tokens = None
            self.quotas.clear()
            self.api_versions.clear()
            self.operations.clear()
            self._next_failure = None
            self._api_server = None
            self.faults.clear()
            self.requests.clear()
            self._pools = {}
            self._cluster = self._seed_cluster(private if private_cluster is None else private_cluster, version)

    # -- seed -------------------------------------------------------------------------------

    def _seed_cluster(self, private: bool, version: str) -> dict[str, Any]:
        p = self.platform
        suffix = uuid.uuid5(uuid.NAMESPACE_DNS, p.cluster_name).hex[:8]
        dns_prefix = f"{p.cluster_name}-dns"
        fqdn = f"{dns_prefix}-{suffix}.hcp.{p.location}.azmk8s.io"
        cluster: dict[str, Any] = {
            "id": self._cluster_id(),
            "location": p.location,
            "name": p.cluster_name,
            "type": f"{_PROVIDER}/ManagedClusters",
            "tags": {"environment": p.name, "managed-by": "terraform"},
            "sku": {"name": "Base", "tier": "Standard"},
            "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": p.tenant_id},
            "properties": {
                "provisioningState": "Succeeded",
                "powerState": {"code": "Running"},
                "kubernetesVersion": version.rsplit(".", 1)[0],
                "currentKubernetesVersion": version,
                "dnsPrefix": dns_prefix,
                "fqdn": fqdn,
                "azurePortalFQDN": f"{dns_prefix}-{suffix}.portal.hcp.{p.location}.azmk8s.io",
                "nodeResourceGroup": f"MC_{p.resource_group}_{p.cluster_name}_{p.location}",
                "enableRBAC": True,
                "disableLocalAccounts": True,
                "aadProfile": {"managed": True, "enableAzureRBAC": True, "tenantID": p.tenant_id},
                "oidcIssuerProfile": {"enabled": True,
                                      "issuerURL": f"https://{p.location}.oic.prod-aks.azure.com/{p.tenant_id}/"},
                "securityProfile": {"workloadIdentity": {"enabled": True}},
                "networkProfile": {"networkPlugin": "azure", "networkPluginMode": "overlay",
                                   "podCidr": "10.244.0.0/16", "serviceCidr": "10.0.0.0/16",
                                   "dnsServiceIP": "10.0.0.10", "outboundType": "loadBalancer",
                                   "loadBalancerSku": "standard"},
                "apiServerAccessProfile": {"enablePrivateCluster": private},
                "maxAgentPools": 100,
            },
        }
        if private:
            cluster["properties"]["privateFQDN"] = f"{dns_prefix}-{suffix}.privatelink.{p.location}.azmk8s.io"
            cluster["properties"].pop("fqdn")
        # The system and CPU pools as infra/modules/aks makes them from platform.yaml (declared.py): autoscaled,
        # at their minimum (the autoscaler's floor), with the Terraform's taints and labels.
        from shared.local.sandbox.declared import cluster_pools

        declared = {d.name: d for d in cluster_pools(p.name)}
        if "system" not in declared:  # no platform file for this environment: a minimal system pool
            self._pools["system"] = self._new_pool(
                "system", mode="System", vmSize="Standard_D4ds_v5", count=2, enableAutoScaling=True,
                minCount=2, maxCount=3, nodeTaints=["CriticalAddonsOnly=true:NoSchedule"],
                nodeLabels={"kubernetes.azure.com/mode": "system"}, orchestratorVersion=version,
            )
        for d in declared.values():
            labels = {"kubernetes.azure.com/mode": "system"} if d.mode == "System" else {}
            self._pools[d.name] = self._new_pool(
                d.name, mode=d.mode, vmSize=d.vm_size, count=d.min_count, enableAutoScaling=True,
                minCount=d.min_count, maxCount=d.max_count, nodeTaints=list(d.taints),
                nodeLabels={**labels, **dict(d.labels)}, availabilityZones=list(d.zones) or ["1", "2", "3"],
                osSKU="AzureLinux", osDiskType="Ephemeral", orchestratorVersion=version,
            )
        prefix = self.platform.node_label_prefix
        for gpu in self.platform.gpu_pools:
            props: dict[str, Any] = {
                "mode": "User", "vmSize": gpu.vm_size, "count": gpu.min_count,
                # As infra/modules/aks declares them: the autoscaler owns the count, the automation
                # moves min_count within platform.yaml's bounds.
                "enableAutoScaling": True, "minCount": gpu.min_count, "maxCount": gpu.max_count,
                "nodeTaints": [_GPU_TAINTS.get(gpu.vendor, _GPU_TAINTS["nvidia"])],
                # The labels infra/modules/aks sets on GPU pools, under the platform's prefix.
                "nodeLabels": {f"{prefix}/gpu-pool": gpu.name, f"{prefix}/gpu-vendor": gpu.vendor,
                               f"{prefix}/gpus-per-node": str(gpu.gpus_per_node), f"{prefix}/workload": "inference",
                               f"{prefix}/inference-queue": gpu.inference_queue},
                "scaleDownMode": "Deallocate", "orchestratorVersion": version,
            }
            if gpu.mig_profile:
                props["gpuInstanceProfile"] = gpu.mig_profile
            self._pools[gpu.name] = self._new_pool(gpu.name, **props)
        return cluster

    def _new_pool(self, name: str, **props: Any) -> dict[str, Any]:
        base = {
            "eTag": str(uuid.uuid4()),
            "count": 1, "vmSize": "Standard_D4ds_v5", "osDiskSizeGB": 128, "osDiskType": "Managed",
            "kubeletDiskType": "OS", "maxPods": 110, "type": "VirtualMachineScaleSets",
            "availabilityZones": ["1", "2", "3"], "enableAutoScaling": False, "scaleDownMode": "Delete",
            "provisioningState": "Succeeded", "powerState": {"code": "Running"},
            "orchestratorVersion": "1.32.6",
            "currentOrchestratorVersion": props.get("orchestratorVersion", "1.32.6"),
            "enableNodePublicIP": False, "nodeLabels": {}, "nodeTaints": [], "mode": "User",
            "osType": "Linux", "osSKU": "Ubuntu",
            "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202507.21.0",
            "upgradeSettings": {"maxSurge": "10%"}, "enableFIPS": False,
        }
        base.update(props)
        return {"id": f"{self._cluster_id()}/agentPools/{name}", "name": name,
                "type": f"{_PROVIDER}/managedClusters/agentPools", "properties": base}

    def _cluster_id(self) -> str:
        p = self.platform
        return (f"/subscriptions/{p.subscription_id}/resourcegroups/{p.resource_group}/providers/"
                f"{_PROVIDER}/managedClusters/{p.cluster_name}")

    # -- helpers for tests and the sandbox ---------------------------------------------------

    def settings_env(self) -> dict[str, str]:
        return {"ARM_ENDPOINT": self.base_url}

    def pool(self, name: str) -> dict[str, Any]:
        """A copy of the pool's ARM resource (``properties`` holds the fields)."""
        with self.lock:
            self._settle()
            return copy.deepcopy(self._pools[name])

    def set_pool(self, name: str, **fields: Any) -> dict[str, Any]:
        """Change a pool's properties behind the API's back (as the autoscaler or a human would)."""
        with self.lock:
            props = self._pools[name]["properties"]
            props.update(fields)
            props["eTag"] = str(uuid.uuid4())
            return copy.deepcopy(self._pools[name])

    def set_quota(self, quota: str, cores: int) -> None:
        """Approved cores for a quota: a family as Azure names it (``vm_family``, e.g.
        'standardNCADSH100v5Family'), VM sizes starting with a prefix, or ``TOTAL_REGIONAL``."""
        with self.lock:
            self.quotas[quota] = cores

    def link_kubernetes(self, kubernetes: Any) -> None:
        """Keep this Kubernetes emulator's nodes in step with the pools' counts when they change."""
        with self.lock:
            self._kubernetes = kubernetes

    def stop(self) -> None:
        with self.lock:
            self._cancel_timers()
        super().stop()

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def set_api_server(self, url: str, ca_pem: bytes) -> None:
        """Advertise this API server URL and cluster CA (PEM) in ``listClusterUserCredential``."""
        with self.lock:
            self._api_server = (url, bytes(ca_pem))

    def start(self, ca: SandboxCA | None = None, port: int = 0) -> str:
        if ca is not None:
            self._default_ca_pem = ca.ca_path.read_bytes()
        return super().start(ca, port)

    def fail_next_operation(self, code: str = "InternalOperationError", message: str = "injected") -> None:
        """The next accepted PUT's operation ends Failed with this error (e.g. a late allocation failure)."""
        with self.lock:
            self._next_failure = {"code": code, "message": message}

    def _control(self, request: Request) -> Response:
        """Besides faults: ``POST /_sandbox/drift`` ``{"pool": "h100", "maxCount": 8}`` changes a pool's
        properties as a portal edit would (``{"cluster": {"kubernetesVersion": "1.33"}}`` the cluster's)."""
        if request.path == "/_sandbox/drift" and request.method == "POST":
            body = request.json() or {}
            if not isinstance(body, dict):
                return Response(400, {"error": "expected a JSON object"})
            if isinstance(body.get("cluster"), dict):
                with self.lock:
                    self._cluster["properties"].update(body["cluster"])
                return Response(200, copy.deepcopy(self._cluster))
            name = body.pop("pool", None)
            if name not in self._pools:
                return Response(404, {"error": f"no pool {name!r}"})
            return Response(200, self.set_pool(name, **body))
        return super()._control(request)

    # -- framework hooks ----------------------------------------------------------------------

    def routes(self) -> None:
        self.route("GET", _CLUSTER_PATH, self.get_cluster)
        self.route("POST", _CLUSTER_PATH + r"/listClusterUserCredential", self.list_user_credentials)
        self.route("GET", _CLUSTER_PATH + r"/agentPools", self.list_pools)
        self.route("GET", _CLUSTER_PATH + r"/agentPools/(?P<pool>[^/]+)", self.get_pool)
        self.route("PUT", _CLUSTER_PATH + r"/agentPools/(?P<pool>[^/]+)", self.put_pool)
        self.route("POST", _CLUSTER_PATH + r"/agentPools/(?P<pool>[^/]+)/deleteMachines", self.delete_machines)
        ops = (r"/subscriptions/(?P<sub>[^/]+)/providers/(?i:Microsoft\.ContainerService)"
               r"/locations/(?P<loc>[^/]+)")
        self.route("GET", ops + r"/operations/(?P<op>[^/]+)", self.get_operation)
        self.route("GET", ops + r"/operationresults/(?P<op>[^/]+)", self.get_operation_result)

    def authenticate(self, request: Request) -> Response | None:
        token = bearer_token(request)
        if not token:
            return self._auth_failure("AuthenticationFailed",
                                      "Authentication failed. The 'Authorization' header is missing.",
                                      "The authentication failed because of missing 'Authorization' header.")
        if self.accepted_tokens is not None and token not in self.accepted_tokens:
            return self._auth_failure("InvalidAuthenticationToken",
                                      "The access token is invalid.", "The access token is invalid.")
        return None

    def _auth_failure(self, code: str, message: str, description: str) -> Response:
        header = (f'Bearer authorization_uri="https://login.microsoftonline.com/{self.platform.tenant_id}", '
                  f'error="invalid_token", error_description="{description}"')
        return Response(401, self.error_body(401, code, message), {"WWW-Authenticate": header})

    def dispatch(self, request: Request) -> Response:
        # Every ARM answer carries a request id; the SDK logs it and support asks for it.
        response = super().dispatch(request)
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        response.headers.setdefault("x-ms-correlation-request-id", str(uuid.uuid4()))
        return response

    # -- handlers -----------------------------------------------------------------------------

    def _check(self, request: Request, *, api_version: bool = True,
               accepted: tuple[str, ...] = ACCEPTED_API_VERSIONS, resource_type: str = "managedClusters") -> None:
        p = self.platform
        if api_version:
            version = request.query.get("api-version")
            if not version:
                raise HttpError(400, "MissingApiVersionParameter", "The api-version query parameter "
                                "(?api-version=) is required for all requests.")
            if not _API_VERSION.match(version):
                raise HttpError(400, "InvalidApiVersionParameter",
                                f"The api-version '{version}' is invalid. The supported versions are "
                                f"'{','.join(accepted)}'.")
            if version not in accepted:
                # ARM's answer for a version the provider does not register for the type
                # (https://github.com/Azure/azure-cli/issues/28368).
                raise HttpError(400, "NoRegisteredProviderFound",
                                f"No registered resource provider found for location '{p.location}' and API "
                                f"version '{version}' for type '{resource_type}'. The supported api-versions "
                                f"are '{', '.join(accepted)}'. The supported locations are '{p.location}'.")
            self.api_versions.add(version)
        if request.params.get("sub", "").lower() != p.subscription_id.lower():
            raise HttpError(404, "SubscriptionNotFound",
                            f"The subscription '{request.params.get('sub')}' could not be found.")
        if "rg" in request.params and request.params["rg"].lower() != p.resource_group.lower():
            raise HttpError(404, "ResourceGroupNotFound",
                            f"Resource group '{request.params['rg']}' could not be found.")
        if "cluster" in request.params and request.params["cluster"].lower() != p.cluster_name.lower():
            raise HttpError(404, "ResourceNotFound",
                            f"The Resource '{_PROVIDER}/managedClusters/{request.params['cluster']}' under "
                            f"resource group '{request.params['rg']}' was not found. For more details "
                            "please go to https://aka.ms/ARMResourceNotFoundFix")

    def _find_pool(self, name: str) -> dict[str, Any]:
        for key, pool in self._pools.items():
            if key.lower() == name.lower():
                return pool
        raise HttpError(404, "NotFound",
                        f"Could not find agent pool {name} in managed cluster {self.platform.cluster_name}.")

    def get_cluster(self, request: Request) -> Response:
        self._check(request)
        self._settle()
        cluster = copy.deepcopy(self._cluster)
        profiles = []
        for pool in self._pools.values():
            profile = {k: v for k, v in pool["properties"].items() if k != "eTag"}
            profiles.append({"name": pool["name"], **profile})
        cluster["properties"]["agentPoolProfiles"] = profiles
        return Response(200, cluster)

    def list_user_credentials(self, request: Request) -> Response:
        self._check(request)
        fmt = (request.query.get("format") or "exec").lower()
        if fmt not in ("exec", "azure"):
            raise HttpError(400, "InvalidParameter", f"The value of parameter format is invalid: '{fmt}'. "
                            "Supported values are 'azure' and 'exec'.")
        props = self._cluster["properties"]
        host = props.get("fqdn") or props.get("privateFQDN")
        url, ca_pem = self._api_server or (f"https://{host}:443", self._default_ca_pem)
        value = self._user_kubeconfig(url, ca_pem, fmt)
        return Response(200, {"kubeconfigs": [{"name": "clusterUser",
                                               "value": base64.b64encode(value).decode()}]})

    def _user_kubeconfig(self, server: str, ca_pem: bytes, fmt: str) -> bytes:
        import yaml

        p = self.platform
        user = f"clusterUser_{p.resource_group}_{p.cluster_name}"
        if fmt == "azure":  # the deprecated auth-provider stanza
            credentials: dict[str, Any] = {"auth-provider": {"name": "azure", "config": {
                "apiserver-id": _AKS_SERVER_ID, "client-id": _AZURE_CLI_CLIENT_ID, "config-mode": "1",
                "environment": "AzurePublicCloud", "tenant-id": p.tenant_id}}}
        else:
            credentials = {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "kubelogin",
                "args": ["get-token", "--environment", "AzurePublicCloud", "--server-id", _AKS_SERVER_ID,
                         "--client-id", _AZURE_CLI_CLIENT_ID, "--tenant-id", p.tenant_id,
                         "--login", "devicecode"],
                "env": None,
                "installHint": "\nkubelogin is not installed which is required to connect to AAD enabled "
                               "cluster.\n\nTo learn more, please go to https://aka.ms/aks/kubelogin\n",
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": False,
            }}
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": p.cluster_name, "cluster": {
                "certificate-authority-data": base64.b64encode(ca_pem).decode(), "server": server}}],
            "contexts": [{"name": p.cluster_name, "context": {"cluster": p.cluster_name, "user": user}}],
            "current-context": p.cluster_name,
            "users": [{"name": user, "user": credentials}],
        }
        return yaml.safe_dump(config, sort_keys=True).encode()

    def list_pools(self, request: Request) -> Response:
        self._check(request, resource_type="managedClusters/agentPools")
        self._settle()
        names = sorted(self._pools, key=lambda n: (self._pools[n]["properties"]["mode"] != "System", n))
        try:
            start = int(request.query.get("$skipToken", "0"))
        except ValueError:
            raise HttpError(400, "InvalidSkipToken", "The $skipToken is invalid.") from None
        page = names[start:start + self.page_size]
        body: dict[str, Any] = {"value": [copy.deepcopy(self._pools[n]) for n in page]}
        if start + self.page_size < len(names):
            body["nextLink"] = (f"{self.base_url}{request.headers[':raw-path']}?api-version="
                                f"{request.query['api-version']}&$skipToken={start + self.page_size}")
        return Response(200, body)

    def get_pool(self, request: Request) -> Response:
        self._check(request, resource_type="managedClusters/agentPools")
        self._settle()
        return Response(200, copy.deepcopy(self._find_pool(request.params["pool"])))

    def put_pool(self, request: Request) -> Response:
        self._check(request, resource_type="managedClusters/agentPools")
        self._settle()
        name = request.params["pool"]
        if not _POOL_NAME.match(name):
            raise HttpError(400, "InvalidParameter",
                            f"The value of parameter agentPoolProfile.name is invalid: '{name}'. Agent pool "
                            "names must be 12 characters or fewer, lower-case letters and digits, starting "
                            "with a letter.")
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise HttpError(400, "InvalidRequestContent",
                            "The request content was invalid and could not be deserialized: "
                            "'properties' is required.")
        wanted = body["properties"]
        existing = next((p for k, p in self._pools.items() if k.lower() == name.lower()), None)

        # Preconditions first, as ARM does: a stale etag is rejected before any validation.
        if_match = request.header("if-match")
        if if_match and if_match != "*":
            current = existing["properties"]["eTag"] if existing else None
            given = if_match.strip('"')
            if given != current:
                raise HttpError(412, "PreconditionFailed",
                                f"Operation failed because the eTag provided ({given}) does not match the "
                                f"current eTag ({current}) of agent pool {name}.")
        if if_match == "*" and existing is None:
            raise HttpError(412, "PreconditionFailed", f"Agent pool {name} does not exist (If-Match: *).")
        if request.header("if-none-match") == "*" and existing is not None:
            raise HttpError(412, "PreconditionFailed", f"Agent pool {name} exists (If-None-Match: *).")

        if existing is not None:
            busy = self._running_operation(existing["name"])
            if busy is not None:
                state = existing["properties"]["provisioningState"].lower()
                kind = "scale" if state == "scaling" else "update"
                raise HttpError(409, "OperationNotAllowed",
                                f"Operation is not allowed because there's an in progress {kind} node pool "
                                f"operation {busy} started at {self.operations[busy]['started_at']}. Please "
                                "wait for it to finish before starting a new operation.")
        current = existing["properties"] if existing else {}
        merged = self._validate(name, current, wanted)
        if existing is None:  # a new pool gets AKS's defaults for whatever the body left out
            merged = {**self._new_pool(name)["properties"], **merged}
        self._check_quota(name, merged)

        # Accepted: the pool shows the transitional state until the operation settles.
        op_id = str(uuid.uuid4())
        final = dict(merged)
        final["provisioningState"] = "Succeeded"
        final["eTag"] = str(uuid.uuid4())
        failure, self._next_failure = self._next_failure, None
        self.operations[op_id] = {
            "pool": name, "started": time.monotonic(), "started_at": iso(utc_now()),
            "status": "InProgress", "error": failure, "final": final,
        }
        if self._out_of_bounds(final) is not None:
            # Nobody may read the pool again (a PUT without waiting): wake up when the autoscaler acts.
            timer = threading.Timer(self.operation_seconds + self.autoscaler_delay + 0.01, self._tick)
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        state = "Creating" if existing is None else (
            "Scaling" if merged.get("count") != current.get("count") else "Updating")
        shown = dict(merged)
        shown["provisioningState"] = state
        shown["eTag"] = str(uuid.uuid4())
        resource = existing or self._new_pool(name)
        resource = {**resource, "name": name, "properties": shown}
        self._pools[resource["name"]] = resource
        loc = self.platform.location
        sub = self.platform.subscription_id
        operations = f"{self.base_url}/subscriptions/{sub}/providers/{_PROVIDER}/locations/{loc}"
        headers = {
            "Azure-AsyncOperation": f"{operations}/operations/{op_id}?api-version={_OPERATION_API_VERSION}",
            "Location": f"{operations}/operationresults/{op_id}?api-version={_OPERATION_API_VERSION}",
            "Retry-After": "0",  # tests poll immediately; real AKS says 10-30
        }
        return Response(201 if existing is None else 200, copy.deepcopy(resource), headers)

    def delete_machines(self, request: Request) -> Response:
        """``POST .../agentPools/{pool}/deleteMachines`` with ``{"machineNames": [...]}``: 202 and an
        asynchronous operation that removes exactly those machines and lowers ``count`` by as many
        (https://learn.microsoft.com/rest/api/aks/agent-pools/delete-machines). Machines are the pool's
        node names; one operation per pool at a time, as for a PUT."""
        self._check(request, resource_type="managedClusters/agentPools")
        self._settle()
        name = request.params["pool"]
        existing = next((p for k, p in self._pools.items() if k.lower() == name.lower()), None)
        if existing is None:
            raise HttpError(404, "NotFound", f"Could not find agent pool {name} in cluster.")
        body = request.json()
        machines = body.get("machineNames") if isinstance(body, dict) else None
        if not isinstance(machines, list) or not machines or not all(isinstance(m, str) for m in machines):
            raise HttpError(400, "InvalidParameter", "The value of parameter machineNames is invalid: a "
                                                     "non-empty list of machine names is required.")
        busy = self._running_operation(existing["name"])
        if busy is not None:
            raise HttpError(409, "OperationNotAllowed",
                            f"Operation is not allowed because there's an in progress scale node pool operation "
                            f"{busy} started at {self.operations[busy]['started_at']}. Please wait for it to "
                            "finish before starting a new operation.")
        known = set(self._machine_names(existing["name"], existing["properties"].get("count") or 0))
        unknown = [m for m in machines if m not in known]
        if unknown:
            raise HttpError(400, "InvalidParameter",
                            f"Machine(s) {', '.join(unknown)} not found in agent pool {name}.")
        props = existing["properties"]
        count = (props.get("count") or 0) - len(set(machines))
        if props.get("enableAutoScaling") and count < (props.get("minCount") or 0):
            raise HttpError(400, "InvalidParameter",
                            f"Deleting {len(set(machines))} machine(s) would leave {count} node(s), below the "
                            f"agent pool's minCount {props.get('minCount')}.")
        op_id = str(uuid.uuid4())
        final = {**props, "count": count, "provisioningState": "Succeeded", "eTag": str(uuid.uuid4())}
        self.operations[op_id] = {
            "pool": existing["name"], "started": time.monotonic(), "started_at": iso(utc_now()),
            "status": "InProgress", "error": None, "final": final, "machines": sorted(set(machines)),
        }
        existing["properties"] = {**props, "provisioningState": "Scaling", "eTag": str(uuid.uuid4())}
        operations = (f"{self.base_url}/subscriptions/{self.platform.subscription_id}/providers/{_PROVIDER}"
                      f"/locations/{self.platform.location}")
        return Response(202, None, {
            "Azure-AsyncOperation": f"{operations}/operations/{op_id}?api-version={_OPERATION_API_VERSION}",
            "Location": f"{operations}/operationresults/{op_id}?api-version={_OPERATION_API_VERSION}",
            "Retry-After": "0",
        })

    def _machine_names(self, pool: str, count: int) -> list[str]:
        """The pool's machines: its nodes in the linked Kubernetes emulator, else AKS's VMSS naming."""
        if self._kubernetes is not None:
            names = self._kubernetes.pool_node_names(pool)
            if names:
                return names
        from shared.local.sandbox.kubernetes import sha1_hex

        return [f"aks-{pool}-{sha1_hex(pool)[:8]}-vmss{i:06d}" for i in range(count)]

    def _validate(self, name: str, current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
        """Merge a PUT body over the current pool and apply AKS's rules; raise HttpError 400 on a breach."""
        read_only = {"provisioningState", "powerState", "eTag", "currentOrchestratorVersion",
                     "nodeImageVersion"}
        merged = {**current, **{k: v for k, v in wanted.items() if k not in read_only}}
        if "powerState" in wanted:  # the one writable part of powerState is start/stop, kept as given
            merged["powerState"] = wanted["powerState"]
        if current and wanted.get("vmSize") and wanted["vmSize"] != current.get("vmSize"):
            raise HttpError(400, "PropertyChangeNotAllowed", "Changing property 'vmSize' is not allowed.")
        if not merged.get("vmSize"):
            raise HttpError(400, "InvalidParameter",
                            "The value of parameter agentPoolProfile.vmSize is invalid.")
        mode = merged.get("mode") or "User"
        low = 1 if mode == "System" else 0
        for key in ("count", "minCount", "maxCount"):
            value = merged.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not low <= value <= 1000):
                raise HttpError(400, "InvalidParameter",
                                f"The value of parameter agentPoolProfile.{key} is invalid: {value!r}. It "
                                f"must be within [{low}, 1000] for a {mode} mode agent pool.")
        if merged.get("enableAutoScaling"):
            if merged.get("minCount") is None or merged.get("maxCount") is None:
                raise HttpError(400, "InvalidParameter",
                                "The value of parameter agentPoolProfile.minCount/maxCount is invalid: "
                                "both are required when enableAutoScaling is true.")
            if merged["minCount"] > merged["maxCount"]:
                raise HttpError(400, "InvalidParameter",
                                "The value of parameter agentPoolProfile.maxCount is invalid. Error details: "
                                f"maxCount {merged['maxCount']} must be greater than or equal to minCount "
                                f"{merged['minCount']}.")
            # The autoscaler owns count: a changed count is a manual scale, which AKS refuses.
            changed = "count" in wanted and wanted["count"] != current.get("count")
            if current.get("enableAutoScaling") and changed:
                raise HttpError(400, "InvalidParameter",
                                "Cannot scale cluster autoscaler enabled node pool. The value of parameter "
                                "agentPoolProfile.count cannot be changed while enableAutoScaling is true.")
            # Bounds that exclude the current count leave it as it is: the cluster autoscaler moves it
            # later (see _autoscale), it is not part of this operation.
        elif merged.get("count") is None:
            raise HttpError(400, "InvalidParameter",
                            "The value of parameter agentPoolProfile.count is required.")
        return merged

    def _family_quota(self, vm_size: str) -> tuple[str, int]:
        """(the family's quota name, its approved cores): set by family name or by a VM size prefix."""
        family = vm_family(vm_size)
        best: tuple[str, int] | None = None
        for key, cores in self.quotas.items():
            applies = key == family or (key != TOTAL_REGIONAL and vm_size.lower().startswith(key.lower()))
            if applies and (best is None or len(key) > len(best[0])):
                best = (key, cores)
        return family, best[1] if best else _UNLIMITED

    def _check_quota(self, name: str, merged: dict[str, Any]) -> None:
        """AKS's preflight check: the family's cores, then the region's total, each counted over every pool."""
        vm_size = merged["vmSize"]
        current = next((p["properties"] for n, p in self._pools.items() if n.lower() == name.lower()), {})
        current_usage = vm_cores(vm_size) * int(current.get("count") or 0)
        needed = vm_cores(vm_size) * int(merged.get("count") or 0)
        if needed <= current_usage:
            return  # scaling in (or not at all) is never refused for quota
        family, family_limit = self._family_quota(vm_size)
        others = [p["properties"] for n, p in self._pools.items() if n.lower() != name.lower()]
        checks = (
            (family, family_limit,
             sum(vm_cores(p["vmSize"]) * int(p.get("count") or 0) for p in others
                 if vm_family(p["vmSize"]) == family)),
            (TOTAL_REGIONAL, self.quotas.get(TOTAL_REGIONAL, _UNLIMITED),
             sum(vm_cores(p["vmSize"]) * int(p.get("count") or 0) for p in others)),
        )
        for quota, limit, usage in checks:
            if usage + needed > limit:
                raise self._quota_error(quota, limit, usage + current_usage, needed - current_usage)

    def _quota_error(self, quota: str, limit: int, usage: int, additional: int) -> HttpError:
        """The error AKS answers when its preflight check meets a compute quota: code QuotaExceeded, the
        Compute message inside. Forms from real answers: "Preflight validation check for resource(s) for
        container service ... failed. Message: Operation could not be completed as it results in exceeding
        approved standardBSFamily Cores quota. Additional details - Deployment Model: Resource Manager, Location:
        ..., Current Limit: 50, Current Usage: 48, Additional Required: 4, (Minimum) New Limit Required: 52."
        (https://github.com/cilium/cilium/issues/31859) and "... exceeding approved Total Regional Cores quota
        ..." (https://github.com/mspnp/aks-baseline/issues/377)."""
        p = self.platform
        more = "regional-quota-requests" if quota == TOTAL_REGIONAL else "per-vm-quota-requests"
        return HttpError(
            400, "QuotaExceeded",
            f"Preflight validation check for resource(s) for container service {p.cluster_name} in resource "
            f"group MC_{p.resource_group}_{p.cluster_name}_{p.location} failed. Message: Operation could not "
            f"be completed as it results in exceeding approved {quota} Cores quota. Additional details - "
            f"Deployment Model: Resource Manager, Location: {p.location}, Current Limit: {limit}, "
            f"Current Usage: {usage}, Additional Required: {additional}, (Minimum) New Limit Required: "
            f"{usage + additional}. Submit a request for Quota increase at "
            "https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView by "
            "specifying parameters listed in the 'Details' section for deployment to succeed. Please read "
            f"more about quota limits at https://docs.microsoft.com/en-us/azure/azure-supportability/{more}",
        )

    # -- long-running operations --------------------------------------------------------------

    def _running_operation(self, pool: str) -> str | None:
        for op_id, op in self.operations.items():
            if op["pool"].lower() == pool.lower() and op["status"] == "InProgress":
                return op_id
        return None

    def _settle(self) -> None:
        """Complete every operation whose time has come, then let the autoscaler act (on each read, locked)."""
        now = time.monotonic()
        for op in self.operations.values():
            if op["status"] != "InProgress" or now - op["started"] < self.operation_seconds:
                continue
            pool = self._pools.get(op["pool"])
            if op["error"]:
                op["status"] = "Failed"
                if pool is not None:
                    pool["properties"]["provisioningState"] = "Failed"
                    pool["properties"]["eTag"] = str(uuid.uuid4())
            else:
                op["status"] = "Succeeded"
                if pool is not None:
                    pool["properties"] = dict(op["final"])
                if op.get("machines") and self._kubernetes is not None:
                    self._kubernetes.remove_nodes(op["machines"])
            op["ended"] = op["started"] + self.operation_seconds  # when it logically ended
            op["ended_at"] = iso(utc_now())
        self._autoscale(now)

    @staticmethod
    def _out_of_bounds(props: dict[str, Any]) -> int | None:
        """The count the cluster autoscaler would move this pool to, or None when it has nothing to do."""
        if not props.get("enableAutoScaling") or props.get("count") is None:
            return None
        low, high = props.get("minCount"), props.get("maxCount")
        if low is None or high is None:
            return None
        target = min(max(props["count"], low), high)
        return target if target != props["count"] else None

    def _autoscale(self, now: float) -> None:
        """The cluster autoscaler: ``autoscaler_delay`` after a pool's last operation ended, a count outside
        ``[minCount, maxCount]`` moves inside (AKS: "the cluster autoscaler scales the node pool to the new
        minimum"), outside any ARM operation, and the nodes follow."""
        for name, pool in self._pools.items():
            props = pool["properties"]
            target = self._out_of_bounds(props)
            if target is None or props.get("provisioningState") != "Succeeded":
                continue
            ended = max((op.get("ended", 0.0) for op in self.operations.values()
                         if op["pool"].lower() == name.lower() and op["status"] != "InProgress"), default=0.0)
            if now - ended < self.autoscaler_delay:
                continue
            if target > props["count"]:
                try:  # the autoscaler's scale-up meets the same compute quota; it then stays where it is
                    self._check_quota(name, {**props, "count": target})
                except HttpError as refused:
                    if self.autoscaler_events[-1:] != [(name, refused.message)]:
                        self.autoscaler_events.append((name, refused.message))
                    continue
            props["count"] = target
            props["eTag"] = str(uuid.uuid4())
            if self._kubernetes is not None:
                self._kubernetes.scale_pool(name, target)

    def _tick(self) -> None:
        with self.lock:
            self._settle()

    def _operation(self, request: Request) -> dict[str, Any]:
        # Pollers follow the Azure-AsyncOperation URL as given, with the api-version AKS put in it.
        self._check(request, accepted=(_OPERATION_API_VERSION,), resource_type="locations/operations")
        self._settle()
        op = self.operations.get(request.params["op"])
        if op is None:
            raise HttpError(404, "NotFound", f"Operation {request.params['op']} was not found.")
        return op

    def get_operation(self, request: Request) -> Response:
        op = self._operation(request)
        body: dict[str, Any] = {"name": request.params["op"], "status": op["status"],
                                "startTime": op["started_at"]}
        if op["status"] != "InProgress":
            body["endTime"] = op["ended_at"]
        if op["status"] == "Failed":
            body["error"] = dict(op["error"])
        return Response(200, body, {"Retry-After": "0"})

    def get_operation_result(self, request: Request) -> Response:
        op = self._operation(request)
        if op["status"] == "InProgress":
            location = (f"{self.base_url}{request.headers[':raw-path']}"
                        f"?api-version={request.query['api-version']}")
            return Response(202, None, {"Retry-After": "0", "Location": location})
        if op["status"] == "Failed":
            raise HttpError(400, op["error"]["code"], op["error"]["message"])
        return Response(204)
