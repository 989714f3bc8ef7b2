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
        ("a Cloudflare Origin CA service key", "X-Auth-User-Service-Key: v1.0-0b55b1f2ce0a9f3f4ff5f6fc-"
         "e24fd090c02efcfecb4de8f4a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4", "0b55b1f2ce0a9f3f4ff5f6fc"),
        ("a bare Cloudflare service key", "using v1.0-e24fd090c02efcfecb4de8f4-0b55b1f2ce0a9f3f4ff5f6fc",
         "e24fd090c02efcfecb4de8f4"),
        ("a GitLab runner token", "registered glrt-AbCdEf0123456789xyz_", "AbCdEf0123456789xyz"),
        ("a GitLab deploy token", "cloning with gldt-AbCdEf0123456789xyz_", "AbCdEf0123456789xyz"),
        ("a PRIVATE-TOKEN header in text", "headers: PRIVATE-TOKEN: s3cr3tv4lu3 sent", "s3cr3tv4lu3"),
        ("a headers dict rendered as text", "sent {'PRIVATE-TOKEN': 'priv tok 1', 'Accept': 'json'}", "priv tok 1"),
        ("a JSON body rendered as text", 'body {"vault_password": "hunter2 two"}', "hunter2"),
        ("an escaped JSON body", 'raw "{\\"storage_key\\": \\"c2Vj cmV0\\"}"', "c2Vj"),
        ("a key=value pair", "retrying with signing_key=abcdef123456 now", "abcdef123456"),
        ("a quoted value cut off before its quote", 'body {"client_secret": "abc123 trunc', "abc123"),
        ("a function key in a URL", "GET /api/health/details?code=fUnCt10nK3y&x=1", "fUnCt10nK3y"),
        ("a function key header", "x-functions-key: fUnCt10nK3y", "fUnCt10nK3y"),
    ],
)
def test_secrets_are_masked_by_shape(kind, value, leaked):
    assert leaked not in logs.redact_text(value), kind


@pytest.mark.parametrize("key", ["api_token", "CLOUDFLARE_API_TOKEN", "password", "X-Gitlab-Token",
                                 "x-slack-signature", "private_key", "connection_string", "csr", "client_secret",
                                 "vault_password", "storage_key", "signing_key", "PRIVATE-TOKEN", "AccountKey",
                                 "apiKey", "x-functions-key", "Ocp-Apim-Subscription-Key", "primaryKey", "key",
                                 "csr_pem", "Set-Cookie", "proxy-authorization", "sas_token", "webhook_secrets"])
def test_values_under_secret_keys_are_masked(key):
    assert logs.redact({key: "visible-value"}) == {key: logs.MASK}


@pytest.mark.parametrize("key", ["key_vault", "token_expires_on", "vault_url", "certificate_name", "key_id",
                                 "max_tokens", "prompt_tokens", "PartitionKey", "RowKey", "public_key", "keyvault_url",
                                 "secret_name", "token_type", "idempotency_key", "password_policy"])
def test_values_under_descriptive_keys_are_kept(key):
    assert logs.redact({key: "kv-plat-dev"}) == {key: "kv-plat-dev"}


@pytest.fixture
def registered_secrets(monkeypatch):
    """register_secret for this test only: nothing stays registered for the rest of the run."""
    monkeypatch.setattr(logs, "_known_secrets", set())


def test_registered_secret_values_are_masked_wherever_they_appear(registered_secrets):
    logs.register_secret("s3cr3t-value-from-settings")
    assert "s3cr3t" not in logs.redact_text("calling with s3cr3t-value-from-settings now")


def test_objects_are_masked_by_what_they_print():
    class Opaque:
        def __str__(self):
            return "password=0paqu3-s3cr3t"

    assert "0paqu3" not in json.dumps(logs.redact({"detail": Opaque(), "when": (1, Opaque())}))


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


# -- every position a secret can take in a log record, through the real logging path ----------------------------

CANARIES = {
    "message": "Bearer canary-message-0001",
    "args": "glpat-canaryargs00002",
    "extra field vault_password": "canary-extra-0003",
    "extra field storage_key": "canary-extra-0004",
    "extra field signing_key": "canary-extra-0005",
    "nested dict in extra": "canary-nested-0006",
    "nested list in extra": "canary-listed-0007",
    "headers dict in extra": "canary-header-0008",
    "headers dict as an arg": "canary-header-0009",
    "Cloudflare service key in extra text": "v1.0-canary0010a1b2c3d4e5f6a7b8-c9d0e1f2a3b4c5d6e7f8",
    "exception text": "canary-exception-0011",
    "exception cause": "canary-cause-0012",
    "registered value in an object in extra": "canary-registered-0013",
    "a password=value arg with stack info": "canary-stack-0014",
}


def log_every_position(logger: logging.Logger) -> None:
    c = CANARIES
    logs.register_secret(c["registered value in an object in extra"])

    class Call:
        def __repr__(self):
            return f"Call(token_source={c['registered value in an object in extra']!r})"

    try:
        try:
            raise KeyError(f"password={c['exception cause']}")
        except KeyError as cause:
            raise RuntimeError(f"storage rejected AccountKey={c['exception text']}") from cause
    except RuntimeError:
        logger.exception(
            "calling with %s, sending %s, headers %s", c["message"], c["args"],
            {"PRIVATE-TOKEN": c["headers dict as an arg"], "Accept": "application/json"},
            extra={
                "vault_password": c["extra field vault_password"],
                "storage_key": c["extra field storage_key"],
                "signing_key": c["extra field signing_key"],
                "request": {"body": {"client": {"client_secret": c["nested dict in extra"]}},
                            "items": [{"api_token": c["nested list in extra"]}, "ok"]},
                "headers": {"PRIVATE-TOKEN": c["headers dict in extra"], "Content-Type": "application/json"},
                "detail": f"origin CA key {c['Cloudflare service key in extra text']}",
                "call": Call(),
            },
        )
    logger.warning("where: password=%s", c["a password=value arg with stack info"], stack_info=True)


def leaked(text: str) -> list[str]:
    return [position for position, canary in CANARIES.items() if canary in text]


@pytest.fixture
def host_logger(registered_secrets):
    """A logger as the Functions host sets one up: a plain handler that is not ours, with the host filter
    installed (as function_app does). Its format prints the extra fields too, as some handlers do."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s | %(vault_password)s %(storage_key)s "
                                           "%(signing_key)s %(request)s %(headers)s %(detail)s %(call)s",
                                           defaults={k: "" for k in ("vault_password", "storage_key", "signing_key",
                                                                     "request", "headers", "detail", "call")}))
    captured: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = captured.append  # type: ignore[method-assign]
    logger = logging.getLogger("platform_core.test.every_position")
    logger.addHandler(handler)
    logger.addHandler(collector)
    logger.propagate = False
    previous = logging.getLogRecordFactory()
    logs.install_host_filter()
    try:
        yield logger, stream, captured
    finally:
        logging.setLogRecordFactory(previous)
        logger.removeHandler(handler)
        logger.removeHandler(collector)


def test_the_host_filter_masks_secrets_in_every_position_of_a_record(host_logger):
    logger, stream, captured = host_logger
    log_every_position(logger)
    text = stream.getvalue()
    assert leaked(text) == []
    assert "RuntimeError" in text and "Traceback" in text and "KeyError" in text  # the traceback is kept
    assert "PRIVATE-TOKEN" in text and "application/json" in text  # only values are masked
    # A handler that reads the record's fields directly sees them masked too.
    assert leaked(repr([vars(r) for r in captured])) == []


def test_json_log_lines_mask_secrets_in_every_position(registered_secrets):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("platform_core.test.json_every_position")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        log_every_position(logger)
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    assert leaked(stream.getvalue()) == []
    assert lines[0]["headers"]["PRIVATE-TOKEN"] == logs.MASK and "RuntimeError" in lines[0]["error"]
