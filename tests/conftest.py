"""Fixtures shared by the whole suite: the sandbox CA, a static credential, the platform facts."""

from __future__ import annotations

import pytest

from shared.credentials import StaticTokenCredential
from shared.local.sandbox.base import SandboxCA
from shared.platform import load_environment


@pytest.fixture(scope="session")
def session_secrets() -> frozenset[str]:
    """The redaction registry as the run found it (values registered by the code under test's imports)."""
    from shared import logs

    return frozenset(logs._known_secrets)


@pytest.fixture(scope="module", autouse=True)
def _secrets_registered_by_a_module_end_with_it(session_secrets):
    """``Settings.from_env`` registers secret settings (tokens) for redaction, process-wide. A test module that
    builds settings must not leave them registered for the rest of the run: restore the registry after it."""
    from shared import logs

    yield
    logs._known_secrets.intersection_update(session_secrets)


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
