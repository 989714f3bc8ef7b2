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
    checks: dict[str, tuple[bool, Callable[[], str]]] = {
        "storage": (True, lambda: ctx.storage.probe()),
        "aks": (True, lambda: ctx.node_pools.probe()),
        "keyvault": (True, lambda: ctx.certificates.probe()),
        "cloudflare": (configured["cloudflare"], lambda: ctx.origin_ca.probe()),
        "kubernetes": (True, lambda: ctx.cluster.probe()),
        "gitlab": (configured["gitlab"], lambda: ctx.git.probe()),
    }

    def run(name: str, enabled: bool, check: Callable[[], str]) -> DependencyStatus:
        if not enabled:
            return DependencyStatus(name, False, None, "not configured", 0.0)
        start = time.monotonic()
        try:
            detail, ok = check(), True
        except TemporaryError as exc:
            detail, ok = f"unreachable ({exc.code}): {exc}", False
        except PermanentError as exc:
            detail, ok = f"refused ({exc.code}): {exc}", False
        except PlatformError as exc:
            detail, ok = f"failed ({exc.code}): {exc}", False
        except Exception as exc:  # a bug in an adapter must not hide the other results
            detail, ok = f"error: {type(exc).__name__}: {exc}", False
        return DependencyStatus(name, True, ok, redact_text(detail)[:500], round(time.monotonic() - start, 3))

    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = [pool.submit(run, name, enabled, check) for name, (enabled, check) in checks.items()]
        return [f.result(timeout=timeout) for f in futures]
