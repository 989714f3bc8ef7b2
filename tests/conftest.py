"""Fixtures shared by the whole suite: the sandbox CA, a static credential, the platform facts."""

from __future__ import annotations

import pytest

from shared.credentials import StaticTokenCredential
from shared.local.sandbox.base import SandboxCA
from shared.platform import load_environment


@pytest.fixture(scope="session")
def sandbox_ca(tmp_path_factory: pytest.TempPathFactory) -> SandboxCA:
    """A throwaway CA whose server certificate covers 127.0.0.1 (https emulators)."""
    return SandboxCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def credential() -> StaticTokenCredential:
    return StaticTokenCredential()


@pytest.fixture(scope="session")
def dev_platform():
    """The dev-uaenorth platform facts from infra/envs (the same file Terraform reads)."""
    return load_environment("dev-uaenorth")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory):
    """One Azurite process for the session, on free ports; stopped at the end."""
    from shared.local.azurite import Azurite

    with Azurite(tmp_path_factory.mktemp("azurite")) as running:
        yield running


@pytest.fixture
def storage(azurite):
    from shared.adapters import HttpOptions
    from shared.adapters.storage import AzureStorage

    client = AzureStorage(connection_string=azurite.connection_string, http=HttpOptions(max_retries=0, timeout=5))
    yield client
    client.close()
