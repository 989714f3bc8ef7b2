"""Helpers shared by the Cloudflare, Kubernetes and GitLab integration tests (not a conftest: imported)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from shared.context import Context
from shared.credentials import StaticTokenCredential
from shared.settings import Settings

APP_ROOT = Path(__file__).resolve().parents[2]


def sandbox_settings(*emulators: Any, **extra: str) -> Settings:
    """Settings as the local sandbox would give them: fast failures, no SDK retries."""
    env = {
        "PLATFORM_ENV": "dev-uaenorth",
        "PLATFORM_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "AZURE_CREDENTIAL": "static",
        "SDK_MAX_RETRIES": "0",
        "HTTP_TIMEOUT_SECONDS": "2",
    }
    for emulator in emulators:
        env.update(emulator.settings_env())
    env.update(extra)
    return Settings.from_env(env)


def sandbox_context(platform: Any, *emulators: Any, credential: Any = None, **extra: str) -> Context:
    return Context(settings=sandbox_settings(*emulators, **extra), platform=platform,
                   credential=credential or StaticTokenCredential())


def closed_port_url(scheme: str = "http") -> str:
    """A loopback URL nobody listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}"


def imported_modules_after(module: str) -> set[str]:
    """Top-level package names loaded by ``import module`` in a fresh interpreter."""
    code = f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=APP_ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    return set(out.stdout.split())
