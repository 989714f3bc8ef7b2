"""OpenCost's allocation API (the cost model's HTTP API, port 9003 of the ``opencost`` Service in ``monitoring``).

There is no official Python SDK: this is a small client on the standard library over OpenCost's published
contract: ``GET /allocation?window=&aggregate=&accumulate=true&includeIdle=`` answers
``{"code": 200, "status": "success", "data": [{"<name>": {<allocation>}}]}`` (one set per step; accumulated:
one), allocations carrying ``cpuCost``, ``gpuCost``, ``ramCost``, ``pvCost``, ``networkCost``,
``loadBalancerCost``, ``sharedCost``, ``externalCost``, ``totalCost``, ``gpuHours``, ``start``/``end``
(opencost pkg/costmodel/aggregation.go ``ComputeAllocationHandler``, core/pkg/opencost/allocation_json.go).
A bad ``window`` or ``aggregate`` is a 400 with a plain-text reason. Errors map at this seam: 400 ->
BadInputError, 401/403/404 -> PermanentError (wrong URL or a proxy refusing), 429/5xx and connection
failures -> TemporaryError.

In Azure the app reaches OpenCost through the internal Gateway (``https://opencost.<env>...``, gitops/README.md
"Cost"), whose SecurityPolicy admits only an Entra ID token for ``OPENCOST_AUDIENCE`` carrying the app role the
app's managed identity holds. With ``OPENCOST_AUDIENCE`` set, every request carries ``Authorization: Bearer``
from the context's credential (asked lazily, at the first request: azure-identity caches and refreshes it);
without it (a port-forward to the Service) no credential is sent. A token never goes over plain http except to
loopback.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shared.adapters import HttpOptions, retry_after_seconds
from shared.errors import BadInputError, PermanentError, TemporaryError

if TYPE_CHECKING:
    from shared.context import Context

REMEDIATION = ("check OPENCOST_URL: OpenCost's API (Service opencost, port 9003, namespace monitoring), e.g. "
               "through `kubectl -n monitoring port-forward svc/opencost 9003`")
AUTH_REMEDIATION = ("check OPENCOST_AUDIENCE (platform.yaml cost.opencost.audience) and that the app's managed "
                    "identity holds the app role cost.opencost.app_role on that app registration (gitops/README.md "
                    "\"Cost\")")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class CostAllocations(Protocol):
    def allocation(self, *, window: str, aggregate: str, include_idle: bool = True) -> list[dict[str, Any]]:
        """Allocation sets (one per step) of ``{name: allocation}`` over ``window``, by ``aggregate``."""
        ...


@dataclass(frozen=True)
class OpenCostClient:
    base_url: str
    http: HttpOptions = field(default_factory=HttpOptions)
    #: A TokenCredential (azure-identity's contract) and the audience its tokens are asked for; None: no token.
    credential: Any = field(default=None, repr=False)
    audience: str | None = None

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme not in ("http", "https"):
            raise PermanentError(f"OPENCOST_URL must be http(s), got {self.base_url!r}", remediation=REMEDIATION)
        if self.audience and parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise PermanentError("OPENCOST_URL must be https when OPENCOST_AUDIENCE is set: a bearer token never "
                                 "goes over plain http", remediation=REMEDIATION)
        if self.audience and self.credential is None:
            raise PermanentError("OPENCOST_AUDIENCE is set but there is no credential", remediation=AUTH_REMEDIATION)

    def allocation(self, *, window: str, aggregate: str, include_idle: bool = True) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"window": window, "aggregate": aggregate, "accumulate": "true",
                                        "includeIdle": str(include_idle).lower()})
        body = self._get(f"/allocation?{query}")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise TemporaryError("OpenCost answered without an allocation list (still starting?)")
        if body.get("code", 200) != 200:
            raise TemporaryError(f"OpenCost: {body.get('message') or body.get('status')}")
        return [s for s in body["data"] if isinstance(s, dict)]

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if not self.audience:
            return headers
        from azure.core.exceptions import ClientAuthenticationError

        try:
            access = self.credential.get_token(self.audience.rstrip("/") + "/.default")
        except ClientAuthenticationError as exc:
            raise PermanentError(f"OpenCost: no token for {self.audience}: {exc.message}",
                                 remediation=AUTH_REMEDIATION) from None
        if not access.token:
            raise PermanentError("OpenCost: the Azure credential returned an empty token", remediation=AUTH_REMEDIATION)
        headers["Authorization"] = f"Bearer {access.token}"
        return headers

    def _get(self, path: str) -> Any:
        context = ssl.create_default_context(cafile=self.http.ca_bundle) if self.http.ca_bundle else None
        url = self.base_url.rstrip("/") + path
        request = urllib.request.Request(url, headers=self._headers())  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=self.http.timeout,  # noqa: S310 - http(s) only  # nosec B310
                                        context=context) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            reason = exc.read(500).decode("utf-8", "replace").strip() or exc.reason
            if exc.code == 400:
                raise BadInputError(f"OpenCost refused the query: {reason}", status=400) from None
            if exc.code in (401, 403):
                raise PermanentError(f"OpenCost's gateway refused the request ({exc.code}: {reason})",
                                     remediation=AUTH_REMEDIATION) from None
            if exc.code == 404:
                raise PermanentError(f"OpenCost answered {exc.code} at {path.split('?')[0]}",
                                     remediation=REMEDIATION) from None
            raise TemporaryError(f"OpenCost answered {exc.code}: {reason}",
                                 retry_after=retry_after_seconds(exc.headers)) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise TemporaryError(f"OpenCost unreachable at {self.base_url}: {getattr(exc, 'reason', exc)}") from None
        except ValueError:
            raise TemporaryError("OpenCost answered with something that is not JSON") from None


def build(ctx: Context) -> CostAllocations:
    url = ctx.settings.opencost_url
    if not url:
        raise PermanentError("OPENCOST_URL is not set", remediation=REMEDIATION)
    audience = ctx.settings.opencost_audience
    # The credential is built here only when a token will be asked for; asked at the first request.
    return OpenCostClient(url, ctx.http, credential=ctx.azure_credential if audience else None, audience=audience)
