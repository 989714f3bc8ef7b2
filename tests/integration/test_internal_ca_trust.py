"""The app reaches a host whose certificate the cluster's internal CA signed (OpenCost behind the internal Gateway)
only through TLS_EXTRA_CA_PEM: the real adapter over a real TLS socket, the CA a throwaway one."""

import pytest
import requests

from shared.context import Context
from shared.errors import TemporaryError
from shared.local.sandbox.base import SandboxCA
from shared.local.sandbox.opencost import OpenCostEmulator


@pytest.fixture(scope="module")
def internal_ca(tmp_path_factory):
    """Stands for cert-manager's platform-internal-ca: in no trust store, and not TLS_CA_BUNDLE either."""
    # Its own name: two CAs of one subject in a bundle make OpenSSL check a signature against the wrong key.
    return SandboxCA(tmp_path_factory.mktemp("internal-ca"), common_name="platform-internal-ca")


@pytest.fixture(scope="module")
def opencost(dev_platform, internal_ca):
    yield from https_opencost(dev_platform, internal_ca)


def https_opencost(platform, ca):
    """OpenCost as the app meets it in Azure: https on the internal Gateway (the emulator serves http by default)."""
    emulator = OpenCostEmulator(platform)
    emulator.tls = True
    emulator.start(ca=ca)
    yield emulator
    emulator.stop()


def context(opencost, **settings):
    return Context.from_env({"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING":
                             "UseDevelopmentStorage=true", "AZURE_CREDENTIAL": "static", "SDK_MAX_RETRIES": "0",
                             "HTTP_TIMEOUT_SECONDS": "5", **opencost.settings_env(), **settings})


def test_with_the_internal_ca_as_extra_pem_the_opencost_adapter_and_requests_reach_the_internal_host(
        opencost, internal_ca):
    assert opencost.base_url.startswith("https://")
    ctx = context(opencost, TLS_EXTRA_CA_PEM=internal_ca.ca_path.read_text())
    [allocations] = ctx.cost_allocations.allocation(window="1h", aggregate="namespace")
    assert "model-serving" in allocations
    # requests-based adapters get the same bundle through HttpOptions.verify
    answer = requests.get(f"{opencost.base_url}/allocation?window=1h&aggregate=namespace", timeout=5,
                          headers={"Authorization": "Bearer sandbox-token"}, verify=ctx.http.verify)
    assert answer.status_code == 200


@pytest.mark.parametrize("trusted", ["the public roots only", "another CA as TLS_CA_BUNDLE"])
def test_without_it_the_call_fails_tls_as_a_temporary_error(trusted, opencost, sandbox_ca):
    settings = {"TLS_CA_BUNDLE": str(sandbox_ca.ca_path)} if "TLS_CA_BUNDLE" in trusted else {}
    with pytest.raises(TemporaryError) as failed:
        context(opencost, **settings).cost_allocations.allocation(window="1h", aggregate="namespace")
    assert "CERTIFICATE_VERIFY_FAILED" in str(failed.value) or "certificate verify failed" in str(failed.value)


def test_tls_ca_bundle_plus_the_extra_pem_trusts_both(opencost, internal_ca, sandbox_ca):
    ctx = context(opencost, TLS_CA_BUNDLE=str(sandbox_ca.ca_path), TLS_EXTRA_CA_PEM=internal_ca.ca_path.read_text())
    [allocations] = ctx.cost_allocations.allocation(window="1h", aggregate="namespace")
    assert "model-serving" in allocations
    for sandbox_signed in https_opencost(ctx.platform, sandbox_ca):
        [allocations] = context(sandbox_signed, TLS_CA_BUNDLE=str(sandbox_ca.ca_path),
                                TLS_EXTRA_CA_PEM=internal_ca.ca_path.read_text()
                                ).cost_allocations.allocation(window="1h", aggregate="namespace")
        assert "model-serving" in allocations
