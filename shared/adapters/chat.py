"""Chat delivery: Slack ``response_url`` and incoming webhooks (slack_sdk's ``WebhookClient``), Teams incoming
webhooks (an HTTPS POST of a message; Microsoft's Python Bot Framework SDK is out of support, so plain
``requests``). Errors are mapped here: 429 and 5xx are temporary; a spent or expired ``response_url``
(Slack answers 404 ``used_url`` / ``expired_url``) and other 4xx are permanent.

URLs carry their own credential (the webhook path is the secret): they are registered for redaction and
never logged.
"""

from __future__ import annotations

import json
import ssl
from typing import Any, Protocol

from shared.adapters import HttpOptions
from shared.errors import PermanentError, TemporaryError
from shared.logs import register_secret


class ChatPoster(Protocol):
    def slack(self, url: str, message: dict[str, Any]) -> None: ...
    def teams(self, url: str, message: dict[str, Any]) -> None: ...


class WebhookPoster:
    def __init__(self, http: HttpOptions = HttpOptions()) -> None:
        self._http = http

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._http.ca_bundle) if self._http.ca_bundle else \
            ssl.create_default_context()

    def slack(self, url: str, message: dict[str, Any]) -> None:
        from slack_sdk.webhook import WebhookClient

        register_secret(url)
        client = WebhookClient(url, timeout=int(max(1, self._http.timeout)), ssl=self._ssl())
        try:
            response = client.send_dict(message)
        except OSError as exc:  # connection refused/reset, timeout: the message may be retried
            raise TemporaryError(f"posting to Slack failed: {type(exc).__name__}", code="ChatUnreachable") from exc
        _check(response.status_code, response.body or "", "Slack")

    def teams(self, url: str, message: dict[str, Any]) -> None:
        import requests

        register_secret(url)
        try:
            response = requests.post(url, data=json.dumps(message), headers={"Content-Type": "application/json"},
                                     timeout=self._http.timeout, verify=self._http.verify)
        except requests.RequestException as exc:
            raise TemporaryError(f"posting to Teams failed: {type(exc).__name__}", code="ChatUnreachable") from exc
        _check(response.status_code, response.text[:200], "Teams")


def _check(status: int, body: str, chat: str) -> None:
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise TemporaryError(f"{chat} answered {status}", code="ChatUnavailable", retry_after=30)
    raise PermanentError(f"{chat} refused the message: {status} {body[:100]}", code="ChatRefused",
                         remediation="a Slack response_url lasts 30 minutes and 5 uses; a webhook URL may have been "
                                     "revoked: check the chat app's configuration")


def build(ctx: Any) -> ChatPoster:
    return WebhookPoster(ctx.http)
