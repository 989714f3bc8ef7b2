"""The Origin CA adapter through the real ``cloudflare`` SDK against the Cloudflare emulator."""

from __future__ import annotations

import dataclasses
import datetime as dt

import httpx
import pytest
from _fixtures_saas import closed_port_url, imported_modules_after, sandbox_context
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared.adapters import HttpOptions
from shared.adapters.cloudflare import CloudflareOriginCA, OriginCertificate, make_key_and_csr
from shared.errors import NotFoundError, PermanentError, TemporaryError
from shared.local.sandbox.base import Fault
from shared.local.sandbox.cloudflare import CloudflareEmulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloudflare(dev_platform):
    emulator = CloudflareEmulator(dev_platform)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(autouse=True)
def fresh(cloudflare):
    """The module's emulator, back at an empty account (certificates, faults, request log) for every test."""
    cloudflare.reset()


@pytest.fixture(scope="module")
def ctx(cloudflare, dev_platform):
    return sandbox_context(dev_platform, cloudflare)


@pytest.fixture(scope="module")
def origin_ca(ctx):
    return ctx.origin_ca


@pytest.fixture(scope="module")
def spec(dev_platform):
    return dev_platform.certificates[0]


@pytest.fixture(scope="module")
def keys(spec):
    return make_key_and_csr(spec)


def direct(cloudflare, *, token=None, max_retries=0, page_size=50) -> CloudflareOriginCA:
    return CloudflareOriginCA(token if token is not None else cloudflare.token, cloudflare.base_url + "/client/v4",
                              HttpOptions(max_retries=max_retries, timeout=2), page_size=page_size)


# -- happy paths -----------------------------------------------------------------------------


def test_build_from_the_context_gives_a_working_origin_ca(origin_ca, cloudflare):
    assert isinstance(origin_ca, CloudflareOriginCA)
    assert "active" in origin_ca.probe()


def test_a_csr_from_the_helper_is_accepted_and_the_certificate_covers_exactly_its_hostnames(origin_ca, spec, keys):
    issued = origin_ca.create(keys.csr_pem, spec.hostnames, spec.request_type, spec.validity_days)

    cert = x509.load_pem_x509_certificate(issued.certificate.encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == sorted(spec.hostnames) == sorted(issued.hostnames)
    assert issued.validity_days == spec.validity_days and issued.request_type == "origin-ecc"
    assert abs((issued.expires_on - dt.datetime.now(dt.UTC)) - dt.timedelta(days=spec.validity_days)) \
        < dt.timedelta(minutes=5)
    assert "CloudFlare Origin" in cert.issuer.rfc4514_string()
    # The key the helper made is the key the certificate certifies.
    key = serialization.load_pem_private_key(keys.key_pem.encode(), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert keys.key_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert "PRIVATE KEY" not in repr(keys)


def test_an_rsa_csr_is_issued_for_origin_rsa(origin_ca, spec):
    rsa_spec = dataclasses.replace(spec, request_type="origin-rsa")
    issued = origin_ca.create(make_key_and_csr(rsa_spec).csr_pem, rsa_spec.hostnames, "origin-rsa", 30)
    assert issued.request_type == "origin-rsa" and issued.validity_days == 30


def test_listing_pages_through_every_certificate_of_the_zone(cloudflare, spec, keys):
    # 5 per page: the smallest page the API documents (per_page 5-50); the emulator used to accept 2.
    paged = direct(cloudflare, page_size=5)
    ids = {paged.create(keys.csr_pem, spec.hostnames, spec.request_type, 7).id for _ in range(11)}
    before = cloudflare.count("GET", r"/certificates$")

    listed = paged.list(spec.zone_id)

    assert ids == {c.id for c in listed}
    assert all(isinstance(c, OriginCertificate) for c in listed)
    assert cloudflare.count("GET", r"/certificates$") - before >= 3  # really paged, 5 per page


def test_get_returns_the_certificate_and_none_for_an_unknown_id(origin_ca, spec, keys):
    issued = origin_ca.create(keys.csr_pem, spec.hostnames, spec.request_type, 7)
    assert origin_ca.get(issued.id) == issued
    assert origin_ca.get("1234567890") is None


def test_revoke_returns_when_and_the_certificate_leaves_the_listing(origin_ca, spec, keys):
    issued = origin_ca.create(keys.csr_pem, spec.hostnames, spec.request_type, 7)

    revoked_at = origin_ca.revoke(issued.id)

    assert abs(revoked_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert issued.id not in {c.id for c in origin_ca.list(spec.zone_id)}
    with pytest.raises(PermanentError):
        origin_ca.revoke(issued.id)
    with pytest.raises(NotFoundError):
        origin_ca.revoke("999")


# -- validation the emulator does like Cloudflare -------------------------------------------------


@pytest.mark.parametrize(("hostnames", "request_type", "validity", "why"), [
    (["www.not-our-zone.org"], "origin-ecc", 90, "outside the account's zones"),
    (["a.*.dev.platform.example.com"], "origin-ecc", 90, "interior wildcard"),
    (["*.*.platform.example.com"], "origin-ecc", 90, "double wildcard"),
    ([""], "origin-ecc", 90, "empty hostname"),
    (["dev.platform.example.com"], "origin-ecc", 45, "validity not in the allowed list"),
    (["dev.platform.example.com"], "origin-rsa", 90, "EC key sent as origin-rsa"),
])
def test_invalid_requests_are_permanent_errors(origin_ca, keys, hostnames, request_type, validity, why):
    with pytest.raises(PermanentError) as err:
        origin_ca.create(keys.csr_pem, hostnames, request_type, validity)
    assert not isinstance(err.value, TemporaryError)
    assert err.value.code == "Cloudflare6008"  # "Invalid request parameters": no invented per-field codes


def test_too_many_hostnames_are_refused(origin_ca, keys):
    with pytest.raises(PermanentError, match="at most 200"):
        origin_ca.create(keys.csr_pem, [f"h{i}.platform.example.com" for i in range(201)], "origin-ecc", 7)


def test_omitting_requested_validity_issues_a_fifteen_year_certificate_like_the_real_api(cloudflare, keys, spec):
    answer = httpx.post(cloudflare.base_url + "/client/v4/certificates",
                        headers={"Authorization": f"Bearer {cloudflare.token}"},
                        json={"csr": keys.csr_pem, "hostnames": list(spec.hostnames), "request_type": "origin-ecc"})
    assert answer.status_code == 200 and answer.json()["result"]["requested_validity"] == 5475


# -- errors mapped at the seam ---------------------------------------------------------------------


def test_envelope_code_1100_is_temporary_even_when_the_status_says_bad_request(cloudflare, origin_ca, keys, spec):
    cloudflare.inject(Fault(status=400, method="POST", path="/certificates$", code="1100",
                            message="Failed to write certificate to Database"))
    with pytest.raises(TemporaryError) as err:
        origin_ca.create(keys.csr_pem, spec.hostnames, spec.request_type, 7)
    assert err.value.code == "Cloudflare1100"


def test_envelope_code_10000_is_permanent_with_the_token_remediation(cloudflare, origin_ca, spec):
    cloudflare.inject(Fault(status=400, method="GET", code="10000", message="Authentication error"))
    with pytest.raises(PermanentError) as err:
        origin_ca.list(spec.zone_id)
    assert not isinstance(err.value, TemporaryError)
    assert "SSL and Certificates > Edit" in err.value.remediation


def test_throttling_carries_the_retry_after_the_server_sent(cloudflare, origin_ca, spec):
    cloudflare.inject(Fault(status=429, method="GET", code="971", message="Please wait", retry_after=7))
    with pytest.raises(TemporaryError) as err:
        origin_ca.list(spec.zone_id)
    assert err.value.retry_after == 7


def test_create_is_never_retried_by_the_sdk_even_when_it_may_retry_reads(cloudflare, keys, spec):
    retrying = direct(cloudflare, max_retries=2)
    cloudflare.inject(Fault(status=500, method="POST", path="/certificates$", times=None, code="10002"))
    before = cloudflare.count("POST", r"/certificates$")

    with pytest.raises(TemporaryError):
        retrying.create(keys.csr_pem, spec.hostnames, spec.request_type, 7)

    assert cloudflare.count("POST", r"/certificates$") - before == 1  # no duplicate certificate possible
    cloudflare.clear_faults()
    # Reads are safe to retry: the same client retries a transient 500 on GET by itself.
    cloudflare.inject(Fault(status=500, method="GET", path="/certificates$", times=1, retry_after=0.01))
    assert isinstance(retrying.list(spec.zone_id), list)


def test_a_bad_token_is_permanent_and_its_value_never_appears_in_the_error(cloudflare, spec):
    wrong = "cf-wrong-token-8f2a91c4d7e6b5a3"
    with pytest.raises(PermanentError) as err:
        direct(cloudflare, token=wrong).list(spec.zone_id)
    assert "10000" in str(err.value) and wrong not in str(err.value)
    assert "CLOUDFLARE_API_TOKEN" in err.value.remediation


def test_secrets_echoed_by_the_far_side_are_redacted_from_the_error(cloudflare, origin_ca, keys, spec):
    cloudflare.inject(Fault(status=400, method="POST", code="1001",
                            message=f"bad request {cloudflare.token} Bearer {cloudflare.token} {keys.key_pem}"))
    with pytest.raises(PermanentError) as err:
        origin_ca.create(keys.csr_pem, spec.hostnames, spec.request_type, 7)
    text = str(err.value)
    assert cloudflare.token not in text and "PRIVATE KEY" not in text and "CERTIFICATE REQUEST" not in text


def test_without_a_token_the_adapter_builds_but_every_call_says_what_to_set(cloudflare, dev_platform, spec):
    ctx = sandbox_context(dev_platform, cloudflare, CLOUDFLARE_API_TOKEN="")
    before = len(cloudflare.requests)
    with pytest.raises(PermanentError, match="CLOUDFLARE_API_TOKEN is not set"):
        ctx.origin_ca.list(spec.zone_id)
    assert len(cloudflare.requests) == before


def test_an_unreachable_api_is_a_temporary_error():
    adapter = CloudflareOriginCA("t" * 20, closed_port_url() + "/client/v4", HttpOptions(max_retries=0, timeout=2))
    with pytest.raises(TemporaryError):
        adapter.list("0" * 32)


def test_importing_the_adapter_does_not_import_the_sdk():
    loaded = imported_modules_after("shared.adapters.cloudflare")
    assert "cloudflare" not in loaded and "httpx" not in loaded
