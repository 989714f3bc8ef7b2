"""Authenticating chat requests on their raw bytes, before anything is parsed. Pure: ``now`` is passed in.

Slack (api.slack.com/authentication/verifying-requests-from-slack): ``X-Slack-Signature: v0=<hex>`` where
hex = HMAC-SHA256(signing secret as UTF-8, ``v0:{X-Slack-Request-Timestamp}:{raw body}``); a timestamp more
than five minutes from now is a replay. Teams outgoing webhooks (learn.microsoft.com, "Create outgoing
webhooks"): ``Authorization: HMAC <base64>`` where the value is base64(HMAC-SHA256(base64-decoded security
token, raw UTF-8 body)). Both are compared with ``hmac.compare_digest``.

Every failure is the same ``BadInputError(status=401)`` saying only "unauthorized": a caller probing the
endpoint learns nothing about which check failed. The reason is returned to the caller's log by ``why``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from shared.errors import BadInputError

#: Slack's replay window (seconds), from its documentation.
SLACK_MAX_AGE = 300


class Unauthorized(BadInputError):
    """401 with no details. ``why`` is for our logs only (never the secret, never the signature)."""

    def __init__(self, why: str) -> None:
        super().__init__("unauthorized", status=401, code="Unauthorized")
        self.why = why


def header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v0=<hex>`` for a body sent at ``timestamp``: what Slack sends, and what our own emulator signs with."""
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def verify_slack(headers: Mapping[str, str], body: bytes, secret: str | None, *, now: float) -> None:
    """Raise ``Unauthorized`` unless the request carries a fresh, valid Slack v0 signature."""
    if not secret:
        raise Unauthorized("SLACK_SIGNING_SECRET is not set")
    timestamp = header(headers, "X-Slack-Request-Timestamp") or ""
    signature = header(headers, "X-Slack-Signature") or ""
    if not timestamp.isascii() or not timestamp.isdigit():
        raise Unauthorized("no or malformed X-Slack-Request-Timestamp")
    if abs(now - int(timestamp)) > SLACK_MAX_AGE:
        raise Unauthorized("stale X-Slack-Request-Timestamp (replay window is 300 s)")
    expected = slack_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise Unauthorized("X-Slack-Signature does not match")


def teams_signature(secret_b64: str, body: bytes) -> str:
    """``HMAC <base64>`` for a body: what Teams sends in ``Authorization``."""
    key = base64.b64decode(secret_b64)
    return "HMAC " + base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def verify_teams(headers: Mapping[str, str], body: bytes, secret_b64: str | None) -> None:
    """Raise ``Unauthorized`` unless ``Authorization: HMAC <base64>`` matches the body."""
    if not secret_b64:
        raise Unauthorized("TEAMS_WEBHOOK_SECRET is not set")
    supplied = (header(headers, "Authorization") or "").strip()
    scheme, _, value = supplied.partition(" ")
    if scheme.upper() != "HMAC" or not value:
        raise Unauthorized("no Authorization: HMAC header")
    try:
        key = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("TEAMS_WEBHOOK_SECRET is not base64") from None
    expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, value.strip().encode("utf-8", "replace")):
        raise Unauthorized("Authorization HMAC does not match")
