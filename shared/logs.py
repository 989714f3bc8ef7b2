"""Structured JSON logs with a correlation id per invocation, and redaction of secrets.

Redaction happens in three layers, so that a secret has to slip past all of them to leak:
1. by key: any mapping key that names a secret (token, key, password, signature, ...) is masked;
2. by shape: PEM private keys, bearer tokens, JWTs, connection-string keys and SAS signatures are
   masked wherever they appear inside a string;
3. by value: secret setting values registered at start-up (``register_secret``) are masked verbatim.

``redact`` is used for logs, error messages shown to users, and audit records alike.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

MASK = "***"

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
_known_secrets: set[str] = set()

# Keys whose values are secret whatever they look like. Matched as substrings of the lower-cased key,
# except where the key merely describes a secret (e.g. "token_expires_on", "key_vault").
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|signature|private[_-]?key|api[_-]?key|account[_-]?key|"
    r"connection[_-]?string|credential|authorization|x-gitlab-token|x-slack-signature|sig$|^key$|csr)",
    re.IGNORECASE,
)
_NOT_SECRET_KEY = re.compile(r"(expires|_url$|_uri$|vault|type$|_name$|_id$|key_id|keyvault|tokens$)", re.I)

_SECRET_SHAPES = [
    # PEM private keys (any algorithm), possibly with escaped newlines inside JSON.
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*", re.S),  # a truncated key is still a key
    # Authorization header values.
    re.compile(r"(?i)\b(bearer|basic|hmac)\s+[A-Za-z0-9._~+/=-]{8,}"),
    # JWTs.
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # Storage connection strings and SAS tokens.
    re.compile(r"(?i)(AccountKey|SharedAccessKey|SharedAccessSignature)=[^;\s\"']+"),
    re.compile(r"(?i)([?&]sig=)[^&\s\"']+"),
    # GitLab personal/project access tokens.
    re.compile(r"\bglpat-[A-Za-z0-9_-]{10,}"),
]


def register_secret(value: str | None) -> None:
    """Mask this exact value everywhere from now on (for secret settings read at start-up)."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _NOT_SECRET_KEY.search(key)


def redact_text(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for shape in _SECRET_SHAPES:
        text = shape.sub(_mask_match, text)
    return text


def _mask_match(match: re.Match[str]) -> str:
    whole = match.group(0)
    # Keep the label of "AccountKey=..." / "Bearer ..." / "&sig=" so a reader sees what was removed.
    if match.re.groups and match.group(1) and whole.startswith(match.group(1)):
        sep = "" if match.group(1).endswith("=") else ("=" if "=" in whole[: len(match.group(1)) + 1] else " ")
        return f"{match.group(1)}{sep}{MASK}"
    return MASK


def redact(value: Any) -> Any:
    """Return a copy of ``value`` (str, mapping, sequence, scalar) with every secret masked."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    return value


def correlation_id() -> str | None:
    return _correlation_id.get()


@contextmanager
def correlation(cid: str | None = None) -> Iterator[str]:
    """Bind a correlation id (the invocation id, or a new one) to every log line in this context."""
    cid = cid or uuid.uuid4().hex
    token = _correlation_id.set(cid)
    try:
        yield cid
    finally:
        _correlation_id.reset(token)


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation_id and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        cid = getattr(record, "correlation_id", None) or _correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        for key, value in vars(record).items():
            if key not in _RESERVED and key != "correlation_id" and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(redact(entry), default=str, ensure_ascii=False)


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Install JSON logging on the root logger (local host, CLI, tests). Idempotent."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_platform_core", False):
            root.setLevel(level)
            return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._platform_core = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # The SDKs log every request/response header at INFO; keep them quiet unless debugging.
    for noisy in ("azure", "urllib3", "httpx", "kubernetes", "gitlab"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a broken %-format must still log something, as logging itself would
        return record
    record.msg, record.args = redact_text(message), None
    return record


def install_host_filter() -> None:
    """Redact every log record as it is created, whoever handles it (the Functions host's handlers
    included). A filter on the root logger would not do: logger filters do not see records that
    propagate up from child loggers. Idempotent."""
    if logging.getLogRecordFactory() is not _redacting_factory:
        logging.setLogRecordFactory(_redacting_factory)
