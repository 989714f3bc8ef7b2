"""What is configured (cheap, no I/O: the health function) and what is reachable (probes: the CLI)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shared import __version__
from shared.errors import PermanentError, PlatformError, TemporaryError
from shared.logs import redact_text


@dataclass(frozen=True)
class DependencyStatus:
    name: str
    configured: bool
    reachable: bool | None  # None: not probed (not configured)
    detail: str
    seconds: float


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


def probe(ctx: Any, timeout: float = 15.0) -> list[DependencyStatus]:
    """One cheap read against each configured dependency, in parallel."""
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

    def run(name: str, adapter: Any) -> DependencyStatus:
        start = time.monotonic()
        try:
            detail, ok = adapter.probe(), True
        except Exception as exc:  # a bug in one adapter must not hide the other results
            detail, ok = _describe_failure(exc), False
        return DependencyStatus(name, True, ok, redact_text(detail)[:500], round(time.monotonic() - start, 3))

    with ThreadPoolExecutor(max_workers=max(1, len(built))) as pool:
        futures = {name: pool.submit(run, name, adapter) for name, adapter in built.items()}
        results = {name: future.result(timeout=timeout) for name, future in futures.items()}
    return [results.get(name) or failed[name] for name in adapters]


def _describe_failure(exc: Exception) -> str:
    if isinstance(exc, TemporaryError):
        return f"unreachable ({exc.code}): {exc}"
    if isinstance(exc, PermanentError):
        return f"refused ({exc.code}): {exc}"
    if isinstance(exc, PlatformError):
        return f"failed ({exc.code}): {exc}"
    return redact_text(f"error: {type(exc).__name__}: {exc}")
