"""ChatOps end to end in process: the HTTP functions and the queue worker against Azurite, the sandbox (ARM,
Kubernetes, Key Vault, GitLab emulators) and the chat emulator that receives response_url and webhook posts.
Requests are built and signed as Slack and Teams send them (shared/local/sandbox/chat.py)."""

from __future__ import annotations

import datetime as dt
import json

import azure.functions as func
import pytest

from shared.context import Context, set_context
from shared.credentials import StaticTokenCredential
from shared.local.sandbox import Sandbox
from shared.local.sandbox.chat import slack_click, slack_command, teams_message
from shared.services.chat_notify import card_text
from shared.services.chatops import commands, grammar, service
from shared.services.scaling import tick
from shared.settings import Settings

pytestmark = pytest.mark.integration
ENV = "dev-uaenorth"


class Clock:
    """Real time, plus whatever a test skips ahead (approval expiry)."""

    def __init__(self):
        self.skew = dt.timedelta()

    def __call__(self):
        return dt.datetime.now(dt.UTC) + self.skew


@pytest.fixture(scope="module")
def sandbox(dev_platform, tmp_path_factory):
    with Sandbox(dev_platform, tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="module")
def functions():
    import function_app
    from shared.local.host import app_functions

    return {f.get_function_name(): f.get_user_function() for f in app_functions(function_app.app)}


@pytest.fixture
def ctx(sandbox, azurite, dev_platform):
    environ = {"PLATFORM_ENV": ENV, "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
               "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "5", **sandbox.settings_env()}
    context = Context(settings=Settings.from_env(environ), platform=dev_platform, credential=StaticTokenCredential(),
                      clock=Clock())
    set_context(context)
    drain(context)
    sandbox.chat.messages.clear()
    yield context
    set_context(None)


def drain(ctx) -> list[dict]:
    out = []
    while batch := ctx.storage.receive(service.QUEUE, max_messages=32, visibility_timeout=1):
        for message in batch:
            out.append(json.loads(message.body))
            ctx.storage.delete_message(service.QUEUE, message)
    return out


def work(ctx, functions) -> list[dict]:
    """Run the queue function on every queued message, as the host would."""
    messages = drain(ctx)
    for m in messages:
        functions["chatops_commands"](func.QueueMessage(id="m", body=json.dumps(m).encode()))
    return messages


def slack(functions, sandbox, text, *, user="alice", route="chatops_slack_commands", headers=None, body=None,
          response_url=None):
    response_url = response_url or sandbox.chat.new_response_url()
    signed_headers, signed_body = slack_command(text, user=user, secret=sandbox.chat.slack_signing_secret,
                                                response_url=response_url)
    request = func.HttpRequest("POST", "http://localhost/api/chatops/slack/commands",
                               headers={**signed_headers, **(headers or {})},
                               body=signed_body if body is None else body)
    response = functions[route](request)
    return response, response_url


def click(functions, sandbox, approval_id, *, user, response_url):
    headers, body = slack_click(approval_id, user=user, secret=sandbox.chat.slack_signing_secret,
                                response_url=response_url)
    return functions["chatops_slack_interactions"](
        func.HttpRequest("POST", "http://localhost/api/chatops/slack/interactions", headers=headers, body=body))


def teams(functions, sandbox, text, *, user="alice"):
    headers, body = teams_message(text, user=user, secret=sandbox.chat.teams_secret)
    response = functions["chatops_teams"](
        func.HttpRequest("POST", "http://localhost/api/chatops/teams", headers=headers, body=body))
    return response, json.loads(response.get_body() or b"{}")


def answer(response) -> dict:
    return json.loads(response.get_body() or b"{}")


def posted_text(sandbox, url=None) -> str:
    """What the channel shows: Slack's text, Teams' Adaptive Card text (a message the Workflow could not post
    does not count)."""
    return "\n".join(card_text(m["body"]) for m in sandbox.chat.posted(url) if m.get("delivered", True))


def approval_id(reply: dict) -> str:
    if "blocks" in reply:
        return reply["blocks"][1]["elements"][0]["value"]
    return card_text(reply).split("`approve ")[1].split("`")[0]


def approved(ctx, functions, sandbox, text, *, requester="alice", approver="bob"):
    """Ask (Slack), approve with the button, run: the response_url posts."""
    response, url = slack(functions, sandbox, text, user=requester)
    reply = answer(response)
    assert reply["response_type"] == "in_channel" and "Approve" in json.dumps(reply["blocks"])
    work(ctx, functions)
    assert click(functions, sandbox, approval_id(reply), user=approver, response_url=url).status_code == 200
    work(ctx, functions)
    return posted_text(sandbox, url)


# -- the request path ---------------------------------------------------------------------------------

def test_a_command_is_acknowledged_at_once_and_answered_through_the_response_url(ctx, functions, sandbox):
    response, url = slack(functions, sandbox, "status")
    assert response.status_code == 200 and "Working on `status`" in answer(response)["text"]
    assert sandbox.chat.posted(url) == []
    work(ctx, functions)
    text = posted_text(sandbox, url)
    for part in ("*cluster*", "*gpu pools*", "h100", "*certificates*", "*drift*", "*last scan*"):
        assert part in text, text


def test_a_slack_retry_is_recognised_and_not_run_twice(ctx, functions, sandbox):
    url = sandbox.chat.new_response_url()
    headers, body = slack_command("certs", user="alice", secret=sandbox.chat.slack_signing_secret, response_url=url)
    first = functions["chatops_slack_commands"](func.HttpRequest("POST", "http://localhost/x", headers=headers,
                                                                 body=body))
    retry = functions["chatops_slack_commands"](func.HttpRequest(
        "POST", "http://localhost/x", headers={**headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason":
                                               "http_timeout"}, body=body))
    assert (first.status_code, retry.status_code) == (200, 200)
    work(ctx, functions)
    assert len(sandbox.chat.posted(url)) == 1, "the retry ran the command again"
    runs = [r for r in ctx.state.audit_trail(f"chatops/{ENV}", limit=10) if r.inputs.get("request_id", "").endswith(
        body.decode().split("trigger_id=")[1])]
    assert [r.reason for r in runs] == ["Ran"]


def test_a_retried_production_request_opens_one_approval(ctx, functions, sandbox):
    url = sandbox.chat.new_response_url()
    headers, body = slack_command(f"pause autoscaling {ENV}", user="alice", secret=sandbox.chat.slack_signing_secret,
                                  response_url=url)
    replies = [answer(functions["chatops_slack_commands"](func.HttpRequest(
        "POST", "http://localhost/x", headers={**headers, **({"X-Slack-Retry-Num": "1"} if i else {})}, body=body)))
        for i in range(2)]
    assert approval_id(replies[0]) == approval_id(replies[1])
    work(ctx, functions)
    pending = [r for r in ctx.state.audit_trail(f"chatops/{ENV}", limit=10) if r.reason == "NeedsApproval"
               and r.inputs["approval"] == approval_id(replies[0])]
    assert len(pending) == 1


@pytest.mark.parametrize("case, change, status", [
    ("tampered body", {"body": b"team_id=TSANDBOX&user_id=UALICE&command=%2Fp&text=scale&response_url=x"}, 401),
    ("wrong signature", {"headers": {"X-Slack-Signature": "v0=" + "0" * 64}}, 401),
    ("stale timestamp", {"headers": {"X-Slack-Request-Timestamp": "1531420618"}}, 401),
    ("oversized (by Content-Length, before reading)", {"headers": {"Content-Length": str(10 * 1024 * 1024)}}, 413),
    ("oversized body", {"body": b"x" * (service.MAX_BODY_BYTES + 1)}, 413),
])
def test_requests_that_are_not_from_slack_or_too_big_are_refused_without_details(ctx, functions, sandbox, case,
                                                                                  change, status):
    response, _ = slack(functions, sandbox, "status", **change)
    assert response.status_code == status
    assert b"signature" not in response.get_body().lower() and b"secret" not in response.get_body().lower()
    assert drain(ctx) == []


def test_a_signed_body_that_is_not_a_slash_command_is_a_400(ctx, functions, sandbox):
    from shared.local.sandbox.chat import _slack_headers

    for body in (b"\xff\xfe", b"text=status", b"a=1&&&=="):
        response = functions["chatops_slack_commands"](func.HttpRequest(
            "POST", "http://localhost/x", headers=_slack_headers(body, sandbox.chat.slack_signing_secret, None),
            body=body))
        assert response.status_code == 400, body


def test_unknown_users_get_a_polite_refusal_and_viewers_cannot_change_anything(ctx, functions, sandbox):
    refusal = answer(slack(functions, sandbox, "status", user="mallory")[0])["text"]
    assert refusal.startswith("Sorry") and "yaml" not in refusal and "role" not in refusal
    forbidden = answer(slack(functions, sandbox, "scale dev-uaenorth h100 2", user="victor")[0])["text"]
    assert "needs the operator role" in forbidden
    assert {m["kind"] for m in work(ctx, functions)} == {"audit"}  # refusals are only audited
    trail = ctx.state.audit_trail(f"chatops/{ENV}", limit=5)
    assert [r.reason for r in trail[-2:]] == ["UnknownUser", "Forbidden"]
    assert trail[-1].inputs["command"] == "scale dev-uaenorth h100 2" and "UVICTOR" in trail[-1].actor


def test_unknown_and_malformed_commands_are_answered_with_help(ctx, functions, sandbox):
    assert "unknown command 'deploy'" in answer(slack(functions, sandbox, "deploy all")[0])["text"]
    assert "not a node count" in answer(slack(functions, sandbox, "scale dev-uaenorth h100 lots")[0])["text"]
    assert "scale <env> <pool>" in answer(slack(functions, sandbox, "help")[0])["text"]


def test_another_environments_command_is_refused_here(ctx, functions, sandbox):
    text = answer(slack(functions, sandbox, "status prd-uaenorth")[0])["text"]
    assert "This bot manages dev-uaenorth" in text


# -- approvals ----------------------------------------------------------------------------------------

def test_a_change_waits_for_a_second_operator_and_then_runs(ctx, functions, sandbox, dev_platform):
    pool = dev_platform.gpu_pools[0]
    response, url = slack(functions, sandbox, f"scale {ENV} {pool.name} {pool.min_count + 1} for 30m")
    reply = answer(response)
    assert reply["response_type"] == "in_channel"
    work(ctx, functions)
    ident = approval_id(reply)
    click(functions, sandbox, ident, user="alice", response_url=url)  # the requester presses it: refused
    work(ctx, functions)
    assert "another operator must approve" in posted_text(sandbox, url)
    assert tick.load_carried(ctx.storage, ENV, pool.name).policy.override is None or \
        not tick.load_carried(ctx.storage, ENV, pool.name).policy.override.active(ctx.clock().timestamp())
    click(functions, sandbox, ident, user="bob", response_url=url)
    work(ctx, functions)
    assert f"pinned at {pool.min_count + 1} node(s)" in posted_text(sandbox, url)
    override = tick.load_carried(ctx.storage, ENV, pool.name).policy.override
    assert override.count == pool.min_count + 1 and "approved by slack:TSANDBOX/UBOB" in override.by
    click(functions, sandbox, ident, user="bob", response_url=url)  # twice: already approved, not run again
    work(ctx, functions)
    assert "already approved" in posted_text(sandbox, url)
    ran = [r for r in ctx.state.audit_trail(f"chatops/{ENV}", limit=20) if r.reason == "Ran"]
    assert ran[-1].inputs["approver"] == "slack:TSANDBOX/UBOB" and ran[-1].outcome == "succeeded"
    assert "alice" in ran[-1].actor and ctx.state.verify_audit(f"chatops/{ENV}").ok
    assert "back under the autoscaling policy" in approved(ctx, functions, sandbox, f"scale {ENV} {pool.name} auto")


def test_an_approval_expires(ctx, functions, sandbox):
    response, url = slack(functions, sandbox, f"pause autoscaling {ENV}")
    work(ctx, functions)
    ctx.clock.skew = dt.timedelta(minutes=16)
    # Slack signs with its own clock: the click is signed "now" as seen by the app.
    headers, body = slack_click(approval_id(answer(response)), user="bob", secret=sandbox.chat.slack_signing_secret,
                                response_url=url, now=ctx.clock().timestamp())
    functions["chatops_slack_interactions"](func.HttpRequest("POST", "http://localhost/x", headers=headers, body=body))
    work(ctx, functions)
    assert "expired" in posted_text(sandbox, url)
    assert tick.autoscaling_pause(ctx.storage, ENV) is None


def test_housekeeping_deletes_approvals_expired_for_a_day_and_keeps_the_rest(ctx, functions):
    from shared.services.chatops import approvals

    now = ctx.clock()
    for request_id, minutes_ago in (("old-one", 2 * 24 * 60), ("fresh-one", 60)):
        approvals.create(ctx.storage, request_id=request_id, env=ENV, requester="slack:T/UALICE",
                         requester_name="alice", command=f"pause autoscaling {ENV}", chat="slack",
                         now=now - dt.timedelta(minutes=minutes_ago), minutes=15, reply=None)
    functions["state_housekeeping"](None)
    # expired two days ago: gone; expired 45 minutes ago: still there to answer a late click with "expired"
    assert approvals.get(ctx.storage, ENV, "old-one") is None
    assert approvals.get(ctx.storage, ENV, "fresh-one") is not None
    ctx.storage.delete(approvals.APPROVALS_TABLE, ENV, "fresh-one")


def test_teams_commands_reply_in_the_channel_and_approve_by_command(ctx, functions, sandbox, dev_platform):
    response, reply = teams(functions, sandbox, "help")
    assert response.status_code == 200 and reply["type"] == "message" and "pause autoscaling" in card_text(reply)
    assert reply["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    _, reply = teams(functions, sandbox, f"pause autoscaling {ENV}")
    ident = approval_id(reply)
    work(ctx, functions)
    teams(functions, sandbox, f"approve {ident}", user="alice")
    work(ctx, functions)
    assert "another operator must approve" in posted_text(sandbox)
    _, ok = teams(functions, sandbox, f"approve {ident}", user="bob")
    assert "Checking approval" in card_text(ok)
    work(ctx, functions)
    assert "is paused" in posted_text(sandbox) and "(alice, approved by bob)" in posted_text(sandbox)
    assert sandbox.chat.posted()[-1]["kind"] == "teams" and sandbox.chat.posted()[-1]["delivered"]
    # The GPU tick honours the runtime kill switch: it decides and audits, and changes nothing.
    results = tick.tick(ctx, now=ctx.clock(), switches=tick.Switches())
    assert {r.action for r in results} == {"skipped"} and "paused by chat:" in results[0].message
    # resume, by the command itself (its approval goes as pause's did)
    resumed = commands.run(ctx, grammar.parse(f"resume autoscaling {ENV}", default_env=ENV), actor="t", now=ctx.clock())
    assert "running again" in resumed.text and tick.autoscaling_pause(ctx.storage, ENV) is None


def test_teams_requests_with_a_bad_hmac_get_401(ctx, functions, sandbox):
    headers, body = teams_message("status", user="alice", secret=sandbox.chat.teams_secret)
    response = functions["chatops_teams"](func.HttpRequest("POST", "http://localhost/x", headers=headers,
                                                           body=body.replace(b"status", b"scale ")))
    assert response.status_code == 401 and b"HMAC" not in response.get_body()


# -- each command against the sandbox ----------------------------------------------------------------

@pytest.mark.parametrize("text, says", [
    ("certs", "days left"),
    ("drift", "drift in dev-uaenorth"),
    ("audit chatops/dev-uaenorth", "audit chain of chatops/dev-uaenorth"),
])
def test_read_commands_answer_from_the_sandbox(ctx, functions, sandbox, text, says):
    _, url = slack(functions, sandbox, text, user="victor")
    work(ctx, functions)
    assert says in posted_text(sandbox, url)


def test_scan_says_scans_are_not_installed_when_the_compliance_service_is_absent(ctx, functions, sandbox,
                                                                                  monkeypatch):
    monkeypatch.setattr(commands, "COMPLIANCE_MODULE", "shared.services.no_such_compliance")
    _, url = slack(functions, sandbox, "scan")
    work(ctx, functions)
    assert "not installed" in posted_text(sandbox, url)


def test_scan_and_status_use_the_compliance_service_through_its_contract(ctx, functions, sandbox, monkeypatch):
    import sys
    import types

    class Report:
        def as_dict(self):
            return {"env": ENV, "summary": {"critical": 0, "high": 1, "medium": 0, "low": 0, "info": 0, "new": 1,
                                            "fixed": 0}, "findings": []}

        def chat_summary(self):
            return "1 high finding (new): kyverno require-run-as-non-root"

    fake = types.ModuleType("tests_fake_compliance")
    fake.run_scan = lambda ctx, *, env, now: Report()
    fake.last_scan = lambda ctx, *, env: Report()
    monkeypatch.setitem(sys.modules, "tests_fake_compliance", fake)
    monkeypatch.setattr(commands, "COMPLIANCE_MODULE", "tests_fake_compliance")
    _, scan_url = slack(functions, sandbox, "scan")
    _, status_url = slack(functions, sandbox, "status")
    work(ctx, functions)
    assert "1 high finding" in posted_text(sandbox, scan_url)
    assert "*last scan*: 1 high finding" in posted_text(sandbox, status_url)


@pytest.mark.parametrize("text, says", [
    (f"drift mr {ENV}", "nothing to adopt in git"),
    (f"rotate {ENV} CERT", "CERT:"),
    (f"scale {ENV} h100 999", "outside them"),
])
def test_mutating_commands_run_once_approved(ctx, functions, sandbox, dev_platform, text, says):
    cert = dev_platform.certificates[0].name
    assert says.replace("CERT", cert) in approved(ctx, functions, sandbox, text.replace("CERT", cert))


def test_the_chat_adapter_maps_a_spent_response_url_to_a_permanent_error_and_a_5xx_to_a_temporary_one(ctx, sandbox):
    from shared.errors import PermanentError, TemporaryError

    url = sandbox.chat.new_response_url()
    for i in range(5):
        ctx.chat.slack(url, {"text": f"answer {i}"})
    with pytest.raises(PermanentError) as spent:
        ctx.chat.slack(url, {"text": "a sixth"})
    assert spent.value.code == "ChatRefused" and url not in str(spent.value)
    sandbox.chat.inject(status=503, path="/powerautomate")
    with pytest.raises(TemporaryError):
        ctx.chat.teams(ctx.settings.chat_notify_teams_webhook_url, {"type": "message", "text": "x"})


def test_the_teams_workflows_webhook_takes_adaptive_cards_only_like_the_service(sandbox):
    import urllib.request
    from urllib.error import HTTPError

    from shared.services.chat_notify import teams_card

    context = __import__("ssl").create_default_context(cafile=str(sandbox.ca.ca_path))
    url = sandbox.chat.workflow_url("card-check")

    def post(target: str, message: dict) -> int:
        request = urllib.request.Request(target, data=json.dumps(message).encode(), method="POST",  # noqa: S310
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=context) as response:  # noqa: S310 - the emulator
            return response.status

    for target, code in ((url.split("&sig=")[0], "AuthorizationFailed"),
                         (url.split("&sig=")[0] + "&sig=forged", "DirectApiInvalidAuthorizationSignature")):
        with pytest.raises(HTTPError) as refused:
            post(target, teams_card("x"))
        assert refused.value.code == 401 and json.loads(refused.value.read())["error"]["code"] == code
    # The trigger answers 202 either way; the flow then posts only a message with an Adaptive Card.
    assert post(url, {"type": "message", "text": "plain text, as the retired connectors took"}) == 202
    assert post(url, teams_card("a card")) == 202
    plain, card = sandbox.chat.posted(url)[-2:]
    assert (plain["delivered"], card["delivered"]) == (False, True) and "Adaptive Cards only" in plain["flow_error"]


def test_the_response_url_refuses_a_sixth_use_like_slack(sandbox):
    import urllib.request
    from urllib.error import HTTPError

    url = sandbox.chat.new_response_url()
    context = __import__("ssl").create_default_context(cafile=str(sandbox.ca.ca_path))
    for _ in range(5):
        urllib.request.urlopen(urllib.request.Request(url, data=b'{"text":"x"}', method="POST"),  # noqa: S310
                               context=context)
    with pytest.raises(HTTPError) as caught:
        urllib.request.urlopen(urllib.request.Request(url, data=b'{"text":"x"}', method="POST"),  # noqa: S310
                               context=context)
    assert caught.value.code == 404 and caught.value.read() == b"used_url"


# -- notifications (the contract other capabilities call) ---------------------------------------------

def test_chat_notify_posts_to_every_configured_channel_and_never_raises(ctx, sandbox):
    import dataclasses

    from shared.services import chat_notify

    assert chat_notify.post(ctx, "scan finished: 0 open findings") is True
    assert [(m["kind"], card_text(m["body"]), m.get("delivered", True)) for m in sandbox.chat.posted()] == [
        ("slack", "[dev-uaenorth] scan finished: 0 open findings", True),
        ("teams", "[dev-uaenorth] scan finished: 0 open findings", True)]
    sandbox.chat.inject(status=500, path="/slack/services", times=None)
    sandbox.chat.inject(status=400, path="/powerautomate", times=None)
    try:
        assert chat_notify.post(ctx, "again", env="prd-uaenorth") is False
    finally:
        sandbox.chat.clear_faults()
    ctx.settings = dataclasses.replace(ctx.settings, chat_notify_slack_webhook_url=None,
                                       chat_notify_teams_webhook_url=None)
    assert chat_notify.post(ctx, "nobody listens") is False


def test_a_broken_access_file_denies_everything_and_names_nothing(ctx, functions, sandbox, tmp_path, caplog):
    import dataclasses

    broken = tmp_path / "access.yaml"
    broken.write_text("version: 1\ngrants: [{who: alice, role: root, environments: [moon]}]\n")
    ctx.settings = dataclasses.replace(ctx.settings, chatops_access_file=broken)
    text = answer(slack(functions, sandbox, "status")[0])["text"]
    assert text.startswith("The platform commands are unavailable") and "access" not in text
    assert drain(ctx) == [] and "root" in caplog.text
