"""The AKS cluster's API server: read and merge-patch objects, list nodes, ask Flux to reconcile.

Built on the official ``kubernetes`` client (``Configuration`` + ``ApiClient``). One generic path
builder serves core (``/api/v1``) and grouped (``/apis/{group}/{version}``) resources alike, so
``CustomObjectsApi``'s group/version split and ``CoreV1Api``'s typed models are not needed: the
automations work on plain dicts, exactly as the objects sit in git.

Auth: AKS with Entra ID accepts an Entra token for the AKS server application; the credential is
asked for it again shortly before it expires (``refresh_api_key_hook`` runs before every call).

TLS: with ``KUBERNETES_API_URL`` set, the server is trusted through ``TLS_CA_BUNDLE`` (or the system
store). Without it, ARM gives both the URL and the cluster's own CA (AKS signs the API server's
certificate with it; no public store trusts it): the CA goes to a private (0600) temp file, since
the client only takes a path, written once per adapter and removed with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from shared.adapters import HttpOptions, retry_after_seconds
from shared.adapters.aks import ApiServerEndpoint
from shared.errors import ConflictError, NotFoundError, PermanentError, PlatformError, TemporaryError
from shared.logs import redact_text

if TYPE_CHECKING:
    from shared.context import Context

#: The AKS Entra ID server application: the audience of every AKS-managed-AAD token.
AKS_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
RBAC_REMEDIATION = ("grant the app's managed identity an 'Azure Kubernetes Service RBAC' role on the cluster "
                    "(declared in infra/modules/automation) and check KUBERNETES_API_URL")
TLS_REMEDIATION = ("check the API server's certificate is trusted: by TLS_CA_BUNDLE when KUBERNETES_API_URL "
                   "is set, otherwise by the cluster CA AKS reports")
#: Refresh the token this many seconds before it expires.
_TOKEN_MARGIN = 300
#: Seconds one read through the pod proxy may take: a vLLM server answers /metrics in milliseconds; one that
#: does not within this is as good as unreadable for a tick that runs every 15 s.
POD_PROXY_TIMEOUT = 2.0


class Cluster(Protocol):
    def get(self, api_version: str, kind_plural: str, name: str, namespace: str | None = None) -> dict | None: ...

    def list(self, api_version: str, plural: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]: ...

    def patch_merge(self, api_version: str, plural: str, name: str, patch: dict,
                    namespace: str | None = None) -> dict: ...

    def nodes(self, label_selector: str | None = None) -> list[dict]: ...

    def request_reconcile(self, api_version: str, plural: str, name: str, namespace: str, token: str) -> dict: ...

    def pod_metrics(self, namespace: str, pod: str, port: int, *, timeout: float = POD_PROXY_TIMEOUT) -> str: ...

    def evict(self, namespace: str, pod: str) -> None: ...

    def probe(self) -> str: ...


@dataclass(frozen=True)
class _Token:
    value: str
    expires_on: float


def resource_path(api_version: str, plural: str, name: str | None = None, namespace: str | None = None) -> str:
    """``v1`` -> ``/api/v1/...``; ``group/version`` -> ``/apis/group/version/...``; each segment escaped."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(quote(plural, safe=""))
    if name:
        parts.append(quote(name, safe=""))
    return "/".join(parts)


def _write_private_pem(pem: bytes) -> str:
    """A new 0600 temp file holding ``pem``; the caller removes it."""
    fd, path = tempfile.mkstemp(prefix="aks-cluster-ca-", suffix=".pem")  # mkstemp: 0600, O_EXCL
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # explicit, whatever the platform's default
            handle.write(pem)
    except BaseException:
        _unlink_quietly(path)
        raise
    return path


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class KubernetesCluster:
    """``Cluster`` on the ``kubernetes`` client.

    ``host`` is a URL or a callable resolved on first use, returning a URL or an ``ApiServerEndpoint``
    (URL + cluster CA, which then replaces ``http.ca_bundle`` for this server).
    """

    def __init__(self, host: str | Callable[[], str | ApiServerEndpoint], credential: Any,
                 http: HttpOptions | None = None, page_size: int = 250) -> None:
        self._host = host
        self._credential = credential
        self._http = http or HttpOptions()
        self._page_size = page_size
        self._lock = threading.Lock()
        self._client: Any = None
        self._token: _Token | None = None
        #: The cluster CA's temp file, once written (removed by ``close``, on collection or at exit).
        self.ca_path: str | None = None
        self._ca_cleanup: weakref.finalize | None = None

    # -- client -------------------------------------------------------------------------------

    def _fresh_token(self) -> str:
        token = self._token
        if token is None or token.expires_on - time.time() < _TOKEN_MARGIN:
            access = self._credential.get_token(AKS_SCOPE)
            if not access.token:
                raise PermanentError("Kubernetes: the Azure credential returned an empty token",
                                     code="EmptyToken", remediation=RBAC_REMEDIATION)
            token = self._token = _Token(access.token, float(access.expires_on))
        return token.value

    def _api(self) -> Any:
        with self._lock:
            if self._client is None:
                from kubernetes import client

                target = self._host() if callable(self._host) else self._host
                config = client.Configuration()
                if isinstance(target, ApiServerEndpoint):
                    host = target.url
                    if self.ca_path is None:
                        self.ca_path = _write_private_pem(target.ca_pem)
                        self._ca_cleanup = weakref.finalize(self, _unlink_quietly, self.ca_path)
                    config.ssl_ca_cert = self.ca_path
                else:
                    host = target
                    if host.startswith("https") and self._http.ca_bundle:
                        config.ssl_ca_cert = self._http.ca_bundle
                config.host = host.rstrip("/")
                config.retries = self._http.max_retries
                config.api_key_prefix["BearerToken"] = "Bearer"
                config.api_key["BearerToken"] = self._fresh_token()

                def refresh(cfg: Any) -> None:
                    cfg.api_key["BearerToken"] = self._fresh_token()

                config.refresh_api_key_hook = refresh
                self._client = client.ApiClient(config)
            return self._client

    def close(self) -> None:
        """Close the connections and remove the CA file; a later call starts afresh."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._ca_cleanup is not None:
                self._ca_cleanup()
                self._ca_cleanup = self.ca_path = None

    @property
    def host(self) -> str:
        return self._api().configuration.host

    def _call(self, method: str, path: str, *, query: list[tuple[str, str]] | None = None,
              body: Any = None, content_type: str | None = None, what: str) -> Any:
        api = self._api()
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            request = api.param_serialize(method=method, resource_path=path, query_params=query or [],
                                          header_params=headers, body=body, auth_settings=["BearerToken"])
            response = api.call_api(*request, _request_timeout=self._http.timeout)
            response.read()
            return api.response_deserialize(response, {"2XX": "object"}).data
        except Exception as exc:
            mapped = _map_error(exc, what)
            if mapped is exc:
                raise  # ours, or our own bug: as it is, with its traceback
            raise mapped from exc

    # -- operations ---------------------------------------------------------------------------

    def get(self, api_version: str, kind_plural: str, name: str, namespace: str | None = None) -> dict | None:
        try:
            return self._call("GET", resource_path(api_version, kind_plural, name, namespace),
                              what=f"get {_describe(api_version, kind_plural, name, namespace)}")
        except NotFoundError:
            return None

    def list(self, api_version: str, plural: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        path = resource_path(api_version, plural, None, namespace)
        items: list[dict] = []
        cont: str | None = None
        while True:
            query = [("limit", str(self._page_size))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if cont:
                query.append(("continue", cont))
            page = self._call("GET", path, query=query, what=f"list {_describe(api_version, plural, None, namespace)}")
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                return items

    def patch_merge(self, api_version: str, plural: str, name: str, patch: dict,
                    namespace: str | None = None) -> dict:
        # JSON merge patch works for built-ins and custom resources alike (strategic merge does not for CRs).
        return self._call("PATCH", resource_path(api_version, plural, name, namespace), body=patch,
                          content_type="application/merge-patch+json",
                          what=f"patch {_describe(api_version, plural, name, namespace)}")

    def nodes(self, label_selector: str | None = None) -> list[dict]:
        return self.list("v1", "nodes", label_selector=label_selector)

    def pod_metrics(self, namespace: str, pod: str, port: int, *, timeout: float = POD_PROXY_TIMEOUT) -> str:
        """The Prometheus text a pod serves on ``port`` at ``/metrics``, through the API server's pod proxy
        (``GET /api/v1/namespaces/{ns}/pods/{name}:{port}/proxy/metrics``; RBAC: ``get`` on ``pods/proxy``).

        The API server dials the pod itself (on AKS through the konnectivity agents), so the caller needs no
        route to the pod network. Errors as every other call: 404 for an unknown pod, 503 when the API
        server cannot dial the pod (``error trying to reach service: dial tcp ...``), 400 "address not
        allowed" for a pod without an IP yet; an answer slower than ``timeout`` is ``ServiceUnreachable``
        (after urllib3's own retries of the GET, ``HttpOptions.max_retries``: a caller that must not wait that
        long bounds the call itself, as the scaling tick does).
        """
        path = (f"{resource_path('v1', 'pods', None, namespace)}/{quote(pod, safe='')}:{int(port)}/proxy/metrics")
        what = f"read the metrics of pod {namespace}/{pod}:{port}"
        api = self._api()
        # Prometheus' own Accept: the text format (vLLM's prometheus_client would otherwise pick it anyway).
        headers = {"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1"}
        try:
            request = api.param_serialize(method="GET", resource_path=path, header_params=headers,
                                          auth_settings=["BearerToken"])
            response = api.call_api(*request, _request_timeout=timeout)
            response.read()
            raw = api.response_deserialize(response, {"2XX": "bytearray"}).data
        except Exception as exc:
            mapped = _map_error(exc, what)
            if mapped is exc:
                raise
            raise mapped from exc
        return bytes(raw).decode("utf-8", "replace")

    def evict(self, namespace: str, pod: str) -> None:
        """Evict a pod through the Eviction API (``POST .../pods/{name}/eviction``, policy/v1; RBAC: ``create`` on
        ``pods/eviction``): a graceful delete that honours PodDisruptionBudgets. A budget allowing no disruption
        now is 429 (``TemporaryError``: ask again later); a pod already gone is ``NotFoundError``."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}}
        self._call("POST", f"{resource_path('v1', 'pods', pod, namespace)}/eviction", body=body,
                   content_type="application/json", what=f"evict pod {namespace}/{pod}")

    def request_reconcile(self, api_version: str, plural: str, name: str, namespace: str, token: str) -> dict:
        """Flux handles this when ``status.lastHandledReconcileAt`` equals ``token``."""
        return self.patch_merge(api_version, plural, name,
                                {"metadata": {"annotations": {REQUESTED_AT: token}}}, namespace)

    def probe(self) -> str:
        version = self._call("GET", "/version", what="read the API server version")
        return f"Kubernetes {version.get('gitVersion', '?')} at {self.host}"


def _describe(api_version: str, plural: str, name: str | None, namespace: str | None) -> str:
    where = f" in {namespace}" if namespace else ""
    return f"{plural}.{api_version}{'/' + name if name else ''}{where}"


def _status_body(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {"message": body[:300]}
    return body if isinstance(body, dict) else {}


def _map_error(exc: Exception, what: str) -> Exception:
    """Translate ``ApiException`` / urllib3 errors into our tree (the seam)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, urllib3.exceptions.HTTPError):
        if isinstance(exc, urllib3.exceptions.SSLError) or isinstance(getattr(exc, "reason", None),
                                                                       urllib3.exceptions.SSLError):
            return PermanentError(redact_text(f"Kubernetes: {what}: TLS verification failed"), code="TlsError",
                                  remediation=TLS_REMEDIATION)
        return TemporaryError(redact_text(f"Kubernetes: {what}: cannot reach the API server "
                                          f"({type(exc).__name__})"), code="ServiceUnreachable")
    if not isinstance(exc, ApiException):
        return exc  # our own bug (or an unexpected library failure): propagates as it is

    status = exc.status or 0
    body = _status_body(exc.body)
    reason = body.get("reason") or exc.reason or f"HTTP{status}"
    detail = body.get("message") or exc.reason or ""
    message = redact_text(f"Kubernetes: {what}: {status} {reason}: {detail}".rstrip(": "))
    retry_after = retry_after_seconds(exc.headers)
    if status == 0:  # the client's own transport failure (e.g. TLS), no answer from the server
        if "SSL" in str(exc.reason):
            return PermanentError(message, code="TlsError", remediation=TLS_REMEDIATION)
        return TemporaryError(message, code="ServiceUnreachable")
    if status in (401, 403):
        return PermanentError(message, code=reason, remediation=RBAC_REMEDIATION)
    if status == 404:
        return NotFoundError(message, code=reason, remediation="check the resource's name, namespace and apiVersion")
    if status in (409, 412):
        return ConflictError(message, code=reason, remediation="the object changed concurrently; re-read it and retry")
    if status == 410:  # an expired list continue token: start the list again
        return TemporaryError(message, code=reason, retry_after=retry_after)
    if status == 429 or status >= 500:
        return TemporaryError(message, code=reason, retry_after=retry_after)
    return PermanentError(message, code=reason, remediation="the API server refused the request as invalid")


def build(ctx: Context) -> KubernetesCluster:
    url = ctx.settings.kubernetes_api_url
    # Without an explicit URL, ask ARM for the cluster's URL and CA; only then, and only on first use.
    host: str | Callable[[], str | ApiServerEndpoint] = url if url else (
        lambda: ctx.node_pools.api_server_endpoint())
    return KubernetesCluster(host, ctx.azure_credential, ctx.http)
