"""Chat emulator: the Slack and Teams ends of ChatOps, on loopback, plus a client that signs like them.

Server side (what the app posts to):
- ``POST /slack/response/<token>``: a slash command's ``response_url``. As Slack documents
  (api.slack.com/interactivity/handling#message_responses): usable up to 5 times within 30 minutes; beyond
  that this emulator refuses with 404 and a plain-text ``used_url`` / ``expired_url`` body (Slack's error
  bodies for webhooks are plain text).
- ``POST /slack/services/<T>/<B>/<secret>``: a Slack incoming webhook (answers ``ok``).
- ``POST /powerautomate/automations/direct/workflows/<id>/triggers/manual/paths/invoke?api-version=1&sp=…&sv=…&sig=…``:
  a Teams Workflows webhook (the "When a Teams webhook request is received" trigger that replaced the retired
  Office 365 connectors). As the service does: 401 ``AuthorizationFailed`` without ``sp``/``sv``/``sig``, 401
  ``DirectApiInvalidAuthorizationSignature`` with a wrong ``sig``, else 202 with no body; the flow then posts
  the message's Adaptive Card to the channel, and fails (asynchronously: the trigger already answered 202)
  on a message without one ("Workflows support Adaptive Cards only"): such a message is recorded with
  ``delivered: false`` and the flow's error, not shown in the channel.
- ``POST /_sandbox/response-urls``: mint a fresh ``response_url`` (what Slack puts in each command);
  ``GET /_sandbox/messages``: everything posted, oldest first (``?url=`` filters by one URL).

Client side (what Slack and Teams send to the app), used by ``platformctl chat`` and the tests:
``slack_command`` / ``slack_click`` / ``teams_message`` build the request bodies and headers exactly as the
chats do (form fields, ``payload=`` JSON, an activity), signed with ``shared.services.chatops.verify``'s
published rules: Slack v0 over ``v0:{ts}:{body}``, Teams ``HMAC`` with the base64-decoded token.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.local.sandbox.base import Emulator, HttpError, Request, Response

ACCESS_FILE = Path(__file__).with_name("chatops-access.yaml")
WORKFLOW_PATH = r"/powerautomate/automations/direct/workflows/(?P<workflow>[A-Za-z0-9-]+)/triggers/manual/paths/invoke"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
TEAM = "TSANDBOX"
#: The sandbox's chat users (granted in chatops-access.yaml next to this file; mallory is granted nothing).
SANDBOX_USERS: dict[str, dict[str, str]] = {
    "alice": {"slack": "UALICE", "teams": "00000000-0000-4000-8000-0000000a11ce"},
    "bob": {"slack": "UBOB", "teams": "00000000-0000-4000-8000-000000000b0b"},
    "victor": {"slack": "UVICTOR", "teams": "00000000-0000-4000-8000-00000000d1c7"},
    "mallory": {"slack": "UMALLORY", "teams": "00000000-0000-4000-8000-0000000bad00"},
}
RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60


class ChatEmulator(Emulator):
    name = "chat"
    tls = True

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.slack_signing_secret = secrets.token_hex(16)
        self.teams_secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.workflow_sig = secrets.token_urlsafe(32)
        self.response_urls: dict[str, dict[str, float]] = {}
        self.messages: list[dict[str, Any]] = []
        super().__init__()

    def routes(self) -> None:
        self.route("POST", r"/slack/response/(?P<token>[A-Za-z0-9]+)", self._response_url)
        self.route("POST", r"/slack/services/(?P<hook>[A-Za-z0-9/]+)", self._incoming("slack", "ok"))
        self.route("POST", WORKFLOW_PATH, self._workflow)

    def error_body(self, status: int, code: str, message: str) -> Any:
        return code  # Slack's webhook errors are a plain-text code

    def settings_env(self) -> dict[str, str]:
        return {"SLACK_SIGNING_SECRET": self.slack_signing_secret, "TEAMS_WEBHOOK_SECRET": self.teams_secret,
                "CHATOPS_ACCESS_FILE": str(ACCESS_FILE),
                "CHAT_NOTIFY_SLACK_WEBHOOK_URL": f"{self.base_url}/slack/services/{TEAM}/BSANDBOX/notify",
                "CHAT_NOTIFY_TEAMS_WEBHOOK_URL": self.workflow_url("sandbox-channel")}

    def workflow_url(self, workflow: str) -> str:
        """A Workflows webhook URL as Teams shows it (the query carries the shared-access signature)."""
        return (f"{self.base_url}/powerautomate/automations/direct/workflows/{workflow}/triggers/manual/paths/invoke"
                f"?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.workflow_sig}")

    # -- what the app posts to ----------------------------------------------------------------

    def new_response_url(self) -> str:
        token = secrets.token_hex(12)
        with self.lock:
            self.response_urls[token] = {"created": self.clock(), "uses": 0}
        return f"{self.base_url}/slack/response/{token}"

    def _record(self, kind: str, request: Request, **extra: Any) -> None:
        with self.lock:
            self.messages.append({"kind": kind, "url": f"{self.base_url}{request.path}", "at": self.clock(),
                                  "body": request.json(), **extra})

    def _response_url(self, request: Request) -> Response:
        url = self.response_urls.get(request.params["token"])
        if url is None:
            raise HttpError(404, "invalid_token", "no such response_url")
        if self.clock() - url["created"] > RESPONSE_URL_SECONDS:
            raise HttpError(404, "expired_url", "response_url older than 30 minutes")
        if url["uses"] >= RESPONSE_URL_USES:
            raise HttpError(404, "used_url", "response_url used 5 times already")
        url["uses"] += 1
        self._record("slack-response", request)
        return Response(200, "ok")

    def _workflow(self, request: Request) -> Response:
        if not all(request.query.get(k) for k in ("sp", "sv", "sig")):
            return Response(401, {"error": {"code": "AuthorizationFailed", "message": (
                "Required parameters for shared access URL are permissions ('sp'), version ('sv'), and "
                "signature ('sig').")}})
        if not hmac.compare_digest(request.query["sig"], self.workflow_sig):
            return Response(401, {"error": {"code": "DirectApiInvalidAuthorizationSignature",
                                            "message": "The provided authorization signature is not valid."}})
        body = request.json()
        attachments = body.get("attachments") if isinstance(body, dict) else None
        cards = [a for a in attachments or [] if isinstance(a, dict) and a.get("contentType") == ADAPTIVE_CARD
                 and (a.get("content") or {}).get("type") == "AdaptiveCard"]
        if cards:
            self._record("teams", request, delivered=True)
        else:
            self._record("teams", request, delivered=False,
                         flow_error="the message has no Adaptive Card attachment: Workflows post Adaptive Cards only")
        return Response(202, None)

    def _incoming(self, kind: str, answer: str) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            self._record(kind, request)
            return Response(200, answer)
        return handler

    def _control(self, request: Request) -> Response:
        if request.path == "/_sandbox/response-urls" and request.method == "POST":
            return Response(201, {"response_url": self.new_response_url()})
        if request.path == "/_sandbox/messages" and request.method == "GET":
            with self.lock:
                wanted = (request.query.get("url") or "").split("?")[0]
                return Response(200, [m for m in self.messages if not wanted or m["url"] == wanted])
        return super()._control(request)

    def posted(self, url: str | None = None) -> list[dict[str, Any]]:
        """Messages posted (to ``url``, its query ignored), oldest first."""
        wanted = url.split("?")[0] if url else None
        with self.lock:
            return [m for m in self.messages if wanted is None or m["url"] == wanted]


# -- the chats' side: requests as Slack and Teams send them ------------------------------------------

def slack_command(text: str, *, user: str, secret: str, response_url: str, now: float | None = None,
                  command: str = "/platform", trigger_id: str | None = None) -> tuple[dict[str, str], bytes]:
    """Headers and form body of a slash command (api.slack.com/interactivity/slash-commands), signed."""

    team, user_id = _slack_user(user)
    body = urllib.parse.urlencode({
        "token": "deprecated-verification-token", "team_id": team, "team_domain": "sandbox",
        "channel_id": "CSANDBOX", "channel_name": "platform", "user_id": user_id, "user_name": user,
        "command": command, "text": text, "api_app_id": "ASANDBOX", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger_id or f"{secrets.randbelow(10**12)}.{secrets.token_hex(8)}",
    }).encode()
    return _slack_headers(body, secret, now), body


def slack_click(approval_id: str, *, user: str, secret: str, response_url: str,
                now: float | None = None) -> tuple[dict[str, str], bytes]:
    """Headers and body of a ``block_actions`` interaction: the Approve button pressed by ``user``."""
    from shared.services.chatops.service import APPROVE_ACTION

    team, user_id = _slack_user(user)
    payload = {"type": "block_actions", "team": {"id": team, "domain": "sandbox"},
               "user": {"id": user_id, "username": user, "name": user, "team_id": team},
               "api_app_id": "ASANDBOX", "channel": {"id": "CSANDBOX", "name": "platform"},
               "trigger_id": f"{secrets.randbelow(10**12)}.{secrets.token_hex(8)}", "response_url": response_url,
               "actions": [{"type": "button", "action_id": APPROVE_ACTION, "block_id": "approval", "value": approval_id,
                            "text": {"type": "plain_text", "text": "Approve"}, "action_ts": f"{time.time():.6f}"}]}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return _slack_headers(body, secret, now), body


def teams_message(text: str, *, user: str, secret: str, bot_name: str = "Platform") -> tuple[dict[str, str], bytes]:
    """Headers and body of a Teams outgoing-webhook activity mentioning the webhook, signed."""
    from shared.services.chatops.verify import teams_signature

    aad = SANDBOX_USERS[user]["teams"] if user in SANDBOX_USERS else user
    activity = {"type": "message", "id": secrets.token_hex(8), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "serviceUrl": "https://smba.trafficmanager.net/emea/", "channelId": "msteams",
                "from": {"id": f"29:{secrets.token_hex(6)}", "name": user, "aadObjectId": aad},
                "conversation": {"id": "19:sandbox@thread.skype", "conversationType": "channel"},
                "recipient": None, "textFormat": "plain", "text": f"<at>{bot_name}</at>&nbsp;{text}",
                "entities": [{"type": "mention", "text": f"<at>{bot_name}</at>"}],
                "channelData": {"tenant": {"id": "00000000-0000-4000-8000-00000000aaaa"}}}
    body = json.dumps(activity).encode("utf-8")
    return {"Content-Type": "application/json; charset=utf-8", "Authorization": teams_signature(secret, body)}, body


def _slack_user(user: str) -> tuple[str, str]:
    if "/" in user:
        team, _, user_id = user.partition("/")
        return team, user_id
    return TEAM, SANDBOX_USERS[user]["slack"] if user in SANDBOX_USERS else user.upper()


def _slack_headers(body: bytes, secret: str, now: float | None) -> dict[str, str]:
    from shared.services.chatops.verify import slack_signature

    ts = str(int(now if now is not None else time.time()))
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": slack_signature(secret, ts, body)}
