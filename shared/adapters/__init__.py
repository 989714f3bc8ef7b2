"""Adapters: one per external system, each a small ``Protocol`` plus an implementation on the
official SDK. Every SDK exception is translated here, at the seam, into ``shared.errors``:

- throttling (429), 5xx, timeouts, connection errors, "operation in progress" -> TemporaryError
  (with the server's Retry-After when it sent one);
- 404 -> NotFoundError; 409/412 preconditions -> ConflictError;
- 401/403, validation errors, quota -> PermanentError with remediation text.

SDK modules are imported inside functions so that importing an adapter module is free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import ConflictError, NotFoundError, PermanentError, TemporaryError
from shared.logs import redact_text


@dataclass(frozen=True)
class HttpOptions:
    """Transport settings every SDK client is built with."""

    #: Retries the SDK makes by itself before raising; our retry policy wraps that.
    max_retries: int = 3
    #: Seconds for one call (connect + read).
    timeout: float = 30.0
    #: PEM bundle to trust instead of the system's (the sandbox CA locally); None = the system's.
    ca_bundle: str | None = None

    @property
    def verify(self) -> bool | str:
        return self.ca_bundle or True


def retry_after_seconds(headers: Any) -> float | None:
    """Parse Retry-After (seconds or HTTP date) or the ms variants Azure sends; None when absent."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if hasattr(headers, "get") else None
        if value is None and hasattr(headers, "get"):
            value = headers.get(name.title())
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            import datetime as dt
            from email.utils import parsedate_to_datetime

            try:
                when = parsedate_to_datetime(value)
                return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
            except (TypeError, ValueError):
                return None
    return None


def map_azure_error(exc: Exception, *, what: str, remediation_403: str = "",
                    busy_retry_after: float | None = None) -> Exception:
    """Translate an azure-core exception into our tree. Returns the exception to raise.

    ``busy_retry_after``: seconds to suggest when the resource is busy with another operation and
    the service sent no Retry-After (None: leave it to the caller's backoff).
    """
    from azure.core import exceptions as az

    error = getattr(exc, "error", None)  # ODataV4Format: the service's own code and message
    detail = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    message = redact_text(f"{what}: {detail}")
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
    service_code = getattr(error, "code", None) or getattr(exc, "error_code", None)
    service_code = str(getattr(service_code, "value", service_code)) if service_code else None
    headers = getattr(response, "headers", None)
    retry_after = retry_after_seconds(headers)
    lowered = detail.lower()
    busy = service_code == "AnotherOperationInProgress" or (
        service_code == "OperationNotAllowed" and ("in progress" in lowered or "another operation" in lowered))

    if isinstance(exc, az.ClientAuthenticationError) or status in (401, 403):
        return PermanentError(
            message, code=service_code or "AuthorizationFailed",
            remediation=remediation_403 or "check the app's managed identity has the role assignment "
            "declared in infra/modules/automation, then retry",
        )
    if isinstance(exc, az.ResourceNotFoundError) or status == 404:
        return NotFoundError(message, code=service_code or "NotFound", remediation="check the name in platform.yaml")
    if isinstance(exc, az.ResourceModifiedError) or status == 412:
        return ConflictError(message, code=service_code or "PreconditionFailed",
                             remediation="the resource changed concurrently; re-read it and decide again")
    if busy:
        # ARM allows one operation per resource at a time: this one clears by itself.
        return TemporaryError(message, code=service_code or "OperationNotAllowed",
                              retry_after=busy_retry_after if retry_after is None else retry_after)
    if isinstance(exc, az.ResourceExistsError) or status == 409:
        # By type as well as status: azure-storage-queue raises it for a 204 "queue already exists".
        return ConflictError(message, code=service_code or "Conflict",
                             remediation="another change holds this resource; retry after it finishes")
    if isinstance(exc, az.ServiceRequestError | az.ServiceResponseError) or status is None:
        return TemporaryError(message, code="ServiceUnreachable", retry_after=None)
    if status == 429 or status >= 500:
        return TemporaryError(message, code=service_code or f"HTTP{status}", retry_after=retry_after)
    if status < 400:
        # A long-running operation that ended in failure arrives with the poll's 200.
        return PermanentError(message, code=service_code or "OperationFailed",
                              remediation="the operation was accepted but failed; see the message")
    return PermanentError(message, code=service_code or f"HTTP{status}",
                          remediation="the request was refused as invalid; see the message")
