"""Health: the anonymous status (status and version, nothing else), what is configured (cheap, no I/O),
and what is reachable (probes, each bounded in time)."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import __version__
from shared.errors import PermanentError, PlatformError, TemporaryError
from shared.logs import redact_text

#: How long the probes wait for the slowest dependency (``/api/health/details?probe=true``, ``platformctl health``).
PROBE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class DependencyStatus:
    name: str
    configured: bool
    reachable: bool | None  # None: not probed (not configured)
    detail: str
    seconds: float
    #: "ok", "degraded" (configured but failed or no answer within the bound) or "not configured".
    status: str = field(init=False)

    def __post_init__(self) -> None:
        status = "not configured" if not self.configured else ("ok" if self.reachable else "degraded")
        object.__setattr__(self, "status", status)


def public_status(*, healthy: bool) -> dict[str, Any]:
    """What an anonymous caller may know: whether the app can serve, and its version. Nothing that names
    the estate (environment, resource group, cluster, vault, URLs, pools, certificates, settings)."""
    return {"status": "ok" if healthy else "unhealthy", "version": __version__}


def report(ctx: Any, *, with_probes: bool, timeout: float | None = None) -> dict[str, Any]:
    """``describe`` and, when asked, the probes: status ``degraded`` when a configured dependency failed
    or did not answer within ``timeout`` (default ``PROBE_TIMEOUT_SECONDS``)."""
    described = describe(ctx)
    if not with_probes:
        return described
    statuses = probe(ctx, timeout=PROBE_TIMEOUT_SECONDS if timeout is None else timeout)
    degraded = any(s.status == "degraded" for s in statuses)
    return {**described, "status": "degraded" if degraded else "ok", "probes": [vars(s) for s in statuses]}


def describe(ctx: Any) -> dict[str, Any]:
    """Version, environment and which dependencies have what they need. Never a secret value."""
    s, p = ctx.settings, ctx.platform
    configured = s.configured()
    return {
        "status": "ok",
        "version": __version__,
        "environment": p.name,
        "dependencies": {
            "storage": {"configured": True, "target": s.storage_account or "connection string"},
            "aks": {"configured": True, "target": f"{p.resource_group}/{p.cluster_name}"},
            "keyvault": {"configured": True, "target": s.keyvault_url or p.key_vault_url},
            "cloudflare": {"configured": configured["cloudflare"], "target": s.cloudflare_base_url},
            "kubernetes": {"configured": True, "target": s.kubernetes_api_url or "AKS API server (via ARM)"},
            "gitlab": {"configured": configured["gitlab"], "target": s.gitlab_url or p.gitlab.url},
        },
        "gpu_pools": [pool.name for pool in p.gpu_pools],
        "certificates": [cert.name for cert in p.certificates],
    }


def probe(ctx: Any, timeout: float = PROBE_TIMEOUT_SECONDS) -> list[DependencyStatus]:
    """One cheap read against each configured dependency, in parallel; returns within ``timeout``
    seconds of the adapters being built, whatever the dependencies do."""
    configured = ctx.settings.configured()
    adapters: dict[str, tuple[bool, Callable[[], Any]]] = {
        "storage": (True, lambda: ctx.storage),
        "aks": (True, lambda: ctx.node_pools),
        "keyvault": (True, lambda: ctx.certificates),
        "cloudflare": (configured["cloudflare"], lambda: ctx.origin_ca),
        "kubernetes": (True, lambda: ctx.cluster),
        "gitlab": (configured["gitlab"], lambda: ctx.git),
    }
    # Build the adapters one after another: that is where the SDKs are imported, and importing
    # azure.core from several threads at once can deadlock on its circular imports.
    built: dict[str, Any] = {}
    failed: dict[str, DependencyStatus] = {}
    for name, (enabled, get) in adapters.items():
        if not enabled:
            failed[name] = DependencyStatus(name, False, None, "not configured", 0.0)
            continue
        try:
            built[name] = get()
        except Exception as exc:
            failed[name] = DependencyStatus(name, True, False, _describe_failure(exc), 0.0)

    # Each probe runs on its own daemon thread and the caller waits for all of them until one shared
    # deadline, never longer: a probe still hung then is reported degraded and its thread is left to
    # finish (or die with the process). A pool's shutdown, or `with ThreadPoolExecutor`, would join it.
    finished: dict[str, DependencyStatus] = {}
    lock = threading.Lock()

    def run(name: str, adapter: Any) -> None:
        start = time.monotonic()
        try:
            detail, ok = adapter.probe(), True
        except Exception as exc:  # a bug in one adapter must not hide the other results
            detail, ok = _describe_failure(exc), False
        status = DependencyStatus(name, True, ok, redact_text(detail)[:500], round(time.monotonic() - start, 3))
        with lock:
            finished[name] = status

    started = time.monotonic()
    threads = []
    for name, adapter in built.items():
        # A copy of the caller's context per thread: its log lines keep the invocation's correlation id.
        thread = threading.Thread(target=contextvars.copy_context().run, args=(run, name, adapter),
                                  name=f"health-probe-{name}", daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(max(0.0, started + timeout - time.monotonic()))
    with lock:
        results = dict(finished)
    for name in built:
        if name not in results:
            results[name] = DependencyStatus(name, True, False, f"no answer within {timeout:g}s (timed out)",
                                             round(time.monotonic() - started, 3))
    return [results.get(name) or failed[name] for name in adapters]


def _describe_failure(exc: Exception) -> str:
    if isinstance(exc, TemporaryError):
        return f"unreachable ({exc.code}): {exc}"
    if isinstance(exc, PermanentError):
        return f"refused ({exc.code}): {exc}"
    if isinstance(exc, PlatformError):
        return f"failed ({exc.code}): {exc}"
    return redact_text(f"error: {type(exc).__name__}: {exc}")
