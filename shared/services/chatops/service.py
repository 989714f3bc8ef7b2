"""The request path of ChatOps, and the queue worker that does the longer work.

Accept (HTTP, must answer within Slack's 3 s and Teams' 5 s): verify the raw bytes (401, no details), parse
(400 when the body is not what the chat sends), de-duplicate (a Slack retry, ``X-Slack-Retry-Num``, is the
same ``trigger_id`` and is answered without running again), parse the command, authorize it against the
access file (deny by default), and then either answer at once (help, errors, refusals, an approval request)
or put the work on the ``chatops-commands`` queue and acknowledge. Every command, refused or not, is
audited on ``chatops/<env>`` with who, where, what, arguments, decision, outcome and approver.

Work (queue trigger): run the command through ``commands.run``, audit the outcome, and post the answer to
Slack's ``response_url`` or the Teams incoming webhook. Claimed by request id, so a redelivered message
does not run twice.

Decisions (``authorize``) are pure: a ``Decision`` with a reason code and a message the user sees.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from shared.errors import BadInputError, ConflictError
from shared.services.chatops import access, approvals, grammar, verify
from shared.services.chatops.grammar import Command, CommandError

log = logging.getLogger("platform_core.chatops")

QUEUE = "chatops-commands"
#: Largest chat request we read. Slack's slash-command and interaction payloads are a few KiB.
MAX_BODY_BYTES = 64 * 1024
DEDUP_SOURCE = "chatops"
#: How long a request id is remembered against retries (Slack retries within minutes).
DEDUP_TTL = dt.timedelta(hours=1)
APPROVE_ACTION = "chatops_approve"
UNKNOWN_USER = ("Sorry, you don't have access to the platform commands yet. Ask the platform team to add you "
                "if you need it.")


@dataclass(frozen=True)
class Answer:
    """What the HTTP function returns: a status and a JSON body (the chat's own reply format)."""

    status: int
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Request:
    """One chat command, whichever chat it came from."""

    chat: str  # slack | teams
    principal: str  # slack:<team>/<user> | teams:<aad object id>
    user_name: str
    channel: str
    text: str
    request_id: str
    reply: dict[str, Any] = field(default_factory=dict)  # slack: response_url; teams: nothing


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # Allowed | Help | UnknownUser | Forbidden | OtherEnvironment | NeedsApproval | BadCommand
    message: str
    role: str | None = None


# -- pure decisions -----------------------------------------------------------------------------------

def authorize(policy: access.AccessPolicy, principal: str, command: Command, *, app_env: str,
              approved: bool = False) -> Decision:
    """May ``principal`` run ``command`` here, now? Deny by default."""
    if not policy.known(principal):
        return Decision(False, "UnknownUser", UNKNOWN_USER)
    if command.verb == "help":
        return Decision(True, "Help", grammar.help_text(app_env))
    if command.env != app_env:
        return Decision(False, "OtherEnvironment", f"This bot manages {app_env}. Send commands for {command.env} "
                        f"to the {command.env} bot (its own slash command or Teams webhook).")
    role = policy.role_of(principal, command.env)
    needed = command.spec.role
    if not access.allows(role, needed):
        return Decision(False, "Forbidden", f"`{command.verb}` needs the {needed} role in {command.env}; "
                        f"yours is {role or 'none'} there. Ask the platform team if you need it.", role)
    if command.spec.mutating and policy.needs_approval(command.env) and not approved:
        return Decision(False, "NeedsApproval", f"Changes in {command.env} need a second operator's approval.", role)
    return Decision(True, "Allowed", "", role)


# -- parsing what the chats send ----------------------------------------------------------------------

def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise BadInputError("the body is not form-encoded", code="MalformedRequest") from None
    return {k: v[-1] for k, v in fields.items()}


def slack_command_request(body: bytes) -> Request:
    """A slash command's form fields (api.slack.com/interactivity/slash-commands)."""
    form = _form(body)
    missing = [k for k in ("team_id", "user_id", "command", "response_url") if not form.get(k)]
    if missing or "text" not in form:
        raise BadInputError(f"not a Slack slash command: missing {', '.join(missing or ['text'])}",
                            code="MalformedRequest")
    # trigger_id is unique per invocation and the same in Slack's retries of it.
    request_id = form.get("trigger_id") or hashlib.sha256(body).hexdigest()
    return Request("slack", f"slack:{form['team_id']}/{form['user_id']}", form.get("user_name", form["user_id"]),
                   form.get("channel_id", ""), form["text"], f"slack-{request_id}",
                   {"response_url": form["response_url"]})


def slack_interaction(body: bytes) -> dict[str, Any]:
    """An interaction (button) payload: ``payload=<JSON>`` form-encoded (api.slack.com/interactivity/handling)."""
    form = _form(body)
    try:
        payload = json.loads(form.get("payload") or "")
    except ValueError:
        raise BadInputError("not a Slack interaction: no JSON payload", code="MalformedRequest") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), dict):
        raise BadInputError("not a Slack interaction: no user", code="MalformedRequest")
    return payload


_MENTION = re.compile(r"<at>.*?</at>", re.S)
_TAG = re.compile(r"<[^>]+>")


def teams_request(body: bytes) -> Request:
    """A Teams outgoing-webhook activity: the text mentions the webhook (``<at>Name</at>``) and may carry HTML."""
    try:
        activity = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadInputError("the body is not JSON", code="MalformedRequest") from None
    if not isinstance(activity, dict) or not isinstance(activity.get("from"), dict):
        raise BadInputError("not a Teams activity: no from", code="MalformedRequest")
    sender = activity["from"]
    aad = str(sender.get("aadObjectId") or "").lower()
    if not aad:
        raise BadInputError("not a Teams activity: no from.aadObjectId", code="MalformedRequest")
    raw = str(activity.get("text") or "")
    text = _TAG.sub(" ", _MENTION.sub(" ", raw)).replace("&nbsp;", " ")
    request_id = str(activity.get("id") or hashlib.sha256(body).hexdigest())
    conversation = activity.get("conversation") if isinstance(activity.get("conversation"), dict) else {}
    return Request("teams", f"teams:{aad}", str(sender.get("name") or aad), str(conversation.get("id") or ""),
                   " ".join(text.split()), f"teams-{request_id}")


# -- accept -------------------------------------------------------------------------------------------

def accept_slack_command(ctx: Any, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> Answer:
    verify.verify_slack(headers, body, ctx.settings.slack_signing_secret, now=now.timestamp())
    request = slack_command_request(body)
    if not _first_delivery(ctx, request.request_id, now):
        return Answer(200, None)  # a retry of a request already in hand: Slack needs only the 200
    return _dispatch(ctx, request, now=now)


def accept_teams(ctx: Any, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> Answer:
    verify.verify_teams(headers, body, ctx.settings.teams_webhook_secret)
    request = teams_request(body)
    if not _first_delivery(ctx, request.request_id, now):
        return Answer(200, teams_reply("Already working on that."))
    return _dispatch(ctx, request, now=now)


def accept_slack_interaction(ctx: Any, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> Answer:
    verify.verify_slack(headers, body, ctx.settings.slack_signing_secret, now=now.timestamp())
    payload = slack_interaction(body)
    actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
    action = next((a for a in actions if isinstance(a, dict) and a.get("action_id") == APPROVE_ACTION), None)
    if payload.get("type") != "block_actions" or action is None:
        return Answer(200, None)  # not ours (another button, a shortcut): acknowledge and ignore
    user = payload["user"]
    team = str(user.get("team_id") or (payload.get("team") or {}).get("id") or "")
    request = Request("slack", f"slack:{team}/{user.get('id', '')}", str(user.get("username") or user.get("id")),
                      str((payload.get("channel") or {}).get("id") or ""), f"approve {action.get('value', '')}",
                      f"slack-{payload.get('trigger_id') or hashlib.sha256(body).hexdigest()}",
                      {"response_url": str(payload.get("response_url") or "")})
    if not _first_delivery(ctx, request.request_id, now):
        return Answer(200, None)
    _dispatch(ctx, request, now=now, via_button=True)
    return Answer(200, None)


def _dispatch(ctx: Any, request: Request, *, now: dt.datetime, via_button: bool = False) -> Answer:
    env = ctx.platform.name
    policy = access.load(ctx.settings.chatops_access_file)
    try:
        command = grammar.parse(request.text, default_env=env)
    except CommandError as error:
        _audit(ctx, request, None, "BadCommand", "refused", message=error.message)
        return _reply(ctx, request, error.message, via_button=via_button)
    if command.verb == "approve":
        return _approve(ctx, request, command, policy, now=now, via_button=via_button)
    decision = authorize(policy, request.principal, command, app_env=env)
    if decision.reason == "Help":
        return _reply(ctx, request, decision.message, via_button=via_button)
    if decision.reason == "NeedsApproval":
        pending = approvals.create(ctx.storage, env=env, requester=request.principal, requester_name=request.user_name,
                                   command=command.text, chat=request.chat, now=now,
                                   minutes=ctx.settings.chatops_approval_minutes,
                                   reply={**request.reply, "channel": request.channel})
        _audit(ctx, request, command, "NeedsApproval", "pending", approval=pending.id)
        return Answer(200, approval_message(request, pending))
    if not decision.allowed:
        _audit(ctx, request, command, decision.reason, "refused", message=decision.message)
        return _reply(ctx, request, decision.message, via_button=via_button)
    return _enqueue(ctx, request, command, approver="", via_button=via_button)


def _approve(ctx: Any, request: Request, command: Command, policy: access.AccessPolicy, *, now: dt.datetime,
             via_button: bool) -> Answer:
    env = ctx.platform.name
    decision = authorize(policy, request.principal, command, app_env=env)
    if not decision.allowed:
        _audit(ctx, request, command, decision.reason, "refused", message=decision.message)
        return _reply(ctx, request, decision.message, via_button=via_button)
    verdict, pending = approvals.approve(ctx.storage, env, command.args["id"], approver=request.principal, now=now)
    if not verdict.ok or pending is None:
        _audit(ctx, request, command, verdict.reason, "refused", message=verdict.message)
        return _reply(ctx, request, verdict.message, via_button=via_button)
    original = grammar.parse(pending.command, default_env=env)
    # The requester's role is checked again: access may have been withdrawn while the request waited.
    requester_ok = authorize(policy, pending.requester, original, app_env=env, approved=True)
    if not requester_ok.allowed:
        _audit(ctx, request, original, requester_ok.reason, "refused", message=requester_ok.message)
        return _reply(ctx, request, f"The requester may no longer run it: {requester_ok.message}",
                      via_button=via_button)
    _audit(ctx, request, command, "Approved", "succeeded", approval=pending.id,
           message=f"approved `{pending.command}` asked by {pending.requester}")
    stored = pending.reply or {}
    requester = Request(pending.chat, pending.requester, pending.requester_name, stored.get("channel", ""),
                        pending.command, f"approval-{pending.id}",
                        {k: v for k, v in stored.items() if k != "channel"})
    if via_button and request.reply.get("response_url"):
        requester = Request(**{**vars(requester), "reply": request.reply})
    return _enqueue(ctx, requester, original, approver=request.principal, via_button=via_button,
                    ack=f"Approved by {request.user_name}: running `{pending.command}`.")


def _enqueue(ctx: Any, request: Request, command: Command, *, approver: str, via_button: bool,
             ack: str | None = None) -> Answer:
    message = {"chat": request.chat, "principal": request.principal, "user_name": request.user_name,
               "channel": request.channel, "text": command.text, "request_id": request.request_id,
               "reply": request.reply, "approver": approver}
    ctx.storage.send(QUEUE, json.dumps(message))
    text = ack or f"Working on `{command.text}`…"
    if via_button:
        return Answer(200, None)
    if request.chat == "teams":
        return Answer(200, teams_reply(text + " The answer follows in this channel."))
    return Answer(200, {"response_type": "ephemeral", "text": text})


def _reply(ctx: Any, request: Request, text: str, *, via_button: bool) -> Answer:
    if via_button:  # a button's HTTP answer is not shown: say it through the response_url (from the queue)
        url = request.reply.get("response_url")
        if url:
            ctx.storage.send(QUEUE, json.dumps({"kind": "notice", "reply": request.reply, "text": text,
                                                "request_id": f"{request.request_id}-notice"}))
        return Answer(200, None)
    if request.chat == "teams":
        return Answer(200, teams_reply(text))
    return Answer(200, {"response_type": "ephemeral", "text": text})


def teams_reply(text: str) -> dict[str, Any]:
    return {"type": "message", "text": text}


def approval_message(request: Request, pending: approvals.ApprovalRequest) -> dict[str, Any]:
    expires = f"{pending.expires_at:%H:%M}Z"
    text = (f"{request.user_name} asks to run `{pending.command}` in {pending.env}. Another operator must approve "
            f"before {expires} (request {pending.id}).")
    if request.chat == "teams":
        return teams_reply(text + f" Reply `approve {pending.id}` to approve.")
    return {"response_type": "in_channel", "text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":lock: {text}"}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": pending.id,
             "text": {"type": "plain_text", "text": "Approve"}}]},
    ]}


# -- de-duplication and audit -----------------------------------------------------------------------

def _first_delivery(ctx: Any, request_id: str, now: dt.datetime) -> bool:
    """One insert into the de-duplication table: False when this request id was seen before."""
    from shared.state import DEDUP_TABLE, _ts, table_key

    try:
        ctx.storage.insert(DEDUP_TABLE, {"PartitionKey": table_key(DEDUP_SOURCE), "RowKey": table_key(request_id),
                                         "status": "accepted", "claimed_at": _ts(now),
                                         "expires_at": _ts(now + DEDUP_TTL)})
    except ConflictError:
        log.info("chat request %s seen before (a retry): not run again", request_id)
        return False
    return True


def _audit(ctx: Any, request: Request, command: Command | None, reason: str, outcome: str, *,
           message: str = "", approver: str = "", approval: str = "", data: dict[str, Any] | None = None) -> None:
    ctx.state.audit(
        actor=f"{request.principal} ({request.user_name})", action=command.verb if command else "unknown",
        target=f"chatops/{ctx.platform.name}", reason=reason, outcome=outcome, message=message[:2000],
        inputs={"chat": request.chat, "channel": request.channel, "command": request.text[:500],
                "args": command.args if command else {}, "approver": approver, "approval": approval,
                "request_id": request.request_id, **({"result": data} if data else {})})


# -- the queue worker ---------------------------------------------------------------------------------

def handle_message(ctx: Any, message: Mapping[str, Any], *, now: dt.datetime) -> str:
    """Run one queued command (or deliver one notice) and post the answer; returns a one-line outcome."""
    from shared.services.chatops import commands

    reply = message.get("reply") if isinstance(message.get("reply"), dict) else {}
    if message.get("kind") == "notice":
        _post(ctx, str(message.get("chat", "slack")), reply, {"response_type": "ephemeral",
                                                              "text": str(message.get("text", ""))})
        return "notice delivered"
    request = Request(str(message["chat"]), str(message["principal"]), str(message.get("user_name", "")),
                      str(message.get("channel", "")), str(message["text"]), str(message["request_id"]), reply)
    claim = ctx.state.claim("chatops-run", request.request_id)
    if claim is None:
        return f"{request.request_id} already run"
    env = ctx.platform.name
    approver = str(message.get("approver") or "")
    try:
        command = grammar.parse(request.text, default_env=env)
        # Access is decided again at run time: the file may have changed since the request was accepted.
        decision = authorize(access.load(ctx.settings.chatops_access_file), request.principal, command,
                             app_env=env, approved=bool(approver))
        if not decision.allowed:
            result = commands.Result(decision.message, "refused")
        else:
            actor = f"chat:{request.principal}" + (f" approved by {approver}" if approver else "")
            result = commands.run(ctx, command, actor=actor, now=now)
        _audit(ctx, request, command, decision.reason if not decision.allowed else "Ran", result.outcome,
               message=result.text, approver=approver, data=result.data)
    except Exception:
        ctx.state.release(claim)  # the redelivery runs it
        raise
    ctx.state.complete(claim, result.outcome)
    _post(ctx, request.chat, reply, {"response_type": "in_channel" if command.spec.mutating else "ephemeral",
                                     "text": _with_header(request, command, result.text, approver)})
    return f"{command.verb}: {result.outcome}"


def _with_header(request: Request, command: Command, text: str, approver: str) -> str:
    who = request.user_name + (f", approved by {approver}" if approver else "")
    return f"`{command.text}` ({who}):\n{text}"


def _post(ctx: Any, chat: str, reply: Mapping[str, Any], message: dict[str, Any]) -> None:
    if chat == "slack" and reply.get("response_url"):
        ctx.chat.slack(str(reply["response_url"]), message)
        return
    from shared.services import chat_notify

    if not chat_notify.post(ctx, message["text"], chats=(chat,)):
        log.warning("no way to deliver a %s chat answer: configure CHAT_NOTIFY_%s_WEBHOOK_URL", chat, chat.upper())

