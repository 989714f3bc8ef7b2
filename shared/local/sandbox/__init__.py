"""The sandbox: every external service the app drives, emulated on loopback with its real REST
contract, seeded with the estate this repository declares for one environment (dev-uaenorth by default):
``platform.yaml`` for Azure, ``infra/modules/aks/flux.tf`` and ``gitops/`` for the cluster's Flux objects and
the GitLab project (``shared/local/sandbox/declared.py``).

``Sandbox.start()`` returns the settings (environment variables) that point the app at it; the real
SDKs reach the emulators through those settings only (base URLs, CA bundle), never by patching code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.local.sandbox.base import Emulator, Fault, SandboxCA
from shared.platform import PlatformEnvironment

__all__ = ["Emulator", "Fault", "Sandbox", "SandboxCA"]


class Sandbox:
    def __init__(self, platform: PlatformEnvironment, workdir: Path | str) -> None:
        from shared.local.sandbox.arm import ArmEmulator
        from shared.local.sandbox.chat import ChatEmulator
        from shared.local.sandbox.cloudflare import CloudflareEmulator
        from shared.local.sandbox.gitlab import GitLabEmulator
        from shared.local.sandbox.keyvault import KeyVaultEmulator
        from shared.local.sandbox.kubernetes import KubernetesEmulator
        from shared.local.sandbox.opencost import OpenCostEmulator

        self.platform = platform
        self.workdir = Path(workdir)
        self.ca: SandboxCA | None = None
        self.arm = ArmEmulator(platform)
        self.keyvault = KeyVaultEmulator(platform)
        self.cloudflare = CloudflareEmulator(platform)
        self.kubernetes = KubernetesEmulator(platform)
        self.gitlab = GitLabEmulator(platform)
        self.opencost = OpenCostEmulator(platform)
        self.chat = ChatEmulator()
        # The nodes the API server lists follow the pools' counts (the autoscaler included), as in AKS.
        self.arm.link_kubernetes(self.kubernetes)
        self._wire_gitops()

    def _wire_gitops(self) -> None:
        """Git is the source of truth in the sandbox too: the GitLab tree holds this environment's
        platform.yaml (drift adopts into it), and the emulated Flux applies the default branch's head."""
        from shared.platform import APP_ROOT

        gl = self.platform.gitlab
        path = f"infra/envs/{self.platform.name}/platform.yaml"
        if self.gitlab.file(gl.default_branch, path) is None:
            source = APP_ROOT / path
            if source.is_file():
                self.gitlab.push(gl.default_branch, {path: source.read_text(encoding="utf-8")},
                                 "Platform facts", author="Platform Core")
        head = self.gitlab.head(gl.default_branch)
        for kind in ("gitrepositories", "kustomizations"):
            for obj in self.kubernetes.objects.get((self._flux_gv(kind), kind), {}).values():
                self.kubernetes._follow_source_revision(obj, kind, head)
        self.kubernetes.source_head = lambda: self.gitlab.head(gl.default_branch)

    @staticmethod
    def _flux_gv(kind: str) -> str:
        return {"gitrepositories": "source.toolkit.fluxcd.io/v1",
                "kustomizations": "kustomize.toolkit.fluxcd.io/v1"}[kind]

    @property
    def emulators(self) -> dict[str, Emulator]:
        return {e.name: e for e in (self.arm, self.keyvault, self.cloudflare, self.kubernetes, self.gitlab,
                                     self.opencost, self.chat)}

    def start(self) -> dict[str, str]:
        self.ca = SandboxCA(self.workdir / "tls")
        for emulator in self.emulators.values():
            emulator.start(self.ca)
        return self.settings_env()

    def settings_env(self) -> dict[str, str]:
        assert self.ca is not None, "start the sandbox first"
        env: dict[str, str] = {"AZURE_CREDENTIAL": "static", "TLS_CA_BUNDLE": str(self.ca.ca_path)}
        for emulator in self.emulators.values():
            env.update(emulator.settings_env())
        return env

    def stop(self) -> None:
        for emulator in self.emulators.values():
            emulator.stop()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
