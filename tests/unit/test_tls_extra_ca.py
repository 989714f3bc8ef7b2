"""TLS_EXTRA_CA_PEM: CA certificates trusted on top of the public roots (or TLS_CA_BUNDLE), shared/tls.py."""

import ssl
import warnings

import certifi
import pytest
from cryptography import x509

from shared import tls
from shared.context import Context
from shared.errors import ConfigError
from shared.local.sandbox.base import SandboxCA
from shared.platform import load_environment
from shared.settings import Settings

GOOD = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}


@pytest.fixture(scope="module")
def ca_pem(sandbox_ca):
    return sandbox_ca.ca_path.read_text()


def subjects_of_pem(pem):
    with warnings.catch_warnings():  # one of certifi's roots has a non-positive serial number
        warnings.simplefilter("ignore")
        return {c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(pem.encode())}


def subjects(path):
    return subjects_of_pem(open(path, encoding="ascii").read())


def test_a_pem_ca_certificate_is_accepted_and_kept_normalised(ca_pem):
    settings = Settings.from_env({**GOOD, "TLS_EXTRA_CA_PEM": "\n  " + ca_pem + "\n"})
    assert settings.tls_extra_ca_pem == ca_pem
    assert ca_pem not in repr(settings)  # public, but a page of base64 in every repr helps nobody


def test_terraforms_placeholder_before_external_secrets_pushed_the_ca_means_no_extra_ca():
    assert Settings.from_env({**GOOD, "TLS_EXTRA_CA_PEM": tls.PLACEHOLDER}).tls_extra_ca_pem is None


def test_an_unresolved_key_vault_reference_means_no_extra_ca_not_an_app_that_refuses_to_start():
    unresolved = "@Microsoft.KeyVault(VaultName=kv-plat-dev-uaen;SecretName=platform-internal-ca-crt)"
    assert Settings.from_env({**GOOD, "TLS_EXTRA_CA_PEM": unresolved}).tls_extra_ca_pem is None


REFUSALS = {
    "text that is no PEM is refused, quoting only a short prefix": (
        "hello this is not a certificate at all, 0123456789", "expected PEM CERTIFICATE blocks, got text starting"),
    "a CERTIFICATE block that does not parse is refused": (
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "does not parse"),
    "a private key is refused, even next to the certificate": (
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n", "holds a private key"),
}


@pytest.mark.parametrize("behaviour", sorted(REFUSALS))
def test_a_bad_extra_ca_is_a_config_error_naming_the_setting(behaviour, ca_pem):
    value, message = REFUSALS[behaviour]
    if "private key" in behaviour:
        value = ca_pem + value
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**GOOD, "TLS_EXTRA_CA_PEM": value})
    text = str(caught.value)
    assert "TLS_EXTRA_CA_PEM: " in text and message in text
    assert "c2VjcmV0" not in text and "0123456789" not in text


def test_the_merged_bundle_holds_certifis_roots_and_the_extra_ca_once_per_process(ca_pem):
    path = tls.merged_bundle(None, ca_pem)
    merged = subjects(path)
    assert subjects(certifi.where()) | subjects_of_pem(ca_pem) == merged
    assert tls.merged_bundle(None, ca_pem) == path
    ssl.create_default_context(cafile=path)  # OpenSSL loads it


def test_with_tls_ca_bundle_the_bundle_is_that_file_plus_the_extra(tmp_path, ca_pem):
    replacement = SandboxCA(tmp_path)
    merged = subjects(tls.merged_bundle(str(replacement.ca_path), ca_pem))
    assert merged == subjects(replacement.ca_path) | subjects_of_pem(ca_pem)


def test_the_contexts_http_options_use_the_merged_bundle_only_when_an_extra_ca_is_set(ca_pem):
    plain = Context(settings=Settings.from_env(GOOD), platform=load_environment("dev-uaenorth"))
    assert plain.http.ca_bundle is None and plain.http.verify is True
    settings = Settings.from_env({**GOOD, "TLS_EXTRA_CA_PEM": ca_pem})
    extra = Context(settings=settings, platform=load_environment("dev-uaenorth"))
    assert extra.http.verify == extra.http.ca_bundle == tls.merged_bundle(None, ca_pem)
