"""The per-process context: settings, platform facts, credential and adapters, built lazily.

Functions and the CLI ask ``get_context()`` for it; tests build a ``Context`` directly with the
sandbox's settings or with their own adapters. Adapters are created on first use, so an invocation
that only needs Storage never imports the ARM SDK.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from shared.adapters import HttpOptions
from shared.platform import PlatformEnvironment, load_environment
from shared.settings import Settings


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Context:
    settings: Settings
    platform: PlatformEnvironment
    #: Where "now" comes from. Decisions take ``now`` as an argument; only the edges call this.
    clock: Callable[[], dt.datetime] = utc_now
    #: Injected in tests; built from settings otherwise.
    credential: Any = None
    #: Adapter overrides by name (``node_pools``, ``certificates``, ...), for tests.
    overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Context:
        settings = Settings.from_env(environ)
        return cls(settings=settings, platform=load_environment(settings.env, settings.config_dir), **kwargs)

    @cached_property
    def http(self) -> HttpOptions:
        s = self.settings
        ca_bundle = s.tls_ca_bundle
        if s.tls_extra_ca_pem:
            # The roots (TLS_CA_BUNDLE or certifi's) plus the internal CA, in one file every adapter uses.
            from shared import tls

            ca_bundle = tls.merged_bundle(s.tls_ca_bundle, s.tls_extra_ca_pem)
        return HttpOptions(max_retries=s.sdk_max_retries, timeout=s.http_timeout, ca_bundle=ca_bundle)

    @cached_property
    def azure_credential(self) -> Any:
        if self.credential is not None:
            return self.credential
        from shared.credentials import build_credential

        return build_credential(self.settings.credential_mode)

    def _adapter(self, name: str, build: Callable[[], Any]) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        with _build_lock:
            if name not in self.__dict__:
                self.__dict__[name] = build()
        return self.__dict__[name]

    # -- adapters (one per external system) --------------------------------------------------

    @property
    def node_pools(self) -> Any:
        from shared.adapters import aks

        return self._adapter("node_pools", lambda: aks.build(self))

    @property
    def certificates(self) -> Any:
        from shared.adapters import keyvault

        return self._adapter("certificates", lambda: keyvault.build(self))

    @property
    def origin_ca(self) -> Any:
        from shared.adapters import cloudflare

        return self._adapter("origin_ca", lambda: cloudflare.build(self))

    @property
    def cluster(self) -> Any:
        from shared.adapters import kubernetes

        return self._adapter("cluster", lambda: kubernetes.build(self))

    @property
    def git(self) -> Any:
        from shared.adapters import gitlab

        return self._adapter("git", lambda: gitlab.build(self))

    @property
    def cost_allocations(self) -> Any:
        from shared.adapters import opencost

        return self._adapter("cost_allocations", lambda: opencost.build(self))

    @property
    def storage(self) -> Any:
        from shared.adapters import storage

        return self._adapter("storage", lambda: storage.build(self))

    @property
    def chat(self) -> Any:
        from shared.adapters import chat

        return self._adapter("chat", lambda: chat.build(self))

    @property
    def state(self) -> Any:
        from shared.state import StateStore

        return self._adapter("state", lambda: StateStore(self.storage, clock=self.clock))


_build_lock = threading.RLock()
_context: Context | None = None


def get_context() -> Context:
    """The process-wide context, built and validated on first use (raises ConfigError)."""
    global _context
    with _build_lock:
        if _context is None:
            _context = Context.from_env()
        return _context


def set_context(context: Context | None) -> None:
    """Install (or clear) the process-wide context: the local host and tests use this."""
    global _context
    with _build_lock:
        _context = context
