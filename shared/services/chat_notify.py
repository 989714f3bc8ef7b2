"""Notifications to the team's chat channel(s): a Slack incoming webhook and/or a Teams Workflows webhook.

The contract other capabilities call (lazily, tolerating ImportError):
``post(ctx, text, *, env=None) -> bool``: post ``text`` to every configured channel
(``CHAT_NOTIFY_SLACK_WEBHOOK_URL``, ``CHAT_NOTIFY_TEAMS_WEBHOOK_URL``); False when none is configured or
none took it. Never raises for a chat that is down: a notification must not fail the work it reports on
(the failure is logged with its code). ``env`` prefixes the message (default: the app's environment).

Teams: Microsoft retired Office 365 connectors (the ``webhook.office.com`` incoming webhooks) in 2026; a
channel now takes messages through a Workflows webhook ("Send webhook alerts to a channel", trigger "When a
Teams webhook request is received"), which posts **Adaptive Cards only** and answers 202. ``teams_card`` is
that message: a Bot Framework ``message`` activity with one Adaptive Card attachment (the same shape answers
a Teams outgoing webhook, so ChatOps replies use it too).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from shared import logs
from shared.errors import PlatformError

log = logging.getLogger("platform_core.chat_notify")


def post(ctx: Any, text: str, *, env: str | None = None, chats: Sequence[str] = ("slack", "teams")) -> bool:
    settings = ctx.settings
    targets = {"slack": settings.chat_notify_slack_webhook_url, "teams": settings.chat_notify_teams_webhook_url}
    prefix = f"[{env or ctx.platform.name}] "
    body = prefix + logs.redact_text(text)
    delivered = False
    for chat in chats:
        url = targets.get(chat)
        if not url:
            continue
        try:
            if chat == "slack":
                ctx.chat.slack(url, {"text": body})
            else:
                ctx.chat.teams(url, teams_card(body))
            delivered = True
        except PlatformError as error:
            log.warning("chat notification to %s failed: %s: %s", chat, error.code, error,
                        extra={"chat": chat, "error_code": error.code})
    return delivered


ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
#: Adaptive Card schema 1.4: what Teams renders on desktop, web and mobile, in channels and in bot replies
CARD_VERSION = "1.4"
_FENCE = re.compile(r"```[a-z]*\n?(.*?)```", re.S)


def teams_card(text: str) -> dict[str, Any]:
    """``text`` as a Teams message with one Adaptive Card: paragraphs as wrapped text blocks, fenced blocks
    (```) as monospace ones (Adaptive Card markdown has no code spans: a table would otherwise reflow)."""
    body: list[dict[str, Any]] = []
    position = 0
    for match in _FENCE.finditer(text):
        body += _blocks(text[position:match.start()])
        code = match.group(1).rstrip("\n")
        if code:
            body.append({"type": "TextBlock", "text": code, "wrap": True, "fontType": "Monospace", "spacing": "Small"})
        position = match.end()
    body += _blocks(text[position:])
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": CARD_VERSION, "body": body or [{"type": "TextBlock", "text": " ", "wrap": True}],
            "msteams": {"width": "Full"}}
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def card_text(message: dict[str, Any]) -> str:
    """The text of a message ``teams_card`` built (or of a plain ``text`` message): for logs, tests, the CLI."""
    parts = [str(message["text"])] if message.get("text") else []
    for attachment in message.get("attachments") or []:
        if attachment.get("contentType") == ADAPTIVE_CARD:
            parts += [str(block.get("text", "")) for block in (attachment.get("content") or {}).get("body") or []
                      if block.get("type") == "TextBlock"]
    return "\n".join(parts)


def _blocks(text: str) -> list[dict[str, Any]]:
    text = text.strip("\n")
    return [{"type": "TextBlock", "text": text, "wrap": True}] if text.strip() else []
