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


class CostAllocations(Protocol):
    def allocation(self, *, window: str, aggregate: str, include_idle: bool = True) -> list[dict[str, Any]]:
        """Allocation sets (one per step) of ``{name: allocation}`` over ``window``, by ``aggregate``."""
        ...


@dataclass(frozen=True)
class OpenCostClient:
    base_url: str
    http: HttpOptions = field(default_factory=HttpOptions)

    def __post_init__(self) -> None:
        if urllib.parse.urlsplit(self.base_url).scheme not in ("http", "https"):
            raise PermanentError(f"OPENCOST_URL must be http(s), got {self.base_url!r}", remediation=REMEDIATION)

    def allocation(self, *, window: str, aggregate: str, include_idle: bool = True) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"window": window, "aggregate": aggregate, "accumulate": "true",
                                        "includeIdle": str(include_idle).lower()})
        body = self._get(f"/allocation?{query}")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise TemporaryError("OpenCost answered without an allocation list (still starting?)")
        if body.get("code", 200) != 200:
            raise TemporaryError(f"OpenCost: {body.get('message') or body.get('status')}")
        return [s for s in body["data"] if isinstance(s, dict)]

    def _get(self, path: str) -> Any:
        context = ssl.create_default_context(cafile=self.http.ca_bundle) if self.http.ca_bundle else None
        url = self.base_url.rstrip("/") + path
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=self.http.timeout,  # noqa: S310 - http(s) only  # nosec B310
                                        context=context) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            reason = exc.read(500).decode("utf-8", "replace").strip() or exc.reason
            if exc.code == 400:
                raise BadInputError(f"OpenCost refused the query: {reason}", status=400) from None
            if exc.code in (401, 403, 404):
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
    return OpenCostClient(url, ctx.http)
