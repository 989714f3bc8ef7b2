import io
import json
import logging

import pytest

from shared import logs

PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("kind", "value", "leaked"),
    [
        ("a PEM private key", f"key is {PEM} ok", "MIGHAgEAMBMG"),
        ("a truncated PEM private key", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB", "MHcCAQEEIB"),
        ("a bearer token", "Authorization: Bearer abcdef0123456789", "abcdef0123456789"),
        ("a JWT", "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sgnature", "eyJzdWIiOiIxIn0"),
        ("a storage account key", "Protocol=https;AccountName=a;AccountKey=c2VjcmV0a2V5==;", "c2VjcmV0"),
        ("a SAS signature", "https://a.blob.core.windows.net/c?sv=2024&sig=abc%2Fdef&se=1", "abc%2Fdef"),
        ("a GitLab token", "token glpat-AbCdEf0123456789xyz", "glpat-AbCdEf0123456789xyz"),
        ("an HMAC header", "Authorization: HMAC c2lnbmF0dXJlMTIzNDU2", "c2lnbmF0dXJlMTIzNDU2"),
    ],
)
def test_secrets_are_masked_by_shape(kind, value, leaked):
    assert leaked not in logs.redact_text(value), kind


@pytest.mark.parametrize("key", ["api_token", "CLOUDFLARE_API_TOKEN", "password", "X-Gitlab-Token",
                                 "x-slack-signature", "private_key", "connection_string", "csr", "client_secret"])
def test_values_under_secret_keys_are_masked(key):
    assert logs.redact({key: "visible-value"}) == {key: logs.MASK}


@pytest.mark.parametrize("key", ["key_vault", "token_expires_on", "vault_url", "certificate_name", "key_id"])
def test_values_under_descriptive_keys_are_kept(key):
    assert logs.redact({key: "kv-plat-dev"}) == {key: "kv-plat-dev"}


def test_registered_secret_values_are_masked_wherever_they_appear():
    logs.register_secret("s3cr3t-value-from-settings")
    assert "s3cr3t" not in logs.redact_text("calling with s3cr3t-value-from-settings now")


def test_log_lines_are_json_with_the_correlation_id_and_no_secrets():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.logs.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with logs.correlation("cid-123"):
            logger.warning("rotating with %s", "Bearer abcdefghijklmnop", extra={"api_token": "t0ken-value"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["correlation_id"] == "cid-123"
    assert line["level"] == "WARNING"
    assert "abcdefghijklmnop" not in stream.getvalue() and "t0ken-value" not in stream.getvalue()


def test_records_are_scrubbed_even_when_someone_else_formats_them():
    record = logs._redacting_factory("x", logging.INFO, __file__, 1, "key %s", (PEM,), None)
    assert "MIGHAgEAMBMG" not in record.getMessage()


def test_once_installed_records_from_any_logger_reach_any_handler_redacted():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # a plain handler, like the Functions host's
    logger = logging.getLogger("platform_core.some.child")
    logger.addHandler(handler)
    logger.propagate = False
    previous = logging.getLogRecordFactory()
    try:
        logs.install_host_filter()
        logs.install_host_filter()  # idempotent
        logger.warning("calling with Bearer %s", "abcdefghijklmnopqrstu")
    finally:
        logging.setLogRecordFactory(previous)
        logger.removeHandler(handler)
    assert "abcdefghijklmnopqrstu" not in stream.getvalue() and "Bearer ***" in stream.getvalue()
