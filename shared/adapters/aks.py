"""AKS node pools: read them, scale them, find the API server. On azure-mgmt-containerservice.

Why it looks the way it does:

- AKS runs **one operation per pool at a time**; a PUT during one answers 409 OperationNotAllowed
  "... in progress ...". That is temporary: we raise ``TemporaryError`` with a retry delay.
- **Quota exhaustion** comes back as AKS's preflight ``QuotaExceeded`` or Compute's 409 OperationNotAllowed,
  both with "exceeding approved standardNCADSH100v5Family Cores quota" (or "Total Regional Cores quota").
  Retrying never helps, so it becomes ``PermanentError(code="QuotaExceeded")`` naming the quota to raise.
- **Autoscaler-enabled pools refuse a changed count**: for those we move min/max and send the current
  count back untouched.
- A scale is a long-running operation (minutes for GPU nodes). ``wait=False`` returns as soon as AKS
  accepted it, so a Function invocation does not sit on a poller.
- The API server's certificate is signed by the **cluster's own CA**, which no public store trusts.
  ``api_server_endpoint`` reads the cluster *user* kubeconfig (``listClusterUserCredential``: on Entra
  ID clusters with local accounts disabled it holds no secret, only a kubelogin exec stanza) and keeps
  just the server URL and that CA. The kubeconfig itself is never logged nor kept.

The SDK is imported inside methods so that importing this module costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from shared.adapters import HttpOptions, map_azure_error
from shared.errors import PermanentError, TemporaryError
from shared.logs import redact_text
from shared.platform import PlatformEnvironment

#: Seconds to wait before retrying when AKS says another operation runs and gives no Retry-After.
DEFAULT_BUSY_RETRY = 30.0
#: Polling interval when AKS's answers carry no Retry-After (it usually sends one).
DEFAULT_POLL_INTERVAL = 15.0
#: Longest we block in ``scale(wait=True)``; GPU scale-outs take 5-15 minutes.
DEFAULT_LRO_TIMEOUT = 20 * 60.0

_SETTLED = ("Succeeded", "Failed", "Canceled")
_QUOTA_CODES = {"QuotaExceeded", "InsufficientVCPUQuota", "InsufficientQuota"}
# Capacity, not quota: the region has no GPUs right now. Trying again later (or elsewhere) can work.
_ALLOCATION_CODES = {"AllocationFailed", "ZonalAllocationFailed", "OverconstrainedAllocationRequest",
                     "SkuNotAvailable", "OverconstrainedZonalAllocationRequest"}
# Azure's compute quota messages: "exceeding approved standardNCADSH100v5Family Cores quota" (the family name
# joined to "Family") or "exceeding approved Total Regional Cores quota".
_QUOTA_NAME = re.compile(r"exceeding\s+approved\s+(?P<quota>\w+Family|Total\s+Regional)\s+Cores\s+quota",
                         re.IGNORECASE)
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class ApiServerEndpoint:
    """Where the cluster's API server listens and the CA (PEM) that signed its certificate."""

    url: str
    ca_pem: bytes = field(repr=False)


@dataclass(frozen=True)
class NodePool:
    """One agent pool as the automation sees it."""

    name: str
    mode: str  # "System" | "User"
    vm_size: str
    count: int
    min_count: int | None
    max_count: int | None
    autoscaling: bool
    provisioning_state: str
    power_state: str
    taints: tuple[str, ...] = ()
    #: Node labels as sorted (key, value) pairs, so the dataclass stays hashable; see ``label_map``.
    labels: tuple[tuple[str, str], ...] = ()
    mig_profile: str | None = None
    scale_down_mode: str | None = None
    etag: str | None = None
    #: Availability zones the pool's nodes are spread over (drift detection compares them).
    zones: tuple[str, ...] = ()

    @property
    def busy(self) -> bool:
        """An operation runs on the pool: AKS refuses another until it settles."""
        return self.provisioning_state not in _SETTLED

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


class NodePools(Protocol):
    def get(self, pool: str) -> NodePool: ...

    def list(self) -> list[NodePool]: ...

    def scale(
        self, pool: str, *, count: int | None = None, min_count: int | None = None,
        max_count: int | None = None, expected_etag: str | None = None, wait: bool = True,
    ) -> NodePool: ...

    def delete_machines(self, pool: str, machines: list[str], *, wait: bool = False) -> None: ...

    def api_server_url(self) -> str: ...

    def cluster_settings(self) -> dict[str, str | None]: ...

    def api_server_endpoint(self) -> ApiServerEndpoint: ...

    def probe(self) -> str: ...


def _text(value: Any) -> Any:
    """SDK enums are str subclasses with ``.value``; give plain strings to our dataclasses."""
    return getattr(value, "value", value)


def to_node_pool(model: Any) -> NodePool:
    """Translate an SDK ``AgentPool`` (flattened properties) into our frozen view."""
    power = getattr(model, "power_state", None)
    labels: Mapping[str, str] = getattr(model, "node_labels", None) or {}
    return NodePool(
        name=model.name,
        mode=_text(model.mode) or "User",
        vm_size=model.vm_size or "",
        count=int(model.count or 0),
        min_count=model.min_count,
        max_count=model.max_count,
        autoscaling=bool(model.enable_auto_scaling),
        provisioning_state=model.provisioning_state or "Unknown",
        power_state=_text(getattr(power, "code", None)) or "Unknown",
        taints=tuple(model.node_taints or ()),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        mig_profile=_text(model.gpu_instance_profile),
        scale_down_mode=_text(model.scale_down_mode),
        etag=model.e_tag,
        zones=tuple(str(z) for z in (getattr(model, "availability_zones", None) or ())),
    )


class AksNodePools:
    """``NodePools`` on the ARM SDK for one cluster."""

    def __init__(
        self,
        credential: Any,
        platform: PlatformEnvironment,
        *,
        arm_endpoint: str = "https://management.azure.com",
        http: HttpOptions | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        lro_timeout: float = DEFAULT_LRO_TIMEOUT,
    ) -> None:
        from azure.mgmt.containerservice import ContainerServiceClient

        http = http or HttpOptions()
        self.platform = platform
        self.poll_interval = poll_interval
        self.lro_timeout = lro_timeout
        self._rg = platform.resource_group
        self._cluster = platform.cluster_name
        self._client = ContainerServiceClient(
            credential,
            platform.subscription_id,
            base_url=arm_endpoint,
            connection_verify=http.verify,
            retry_total=http.max_retries,
            connection_timeout=http.timeout,
            read_timeout=http.timeout,
            polling_interval=poll_interval,  # only used when an answer carries no Retry-After
        )

    # -- reads --------------------------------------------------------------------------------

    def get(self, pool: str) -> NodePool:
        return to_node_pool(self._get_model(pool))

    def list(self) -> list[NodePool]:
        try:
            # Iterating follows nextLink; errors surface during iteration, so it happens in the try.
            return [to_node_pool(p) for p in self._client.agent_pools.list(self._rg, self._cluster)]
        except Exception as exc:
            self._raise(exc, what=f"list node pools of {self._cluster}")

    def api_server_url(self) -> str:
        try:
            cluster = self._client.managed_clusters.get(self._rg, self._cluster)
        except Exception as exc:
            self._raise(exc, what=f"read cluster {self._cluster}")
        access = getattr(cluster, "api_server_access_profile", None)
        private = bool(getattr(access, "enable_private_cluster", False))
        host = (cluster.private_fqdn if private else None) or cluster.fqdn or cluster.private_fqdn
        if not host:
            raise PermanentError(f"cluster {self._cluster} reports no API server FQDN",
                                 code="NoApiServerFqdn",
                                 remediation="check the cluster's provisioning state in the portal")
        return f"https://{host}"

    def cluster_settings(self) -> dict[str, str | None]:
        """The managed cluster's Kubernetes version (running) and auto-upgrade channel, for drift detection."""
        try:
            cluster = self._client.managed_clusters.get(self._rg, self._cluster)
        except Exception as exc:
            self._raise(exc, what=f"read cluster {self._cluster}")
        profile = getattr(cluster, "auto_upgrade_profile", None)
        return {
            "kubernetes_version": cluster.current_kubernetes_version or cluster.kubernetes_version,
            "upgrade_channel": _text(getattr(profile, "upgrade_channel", None)) if profile else None,
        }

    def api_server_endpoint(self) -> ApiServerEndpoint:
        """The API server URL and cluster CA, from the cluster user kubeconfig (never logged).

        Needs ``Microsoft.ContainerService/managedClusters/listClusterUserCredential/action``, which
        "Azure Kubernetes Service Cluster User Role" grants. No ``format``: the server and CA are the
        same in the ``exec`` and ``azure`` variants, only the (unused) user stanza differs.
        """
        what = f"read the API server endpoint of cluster {self._cluster}"
        try:
            result = self._client.managed_clusters.list_cluster_user_credentials(self._rg, self._cluster)
            kubeconfigs = list(result.kubeconfigs or ())
        except Exception as exc:
            self._raise(exc, what=what, remediation_403=(
                "grant the app's managed identity 'Azure Kubernetes Service Cluster User Role' on cluster "
                f"{self._cluster} in {self._rg} (infra/modules/automation), then retry"))
        if not kubeconfigs or not kubeconfigs[0].value:
            raise PermanentError(f"{what}: AKS returned no kubeconfig", code="NoKubeconfig",
                                 remediation="check the cluster's provisioning state in the portal")
        return parse_kubeconfig_endpoint(kubeconfigs[0].value, what=what)

    def probe(self) -> str:
        pools = self.list()
        parts = ", ".join(
            f"{p.name}: {p.count} node{'s' if p.count != 1 else ''}"
            + (f" [{p.provisioning_state}]" if p.busy else "")
            for p in pools
        )
        return f"{len(pools)} node pools in {self._cluster} ({parts})"

    # -- scale --------------------------------------------------------------------------------

    def scale(
        self, pool: str, *, count: int | None = None, min_count: int | None = None,
        max_count: int | None = None, expected_etag: str | None = None, wait: bool = True,
    ) -> NodePool:
        """Scale ``pool``. Manual pools get ``count``; autoscaling pools get min/max only.

        For an autoscaling pool, ``count`` means "at least this many now": it becomes the new
        ``min_count`` (raising ``max_count`` if needed) and the autoscaler scales up to it; the
        pool's current count is sent back unchanged, since AKS refuses a changed count there.
        ``expected_etag`` makes the PUT conditional (412 -> ConflictError if the pool changed).
        """
        if count is None and min_count is None and max_count is None:
            raise ValueError("scale() needs count, min_count or max_count")
        model = self._get_model(pool)
        before = to_node_pool(model)
        if before.autoscaling:
            if count is not None and min_count is None:
                min_count = count
                if max_count is None and (before.max_count or 0) < count:
                    max_count = count
            new_min = before.min_count if min_count is None else min_count
            new_max = before.max_count if max_count is None else max_count
            if (new_min, new_max) == (before.min_count, before.max_count):
                return before  # nothing to change: no operation, no lock on the pool
            model.min_count, model.max_count = new_min, new_max
            model.count = before.count  # unchanged, deliberately
        else:
            target = before.count if count is None else count
            changes = {"count": target, "min_count": min_count, "max_count": max_count}
            if target == before.count and min_count in (None, before.min_count) \
                    and max_count in (None, before.max_count):
                return before
            for key, value in changes.items():
                if value is not None:
                    setattr(model, key, value)
        return self._put(pool, model, expected_etag=expected_etag, wait=wait, vm_size=before.vm_size)

    def _put(self, pool: str, model: Any, *, expected_etag: str | None, wait: bool, vm_size: str) -> NodePool:
        from azure.core import MatchConditions

        kwargs: dict[str, Any] = {}
        if expected_etag:
            kwargs.update(etag=expected_etag, match_condition=MatchConditions.IfNotModified)
        what = f"scale node pool {pool} of {self._cluster}"
        try:
            poller = self._client.agent_pools.begin_create_or_update(
                self._rg, self._cluster, pool, model, polling=bool(wait), **kwargs,
            )
            if not wait:
                # NoPolling: result() is the PUT's own answer (provisioningState Scaling/Updating).
                return to_node_pool(poller.result())
            result = poller.result(timeout=self.lro_timeout)
        except Exception as exc:
            self._raise(exc, what=what, vm_size=vm_size)
        if not poller.done():
            raise TemporaryError(f"{what}: still running after {self.lro_timeout:.0f}s",
                                 code="OperationInProgress", retry_after=self.poll_interval)
        return to_node_pool(result)

    def delete_machines(self, pool: str, machines: list[str], *, wait: bool = False) -> None:
        """Remove exactly these machines (node names) from ``pool``, rather than letting AKS pick.

        ``POST .../agentPools/{pool}/deleteMachines`` (``AgentPoolDeleteMachinesParameter``:
        ``machineNames``), a long-running operation that lowers the pool's count by as many. An
        autoscaler pool must not be left with ``minCount`` above the new count (the autoscaler would add
        nodes straight back): callers lower ``min_count`` first.
        """
        if not machines:
            raise ValueError("delete_machines() needs at least one machine name")
        from azure.mgmt.containerservice.models import AgentPoolDeleteMachinesParameter

        what = f"delete machines {', '.join(machines)} of node pool {pool} of {self._cluster}"
        try:
            poller = self._client.agent_pools.begin_delete_machines(
                self._rg, self._cluster, pool, AgentPoolDeleteMachinesParameter(machine_names=list(machines)),
                polling=bool(wait),
            )
            if wait:
                poller.result(timeout=self.lro_timeout)
        except Exception as exc:
            self._raise(exc, what=what)

    # -- plumbing -----------------------------------------------------------------------------

    def _get_model(self, pool: str) -> Any:
        try:
            return self._client.agent_pools.get(self._rg, self._cluster, pool)
        except Exception as exc:
            self._raise(exc, what=f"read node pool {pool} of {self._cluster}")

    def _raise(self, exc: Exception, *, what: str, vm_size: str | None = None,
               remediation_403: str | None = None) -> NoReturn:
        """Raise our error for an SDK one (chained, for debugging); anything else propagates as is."""
        mapped = self._map(exc, what=what, vm_size=vm_size, remediation_403=remediation_403)
        if mapped is exc:
            raise exc
        raise mapped from exc

    def _map(self, exc: Exception, *, what: str, vm_size: str | None = None,
             remediation_403: str | None = None) -> Exception:
        """Translate an SDK error, telling AKS's two kinds of 409 OperationNotAllowed apart."""
        from azure.core.exceptions import AzureError

        if not isinstance(exc, AzureError):
            return exc
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None) or ""
        detail = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
        status = getattr(exc, "status_code", None)
        text = f"{code} {detail}".lower()
        message = redact_text(f"{what}: ({code or status}) {detail}")

        if code in _QUOTA_CODES or ((status == 409 or code == "OperationNotAllowed") and "quota" in text):
            match = _QUOTA_NAME.search(detail)
            family = match.group("quota") if match else (f"{vm_size} family" if vm_size else "VM family")
            return PermanentError(
                message, code="QuotaExceeded",
                remediation=f"request more {family} cores quota in {self.platform.location} "
                            "or fall back to another pool",
            )
        if code in _ALLOCATION_CODES:
            return TemporaryError(message, code=code, retry_after=300.0)
        if status is not None and status < 400:
            # The operation was accepted and later failed (the poller read a Failed status).
            return PermanentError(message, code=code or "OperationFailed",
                                  remediation="the AKS operation failed; read the pool's state and the "
                                              "cluster's activity log, then decide again")
        return map_azure_error(
            exc, what=what, busy_retry_after=DEFAULT_BUSY_RETRY,
            remediation_403=remediation_403 or (
                "grant the app's managed identity 'Azure Kubernetes Service Contributor Role' (or a role "
                "with Microsoft.ContainerService/managedClusters/agentPools/write) on cluster "
                f"{self._cluster} in {self._rg} (infra/modules/automation), then retry"
            ),
        )


def parse_kubeconfig_endpoint(kubeconfig: bytes | str, *, what: str = "parse the kubeconfig") -> ApiServerEndpoint:
    """``clusters[0].cluster.server`` and its decoded ``certificate-authority-data``; nothing else kept.

    Errors name the missing field only: neither the YAML parser's message (it quotes the offending
    line) nor the content reaches an exception, since a kubeconfig may carry a token.
    """
    import yaml

    def invalid(reason: str) -> PermanentError:
        return PermanentError(f"{what}: the kubeconfig AKS returned {reason}", code="InvalidKubeconfig",
                              remediation="check the cluster's provisioning state in the portal")

    try:
        config = yaml.safe_load(kubeconfig)
    except yaml.YAMLError:
        raise invalid("is not valid YAML") from None
    clusters = config.get("clusters") if isinstance(config, dict) else None
    cluster = clusters[0].get("cluster") if isinstance(clusters, list) and clusters \
        and isinstance(clusters[0], dict) else None
    if not isinstance(cluster, dict):
        raise invalid("has no clusters[0].cluster")
    server, ca_data = cluster.get("server"), cluster.get("certificate-authority-data")
    if not isinstance(server, str) or not server.startswith("https://"):
        raise invalid("has no https server URL")
    if not isinstance(ca_data, str) or not ca_data:
        raise invalid("has no certificate-authority-data")
    try:
        ca_pem = base64.b64decode(ca_data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("has certificate-authority-data that is not base64") from None
    if _PEM_CERT not in ca_pem:
        raise invalid("has certificate-authority-data that is not a PEM certificate")
    return ApiServerEndpoint(url=server, ca_pem=ca_pem)


def build(ctx: Any) -> AksNodePools:
    """Construct from the process context (credential, platform facts, settings, transport)."""
    return AksNodePools(
        ctx.azure_credential, ctx.platform, arm_endpoint=ctx.settings.arm_endpoint, http=ctx.http,
    )
