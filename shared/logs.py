"""Structured JSON logs with a correlation id per invocation, and redaction of secrets.

Redaction happens in three layers, so that a secret has to slip past all of them to leak:
1. by key: the value under any mapping key that names a secret (``is_secret_key``: vault_password,
   storage_key, PRIVATE-TOKEN, ...) is masked, and so is the value after such a key inside text
   (``password=x``, ``'PRIVATE-TOKEN': 'x'`` in a printed dict, ``"api_token": "x"`` in a JSON body);
2. by shape: PEM private keys, bearer tokens, JWTs, connection-string keys, SAS signatures, function
   keys in URLs, GitLab/Slack tokens and Cloudflare service keys are masked wherever they appear;
3. by value: secret setting values registered at start-up (``register_secret``) are masked verbatim.

``redact`` is used for logs, error messages shown to users, and audit records alike;
``install_host_filter`` applies it to every log record in every position, whoever handles it.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
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

# Keys whose values are secret whatever they look like. A key is split into words (snake_case,
# kebab-case, camelCase, dots) and its LAST word says what the value is: "vault_password",
# "storage_key", "PRIVATE-TOKEN", "x-functions-key" hold secrets; "token_expires_on", "key_vault",
# "key_id", "secret_name", "max_tokens" merely describe one.
_SECRET_WORDS = frozenset({
    "token", "secret", "secrets", "password", "passwords", "passwd", "pwd", "passphrase", "signature", "sig",
    "key", "credential", "credentials", "authorization", "cookie", "csr", "connectionstring", "sas",
})
#: Words anywhere in a key that make it secret whatever follows ("csr_pem", "private_key_bytes").
_SECRET_ANYWHERE = frozenset({"csr", "privatekey"})
#: "<word>_key" names that are identifiers, not key material.
_IDENTIFIER_KEYS = frozenset({"partition", "row", "public", "sort", "idempotency", "dedup", "cache", "lookup",
                              "foreign", "routing", "lease", "hash"})
_KEY_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

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
    # Function keys in a URL (the Functions host takes them as ?code=).
    re.compile(r"([?&]code=)[^&\s\"']+"),
    # GitLab tokens, by their documented prefixes (personal/project/group, OAuth, deploy, runner, CI job,
    # trigger, feed, incoming mail, agent, SCIM, feature flags).
    re.compile(r"\b(?:glpat|gloas|gldt|glrt|glrtr|glcbt|glptt|glft|glimt|glagent|glsoat|glffct)-[A-Za-z0-9_-]{10,}"),
    # Cloudflare Origin CA service keys ("v1.0-<hex>-<hex>", X-Auth-User-Service-Key); retired but still around.
    re.compile(r"\bv1\.0-[0-9A-Za-z]{8,}(?:-[0-9A-Za-z]{8,})+"),
    # Slack tokens.
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
]

# "<secret key><sep><value>" inside text: "password=x", "PRIVATE-TOKEN: x", "'storage_key': 'x y'", and the same
# with JSON's escaped quotes. The key is judged by ``is_secret_key``; a quoted value is masked up to its quote
# (or the end of the line, when a truncated message lost it).
_KEY_SEP = re.compile(r"""(?<![A-Za-z0-9_.-])(?P<key>[A-Za-z][A-Za-z0-9_.-]*)\\?["']?\s*[:=]\s*""")
_VALUE = re.compile(r"""(?P<quote>\\?["'])(?P<quoted>[^\n]*?)(?:(?P=quote)|(?=\n)|\Z)"""
                    r"""|(?:(?i:bearer|basic|hmac|token)\s+)?[^\s"',;&}\]\\]+""")


def register_secret(value: str | None) -> None:
    """Mask this exact value everywhere from now on (for secret settings read at start-up)."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


@functools.lru_cache(maxsize=4096)  # the same few hundred keys and header names, over and over
def is_secret_key(key: str) -> bool:
    words = [w.lower() for w in _KEY_WORD.findall(key)]
    if not words:
        return False
    pairs = {a + b for a, b in itertools.pairwise(words)}
    if _SECRET_ANYWHERE & (set(words) | pairs):
        return True
    if words[-2:] == ["connection", "string"]:
        return True
    if words[-1] == "key" and len(words) > 1 and words[-2] in _IDENTIFIER_KEYS:
        return False
    return words[-1] in _SECRET_WORDS


def redact_text(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for shape in _SECRET_SHAPES:
        text = shape.sub(_mask_match, text)
    return _mask_key_values(text)


def _mask_key_values(text: str) -> str:
    out, pos = [], 0
    while (found := _KEY_SEP.search(text, pos)) is not None:
        value = _VALUE.match(text, found.end()) if is_secret_key(found.group("key")) else None
        if value is None or MASK in value.group(0) or value.group("quoted") == "":
            # Not a secret (its value may itself be "KEY: value"): go on right after the separator.
            out.append(text[pos:found.end()])
            pos = found.end()
            continue
        quote = value.group("quote") or ""
        out.append(f"{text[pos:found.end()]}{quote}{MASK}{quote}")
        pos = value.end()
    out.append(text[pos:])
    return "".join(out)


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
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else ends up printed (str() in a formatter, default=str in JSON): mask what it prints.
    return redact_text(str(value))


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
        elif record.exc_text:  # rendered (and masked) when the record was made: see install_host_filter
            entry["error"] = record.exc_text
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


class _RedactingFields(dict):  # type: ignore[type-arg]
    """A record's ``__dict__`` that masks what is added to it after the factory returned: ``Logger.makeRecord``
    writes each ``extra`` field with ``record.__dict__[key] = value``, ``logging.makeLogRecord`` with ``update``."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, redact({key: value})[key] if isinstance(key, str) else redact(value))

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a broken %-format must still log something, as logging itself would
        message = f"{record.msg!r} % {record.args!r}"
    record.msg, record.args = redact_text(message), None
    if record.exc_info and record.exc_info[1] is not None:
        # Render the traceback now, masked, and drop the live exception: standard formatters print
        # ``exc_text``, and no handler can render the unmasked exception again.
        record.exc_text = redact_text(_TRACEBACKS.formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    record.__dict__ = _RedactingFields(record.__dict__)
    return record


_TRACEBACKS = logging.Formatter()


def install_host_filter() -> None:
    """Redact every log record as it is created, whoever handles it (the Functions host's handlers
    included): the message and its arguments, the exception and its traceback, the stack, and every
    ``extra`` field (nested mappings and lists, headers, objects by what they print). A filter on the root
    logger would not do: logger filters do not see records that propagate up from child loggers.
    Idempotent."""
    if logging.getLogRecordFactory() is not _redacting_factory:
        logging.setLogRecordFactory(_redacting_factory)
