"""``platformctl chat "TEXT" [--as USER] [--teams] [--click ID]``: talk to the running app as Slack or Teams would.

Against ``make run``'s sandbox: the request is built and signed exactly as Slack (v0 signature, form fields,
a fresh ``response_url`` minted by the chat emulator) or Teams (HMAC, an activity) send it, posted to the
app's ChatOps endpoint, and the answer printed: the immediate reply, then whatever the app posts to the
``response_url`` or the Teams channel within ``--wait`` seconds. ``--click ID`` presses the Approve button
of approval request ID (Slack); in Teams, approve with ``chat "approve ID" --teams``.

Users are the sandbox's (``shared/local/sandbox/chat.py``: alice and bob are operators, victor a viewer,
mallory unknown) or a raw ``TEAM/USER`` Slack id.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from shared import cli
from shared.errors import BadInputError, ConfigError, TemporaryError

DEFAULT_APP = "http://127.0.0.1:7071"


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", default="", help='the command, e.g. "status dev-uaenorth"')
    parser.add_argument("--as", dest="user", default="alice", help="who asks (alice, bob, victor, mallory)")
    parser.add_argument("--teams", action="store_true", help="send it as a Teams outgoing webhook (default Slack)")
    parser.add_argument("--click", metavar="ID", help="press Approve on approval request ID (Slack)")
    parser.add_argument("--app", help=f"the app's base URL (default CHATOPS_APP_URL or {DEFAULT_APP})")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the answer (default 30)")


def cmd_chat(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    import requests

    from shared.local.sandbox import chat
    from shared.services.chat_notify import card_text

    values = cli.load_settings_file(args.settings) if args.settings else dict(os.environ)
    emulator = values.get("CHAT_SANDBOX_URL")
    if not emulator:
        raise ConfigError(["platformctl chat talks to make run's sandbox: CHAT_SANDBOX_URL is not in the settings "
                           "(pass --settings .local/sandbox.settings.json)"])
    app = (args.app or values.get("CHATOPS_APP_URL") or DEFAULT_APP).rstrip("/")
    verify = ctx.http.verify
    s = ctx.settings
    started = time.time()
    session = requests.Session()

    def call(method: str, url: str, **kw: Any) -> Any:
        try:
            return session.request(method, url, timeout=30, verify=verify, **kw)
        except requests.RequestException as exc:
            raise TemporaryError(f"{url.split('/api/')[0]} is not answering ({type(exc).__name__}): is `make run` "
                                 "running?", code="Unreachable") from None

    if args.teams:
        if args.click:
            raise BadInputError('in Teams, approve with: platformctl chat "approve ID" --teams --as USER')
        headers, body = chat.teams_message(args.text, user=args.user, secret=s.teams_webhook_secret or "")
        response = call("POST", f"{app}/api/chatops/teams", headers=headers, data=body)
        reply = _json(response)
        said = card_text(reply) if isinstance(reply, dict) else str(reply)
        lines = [f"HTTP {response.status_code}", said]
        wait_for = s.chat_notify_teams_webhook_url if "answer follows" in said else None
    else:
        url = call("POST", f"{emulator}/_sandbox/response-urls").json()["response_url"]
        if args.click:
            headers, body = chat.slack_click(args.click, user=args.user, secret=s.slack_signing_secret or "",
                                             response_url=url)
            response = call("POST", f"{app}/api/chatops/slack/interactions", headers=headers, data=body)
            lines, wait_for = [f"HTTP {response.status_code} (button pressed)"], url
        else:
            headers, body = chat.slack_command(args.text, user=args.user, secret=s.slack_signing_secret or "",
                                               response_url=url)
            response = call("POST", f"{app}/api/chatops/slack/commands", headers=headers, data=body)
            reply = _json(response)
            lines = [f"HTTP {response.status_code}", str(reply.get("text", reply) if reply else "")]
            for block in reply.get("blocks", []) if isinstance(reply, dict) else []:
                for element in block.get("elements", []):
                    if element.get("action_id") == "chatops_approve":
                        lines.append(f"[Approve] button for request {element['value']}: another operator presses "
                                     f"it with: platformctl chat --click {element['value']} --as bob")
            wait_for = url if str(reply.get("text", "")).startswith("Working on") else None
    posted: list[dict[str, Any]] = []
    if wait_for:
        deadline = time.time() + args.wait
        while time.time() < deadline and not posted:
            time.sleep(0.3)
            messages = call("GET", f"{emulator}/_sandbox/messages", params={"url": wait_for}).json()
            posted = [m for m in messages if m["at"] >= started - 1]
        lines += [f"-- posted to {'the Teams channel' if args.teams else 'the response_url'}:"]
        lines += [card_text(m["body"]) + ("" if m.get("delivered", True) else f"  [not shown: {m.get('flow_error')}]")
                  for m in posted] or [f"(nothing within {args.wait:g}s)"]
    code = 0 if response.status_code < 400 and (posted or not wait_for) else 1
    return code, {"status": response.status_code, "posted": [m["body"] for m in posted]}, "\n".join(lines)


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


cli.command("chat", 'send a ChatOps command to the running app as Slack or Teams would: chat "status" [--as bob]',
            )(cmd_chat)
cli.COMMAND_OPTIONS["chat"] = options
