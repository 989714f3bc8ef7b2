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

from shared.errors import BadInputError, ConfigError, ConflictError
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
UNAVAILABLE = "The platform commands are unavailable right now; the platform team has been alerted."
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
#
# One Storage round trip per acknowledgement (a queue message), so the answer stays far inside Slack's 3 s:
# work, approvals and the audit records of refusals are written by the worker. A Slack retry (same
# trigger_id) is queued again and recognised there by its claim; an approval request's id is derived from
# the request id, so a retry finds the same request instead of opening a second one.

def _verified(check: Any, *args: Any, **kwargs: Any) -> None:
    """Run a signature check; the reason of a refusal goes to our log, never to the caller."""
    try:
        check(*args, **kwargs)
    except verify.Unauthorized as refused:
        log.warning("chat request refused: %s", refused.why, extra={"error_code": "Unauthorized"})
        raise


def accept_slack_command(ctx: Any, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> Answer:
    _verified(verify.verify_slack, headers, body, ctx.settings.slack_signing_secret, now=now.timestamp())
    if _form(body).get("ssl_check") == "1":  # Slack checking our certificate: it only wants the 200
        return Answer(200, None)
    request = slack_command_request(body)
    retry = verify.header(headers, "X-Slack-Retry-Num")
    if retry:
        log.info("Slack retry %s of %s", retry[:3], request.request_id)
    return _dispatch(ctx, request, now=now)


def accept_teams(ctx: Any, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> Answer:
    _verified(verify.verify_teams, headers, body, ctx.settings.teams_webhook_secret)
    return _dispatch(ctx, teams_request(body), now=now)


def accept_slack_interaction(ctx: Any, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> Answer:
    _verified(verify.verify_slack, headers, body, ctx.settings.slack_signing_secret, now=now.timestamp())
    payload = slack_interaction(body)
    actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
    action = next((a for a in actions if isinstance(a, dict) and a.get("action_id") == APPROVE_ACTION), None)
    if payload.get("type") != "block_actions" or action is None:
        return Answer(200, None)  # not ours (another button, a shortcut): acknowledge and ignore
    user = payload["user"]
    team_of = payload.get("team") if isinstance(payload.get("team"), dict) else {}
    channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
    team = str(user.get("team_id") or team_of.get("id") or "")
    request = Request("slack", f"slack:{team}/{user.get('id', '')}", str(user.get("username") or user.get("id")),
                      str(channel.get("id") or ""), f"approve {action.get('value', '')}",
                      f"slack-{payload.get('trigger_id') or hashlib.sha256(body).hexdigest()}",
                      {"response_url": str(payload.get("response_url") or "")})
    _dispatch(ctx, request, now=now, via_button=True)
    return Answer(200, None)  # a button's HTTP answer is not shown: the worker answers on the response_url


def _dispatch(ctx: Any, request: Request, *, now: dt.datetime, via_button: bool = False) -> Answer:
    env = ctx.platform.name
    try:
        policy = access.load(ctx.settings.chatops_access_file)
    except ConfigError as error:  # a broken access file denies everything; its problems go to our log only
        log.error("the chat access file is invalid: %s", "; ".join(error.problems), extra={"error_code": error.code})
        return _reply(request, UNAVAILABLE)
    try:
        command = grammar.parse(request.text, default_env=env)
    except CommandError as error:
        return _refuse(ctx, request, None, "BadCommand", error.message, via_button=via_button)
    decision = authorize(policy, request.principal, command, app_env=env)
    if decision.reason == "Help":
        _send(ctx, "audit", request, command.text, reason="Help", outcome="succeeded")
        return _reply(request, decision.message)
    if not decision.allowed and decision.reason != "NeedsApproval":
        return _refuse(ctx, request, command, decision.reason, decision.message, via_button=via_button)
    if decision.reason == "NeedsApproval":
        approval = approvals.id_for(request.request_id)
        _send(ctx, "request-approval", request, command.text, approval=approval,
              minutes=ctx.settings.chatops_approval_minutes)
        return Answer(200, approval_message(request, command, env, approval,
                                            now + dt.timedelta(minutes=ctx.settings.chatops_approval_minutes)))
    _send(ctx, "run", request, command.text)
    # Teams outgoing webhooks answer only within their own 5 s: later answers need the channel's incoming webhook.
    follows = request.chat != "teams" or bool(ctx.settings.chat_notify_teams_webhook_url)
    if command.verb == "approve":
        return _reply(request, f"Checking approval {command.args['id']}…", follows=follows)
    return _reply(request, f"Working on `{command.text}`…", follows=follows)


def _refuse(ctx: Any, request: Request, command: Command | None, reason: str, message: str, *,
            via_button: bool) -> Answer:
    # A button's HTTP answer is not shown: the refusal then goes to the response_url, from the queue.
    _send(ctx, "audit", request, command.text if command else request.text, reason=reason, outcome="refused",
          message=message, reply_text=message if via_button else "")
    return _reply(request, message)


def _send(ctx: Any, kind: str, request: Request, text: str, **extra: Any) -> None:
    ctx.storage.send(QUEUE, json.dumps({"kind": kind, "chat": request.chat, "principal": request.principal,
                                        "user_name": request.user_name, "channel": request.channel, "text": text,
                                        "request_id": request.request_id, "reply": request.reply, **extra}))


def _reply(request: Request, text: str, *, follows: bool = False) -> Answer:
    if request.chat == "teams":
        return Answer(200, teams_reply(text + (" The answer follows in this channel." if follows else
                                               " (No incoming webhook is configured for answers: see `audit "
                                               "chatops/<env>` for the outcome.)")))
    return Answer(200, {"response_type": "ephemeral", "text": text})


def teams_reply(text: str) -> dict[str, Any]:
    """A Teams outgoing webhook's answer: a message activity with one Adaptive Card (``chat_notify.teams_card``);
    outgoing webhooks render cards, with no actions but ``Action.OpenUrl`` (so approval is ``approve <id>``)."""
    from shared.services.chat_notify import teams_card

    return teams_card(text)


def approval_message(request: Request, command: Command, env: str, approval: str,
                     expires: dt.datetime) -> dict[str, Any]:
    text = (f"{request.user_name} asks to run `{command.text}` in {env}. Another operator must approve "
            f"before {expires:%H:%M}Z (request {approval}).")
    if request.chat == "teams":
        return teams_reply(text + f" Reply `approve {approval}` to approve.")
    return {"response_type": "in_channel", "text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":lock: {text}"}},
        {"type": "actions", "block_id": "approval", "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": approval,
             "text": {"type": "plain_text", "text": "Approve"}}]},
    ]}


def _audit(ctx: Any, request: Request, verb: str, reason: str, outcome: str, *, args: dict[str, Any] | None = None,
           message: str = "", approver: str = "", approval: str = "", data: dict[str, Any] | None = None) -> None:
    ctx.state.audit(
        actor=f"{request.principal} ({request.user_name})", action=verb, target=f"chatops/{ctx.platform.name}",
        reason=reason, outcome=outcome, message=message[:2000],
        inputs={"chat": request.chat, "channel": request.channel, "command": request.text[:500],
                "args": args or {}, "approver": approver, "approval": approval,
                "request_id": request.request_id, **({"result": data} if data else {})})


# -- the queue worker ---------------------------------------------------------------------------------

def handle_message(ctx: Any, message: Mapping[str, Any], *, now: dt.datetime) -> str:
    """One queued item: ``run`` a command, ``request-approval``, or write the ``audit`` record of an answer
    given at once. Returns a one-line outcome. Runs and approval requests are claimed by request id: a
    redelivered message or a Slack retry does not run twice."""
    kind = str(message.get("kind") or "run")
    reply = message.get("reply") if isinstance(message.get("reply"), dict) else {}
    try:
        request = Request(str(message["chat"]), str(message["principal"]), str(message.get("user_name", "")),
                          str(message.get("channel", "")), str(message["text"]), str(message["request_id"]), reply)
    except KeyError as missing:  # not written by accept_*: redelivering it cannot help
        raise BadInputError(f"chat queue message without {missing}", code="MalformedEvent") from None
    verb = _verb(request.text, ctx.platform.name)
    if kind == "audit":
        _audit(ctx, request, verb, str(message.get("reason", "")), str(message.get("outcome", "")),
               message=str(message.get("message", "")))
        if message.get("reply_text"):
            _post(ctx, request, str(message["reply_text"]), public=False)
        return f"audited {verb}"
    claim = ctx.state.claim("chatops", f"{kind}:{request.request_id}")
    if claim is None:
        return f"{request.request_id} seen before (a retry or a redelivery): not run again"
    try:
        if kind == "request-approval":
            outcome = _request_approval(ctx, request, message, now)
        else:
            outcome = _run(ctx, request, now)
    except Exception:
        ctx.state.release(claim)  # the redelivery runs it
        raise
    ctx.state.complete(claim)
    return outcome


def _request_approval(ctx: Any, request: Request, message: Mapping[str, Any], now: dt.datetime) -> str:
    command = grammar.parse(request.text, default_env=ctx.platform.name)
    try:
        pending = approvals.create(ctx.storage, request_id=str(message["approval"]), env=ctx.platform.name,
                                   requester=request.principal, requester_name=request.user_name,
                                   command=command.text, chat=request.chat, now=now,
                                   minutes=float(message.get("minutes") or 15), reply=request.reply)
    except ConflictError:
        return f"approval {message['approval']} exists already"
    _audit(ctx, request, command.verb, "NeedsApproval", "pending", args=command.args, approval=pending.id,
           message=f"waits for a second operator until {pending.expires_at:%H:%M}Z")
    return f"approval {pending.id} requested"


def _run(ctx: Any, request: Request, now: dt.datetime) -> str:
    from shared.services.chatops import commands

    env = ctx.platform.name
    policy = access.load(ctx.settings.chatops_access_file)
    command = grammar.parse(request.text, default_env=env)
    approver, approval, approver_name = "", "", ""
    if command.verb == "approve":
        decision = authorize(policy, request.principal, command, app_env=env)
        if not decision.allowed:
            return _answer(ctx, request, command, decision.reason, commands.Result(decision.message, "refused"))
        verdict, pending = approvals.approve(ctx.storage, env, command.args["id"], approver=request.principal, now=now)
        if not verdict.ok or pending is None:
            return _answer(ctx, request, command, verdict.reason, commands.Result(verdict.message, "refused"))
        _audit(ctx, request, "approve", "Approved", "succeeded", args=command.args, approval=pending.id,
               message=f"approved `{pending.command}` asked by {pending.requester}")
        approver, approval, approver_name = request.principal, pending.id, request.user_name
        # From here on it is the requester's command; the answer goes where the approval was given.
        request = Request(pending.chat, pending.requester, pending.requester_name, request.channel, pending.command,
                          request.request_id, request.reply if request.reply else (pending.reply or {}))
        command = grammar.parse(pending.command, default_env=env)
    # Access is decided again at run time: the file may have changed since the request was accepted.
    decision = authorize(policy, request.principal, command, app_env=env, approved=bool(approver))
    if not decision.allowed:
        return _answer(ctx, request, command, decision.reason, commands.Result(decision.message, "refused"),
                       approver=approver, approval=approval)
    actor = f"chat:{request.principal}" + (f" approved by {approver}" if approver else "")
    result = commands.run(ctx, command, actor=actor, now=now)
    return _answer(ctx, request, command, "Ran", result, approver=approver, approval=approval,
                   approver_name=approver_name)


def _answer(ctx: Any, request: Request, command: Command, reason: str, result: Any, *, approver: str = "",
            approval: str = "", approver_name: str = "") -> str:
    _audit(ctx, request, command.verb, reason, result.outcome, args=command.args, message=result.text,
           approver=approver, approval=approval, data=result.data)
    who = request.user_name + (f", approved by {approver_name or approver}" if approver else "")
    _post(ctx, request, f"`{command.text}` ({who}):\n{result.text}", public=command.spec.mutating)
    return f"{command.verb}: {result.outcome}"


def _verb(text: str, env: str) -> str:
    try:
        return grammar.parse(text, default_env=env).verb
    except CommandError:
        return "unknown"


def _post(ctx: Any, request: Request, text: str, *, public: bool) -> None:
    from shared.errors import PermanentError

    if request.chat == "slack" and request.reply.get("response_url"):
        try:
            ctx.chat.slack(str(request.reply["response_url"]), {
                "response_type": "in_channel" if public else "ephemeral", "text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]})
        except PermanentError as error:  # spent or expired: the audit trail still has the answer
            log.warning("could not answer on the response_url: %s", error.code, extra={"error_code": error.code})
        return
    from shared.services import chat_notify

    if not chat_notify.post(ctx, text, chats=(request.chat,)):
        log.warning("no way to deliver a %s chat answer: configure CHAT_NOTIFY_%s_WEBHOOK_URL", request.chat,
                    request.chat.upper())
