"""Credentials from azure-identity, injectable in tests.

In Azure the app runs with its managed identity through ``DefaultAzureCredential``. Locally and in
tests ``StaticTokenCredential`` hands the sandbox emulators a fixed token: it is the same
``get_token`` contract the SDKs call, so nothing in the adapters changes.
"""

from __future__ import annotations

import time
from typing import Any


class StaticTokenCredential:
    """A TokenCredential returning a fixed, non-secret token (for loopback emulators only)."""

    def __init__(self, token: str = "sandbox-token", lifetime: int = 3600) -> None:  # noqa: S107 - not a secret
        self._token = token
        self._lifetime = lifetime
        #: Scopes asked for, in order: tests assert that clients ask for the right audience.
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        self.scopes.extend(scopes)
        return AccessTokenInfo(self._token, int(time.time()) + self._lifetime)

    def close(self) -> None:
        pass


def build_credential(mode: str) -> Any:
    """``default``: DefaultAzureCredential (managed identity, workload identity, az login...)."""
    if mode == "static":
        return StaticTokenCredential()
    from azure.identity import DefaultAzureCredential

    # Interactive browser auth makes no sense in a Function or CI: never fall back to it.
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)
