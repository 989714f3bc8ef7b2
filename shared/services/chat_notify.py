"""Notifications to the team's chat channel(s): a Slack incoming webhook and/or a Teams incoming webhook.

The contract other capabilities call (lazily, tolerating ImportError):
``post(ctx, text, *, env=None) -> bool``: post ``text`` to every configured channel
(``CHAT_NOTIFY_SLACK_WEBHOOK_URL``, ``CHAT_NOTIFY_TEAMS_WEBHOOK_URL``); False when none is configured or
none took it. Never raises for a chat that is down: a notification must not fail the work it reports on
(the failure is logged with its code). ``env`` prefixes the message (default: the app's environment).
"""

from __future__ import annotations

import logging
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
                ctx.chat.teams(url, {"type": "message", "text": body})
            delivered = True
        except PlatformError as error:
            log.warning("chat notification to %s failed: %s: %s", chat, error.code, error,
                        extra={"chat": chat, "error_code": error.code})
    return delivered
