"""The Key Vault certificate adapter through the real azure-keyvault-certificates SDK against the emulator."""

from __future__ import annotations

import datetime as dt
import logging
import re
import subprocess
import sys
import traceback

import pytest

from shared.adapters import HttpOptions
from shared.adapters.keyvault import KeyVaultCertificates, StoredCertificate, verify_challenge_resource_for
from shared.errors import PermanentError, TemporaryError
from shared.local.sandbox.base import Fault
from shared.local.sandbox.keyvault import KeyVaultEmulator

pytestmark = pytest.mark.integration
APP_ROOT = __file__.rsplit("/tests/", 1)[0]


def http(sandbox_ca, timeout: float = 2.0) -> HttpOptions:
    return HttpOptions(max_retries=0, timeout=timeout, ca_bundle=str(sandbox_ca.ca_path))


@pytest.fixture(scope="module")
def vault_server(sandbox_ca, dev_platform):
    emulator = KeyVaultEmulator(dev_platform, page_size=2)  # small pages: every listing follows nextLink
    emulator.start(sandbox_ca)
    yield emulator
    emulator.stop()


@pytest.fixture
def vault(vault_server):
    vault_server.reset()
    return vault_server


@pytest.fixture
def store(vault, sandbox_ca, credential) -> KeyVaultCertificates:
    return KeyVaultCertificates(vault.base_url, credential, http=http(sandbox_ca))


@pytest.fixture
def spec(dev_platform):
    return dev_platform.certificates[0]


def renewed(vault, spec, days: int = 90) -> tuple[bytes, bytes]:
    """A freshly issued origin certificate for ``spec``: (key PEM, chain PEM)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    key, chain, _ = vault.origin_ca.issue(spec.hostnames, request_type=spec.request_type,
                                          not_before=now, not_after=now + dt.timedelta(days=days))
    return key, chain


def key_body(key_pem: bytes) -> str:
    """The secret part of a PEM key: its base64 lines."""
    return "".join(key_pem.decode().strip().splitlines()[1:-1])


# -- the challenge -----------------------------------------------------------------------------


def test_the_first_request_meets_the_challenge_and_the_credential_is_asked_for_the_vault_scope(
    sandbox_ca, dev_platform, credential,
):
    # A vault on a fresh port: the SDK's challenge cache (per host:port, process-wide) knows nothing of it.
    emulator = KeyVaultEmulator(dev_platform, seed=False)
    emulator.start(sandbox_ca)
    try:
        store = KeyVaultCertificates(emulator.base_url, credential, http=http(sandbox_ca))
        assert store.get("anything") is None
    finally:
        emulator.stop()

    assert [(r.method, r.status) for r in emulator.requests] == [("GET", 401), ("GET", 404)]
    assert credential.scopes == ["https://vault.azure.net/.default"]


def test_the_challenge_resource_is_verified_only_for_real_vault_domains():
    assert verify_challenge_resource_for("https://kv-plat-dev-uaen.vault.azure.net")
    assert verify_challenge_resource_for("https://kv.vault.usgovcloudapi.net/")
    assert not verify_challenge_resource_for("https://127.0.0.1:8443")
    assert not verify_challenge_resource_for("https://localhost:8443")


# -- reads -------------------------------------------------------------------------------------


def test_the_seeded_certificate_is_an_origin_certificate_inside_its_renewal_window(store, spec):
    cert = store.get(spec.name)

    assert isinstance(cert, StoredCertificate)
    assert cert.subject_alternative_names == tuple(spec.hostnames)
    assert cert.enabled and cert.id.endswith(f"/certificates/{spec.name}/{cert.version}")
    now = dt.datetime.now(dt.UTC)
    assert 0 < cert.days_left(now) < spec.renew_before_days
    assert cert.expires_on - cert.not_before == dt.timedelta(days=spec.validity_days)
    assert cert.tags["issuer"] == "cloudflare-origin-ca" and cert.tags["cloudflare-id"].isdigit()
    assert cert.tags["serial"] == cert.serial and cert.tags["hostnames"] == ",".join(spec.hostnames)
    assert re.fullmatch(r"[0-9A-F]{40}", cert.thumbprint)


def test_an_unknown_certificate_reads_as_none(store):
    assert store.get("never-imported") is None
    assert store.versions("never-imported") == []


def test_the_probe_is_one_human_line(store, vault, dev_platform):
    line = store.probe()

    assert line.startswith(f"{len(dev_platform.certificates)} certificates in 127.0.0.1")
    assert dev_platform.certificates[0].name in line


# -- import ------------------------------------------------------------------------------------


def test_importing_a_pem_creates_a_new_version_with_its_tags(store, vault, spec):
    before = store.get(spec.name)
    key, chain = renewed(vault, spec)

    imported = store.import_pem(spec.name, key + chain, {"cloudflare-id": "42", "serial": "abc"})

    assert imported.version != before.version
    assert dict(imported.tags) == {"cloudflare-id": "42", "serial": "abc"}
    assert imported.days_left(dt.datetime.now(dt.UTC)) > 89
    latest = store.get(spec.name)
    assert (latest.version, latest.thumbprint) == (imported.version, imported.thumbprint)
    assert dict(before.tags) == dict(store.versions(spec.name)[0].tags)  # tags are per version
    # What external-secrets will read next: the new key and the chain, leaf first.
    secret = vault.secret_value(spec.name)
    assert key_body(key) in secret.replace("\n", "")
    assert secret.index("PRIVATE KEY") < secret.index("CERTIFICATE")


def test_each_import_is_recorded_as_a_new_version_event(store, vault, spec):
    assert vault.events == []  # seeds predate any Event Grid subscription
    key, chain = renewed(vault, spec)

    imported = store.import_pem(spec.name, key + chain, {})

    (event,) = vault.events
    assert event["eventType"] == "Microsoft.KeyVault.CertificateNewVersionCreated"
    assert event["data"]["Id"] == imported.id
    assert (event["data"]["ObjectName"], event["data"]["Version"]) == (spec.name, imported.version)
    assert event["data"]["EXP"] == int(imported.expires_on.timestamp())


def test_versions_are_listed_across_pages_oldest_first(store, vault, spec):
    imported = [store.import_pem(spec.name, b"".join(renewed(vault, spec)), {"n": str(i)}) for i in range(3)]

    versions = store.versions(spec.name)

    assert len(versions) == 4
    assert [v.version for v in versions[1:]] == [v.version for v in imported]
    assert vault.count("GET", rf"/certificates/{spec.name}/versions$") == 2  # two pages of two


# -- bad input never leaks the key -------------------------------------------------------------


def _bad_pems(vault, spec) -> dict[str, tuple[bytes, bytes]]:
    key, chain = renewed(vault, spec)
    other_key, _ = renewed(vault, spec)
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_private_key(key, None)
    traditional = loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption())
    garbage_cert = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    return {
        "garbage certificate": (key, key + garbage_cert),
        "key of another certificate": (other_key, other_key + chain),
        "not PKCS#8": (traditional, traditional + chain),
        "truncated key": (key, key[: len(key) // 2] + chain),
    }


def test_malformed_pems_are_refused_without_the_key_material_in_error_or_logs(store, vault, spec, caplog):
    caplog.set_level(logging.DEBUG)
    for case, (key, pem) in _bad_pems(vault, spec).items():
        with pytest.raises(PermanentError) as caught:
            store.import_pem(spec.name, pem, {"case": case})
        error = caught.value
        secret = key_body(key)[:40]
        rendered = "".join(traceback.format_exception(error)) + repr(error) + error.remediation
        assert error.code == "BadParameter", case
        assert secret not in rendered, case
        assert error.__cause__ is None and error.__context__ is None, case
        assert "PKCS#8" in error.remediation
    assert all(key_body(k)[:40] not in caplog.text for k, _ in _bad_pems(vault, spec).values())
    assert len(store.versions(spec.name)) == 1


def test_a_pem_without_a_private_key_is_refused(store, vault, spec):
    _, chain = renewed(vault, spec)

    with pytest.raises(PermanentError) as caught:
        store.import_pem(spec.name, chain, {})

    assert "Private key is not specified" in str(caught.value)


# -- faults ------------------------------------------------------------------------------------


def test_throttling_is_temporary_with_the_servers_retry_after(store, vault, spec):
    vault.inject(Fault(status=429, path=f"/certificates/{spec.name}", code="Throttled",
                       message="Request was not processed because too many requests were received.", retry_after=3))

    with pytest.raises(TemporaryError) as caught:
        store.get(spec.name)

    assert caught.value.retry_after == 3


def test_a_server_error_on_import_is_temporary_and_keyless(store, vault, spec):
    key, chain = renewed(vault, spec)
    vault.inject(Fault(status=500, method="POST", path="/import$", code="InternalServerError", message="boom"))

    with pytest.raises(TemporaryError) as caught:
        store.import_pem(spec.name, key + chain, {})

    assert key_body(key)[:40] not in "".join(traceback.format_exception(caught.value))


def test_a_forbidden_answer_is_permanent_with_role_remediation(store, vault, spec):
    vault.inject(Fault(status=403, path=f"/certificates/{spec.name}", code="Forbidden",
                       message="The user, group or application does not have certificates get permission"))

    with pytest.raises(PermanentError) as caught:
        store.get(spec.name)

    assert "Key Vault Certificates Officer" in caught.value.remediation


def test_a_refused_token_is_permanent(store, vault, spec):
    vault.accepted_tokens = {"another-token"}

    with pytest.raises(PermanentError):
        store.get(spec.name)


def test_an_answer_slower_than_the_timeout_is_temporary(vault, sandbox_ca, credential, spec):
    slow = KeyVaultCertificates(vault.base_url, credential, http=http(sandbox_ca, timeout=0.5))
    vault.inject(Fault(status=None, path=f"/certificates/{spec.name}", delay=1.0))

    with pytest.raises(TemporaryError):
        slow.get(spec.name)


# -- wiring ------------------------------------------------------------------------------------


def test_the_context_builds_the_adapter_from_the_sandbox_settings(vault, sandbox_ca, credential, dev_platform, spec):
    from shared.context import Context
    from shared.settings import Settings

    settings = Settings.from_env({
        "PLATFORM_ENV": dev_platform.name, "PLATFORM_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "AZURE_CREDENTIAL": "static", "TLS_CA_BUNDLE": str(sandbox_ca.ca_path), "SDK_MAX_RETRIES": "0",
        **vault.settings_env(),
    })
    ctx = Context(settings=settings, platform=dev_platform, credential=credential)

    assert ctx.certificates.get(spec.name).name == spec.name


def test_importing_the_adapter_does_not_import_the_sdk():
    code = ("import shared.adapters.keyvault, sys; "
            "assert 'azure.keyvault.certificates' not in sys.modules; assert 'azure.core' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=APP_ROOT, check=True, timeout=30)
