"""Emulator fixtures several integration modules share (each module still gets its own instances: module scope)."""

from __future__ import annotations

import pytest

from shared.local.sandbox.arm import ArmEmulator
from shared.local.sandbox.kubernetes import KubernetesEmulator


@pytest.fixture(scope="module")
def kube(dev_platform):
    """The Kubernetes emulator seeded from the repository's declared estate."""
    emulator = KubernetesEmulator(dev_platform)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def linked_arm(sandbox_ca, dev_platform, kube):
    """The ARM emulator whose node pools show up as ``kube``'s nodes (scale-ups, deleteMachines)."""
    emulator = ArmEmulator(dev_platform)
    emulator.link_kubernetes(kube)
    emulator.start(sandbox_ca)
    yield emulator
    emulator.stop()
