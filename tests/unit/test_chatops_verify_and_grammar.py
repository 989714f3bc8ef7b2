"""ChatOps, pure parts: request signatures (Slack v0, Teams HMAC), the command grammar, the access file,
the authorization and approval rules."""

import base64
import datetime as dt
import hashlib
import hmac

import pytest
import yaml

from shared.errors import ConfigError
from shared.platform import APP_ROOT
from shared.services.chatops import access, approvals, grammar, service, verify

# Slack's published example (api.slack.com/authentication/verifying-requests-from-slack).
SLACK_DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_DOC_TS = "1531420618"
SLACK_DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
    b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
    b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
SLACK_DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
TEAMS_SECRET = base64.b64encode(b"teams-shared-secret-for-tests-32b").decode()


def slack_headers(ts=SLACK_DOC_TS, signature=SLACK_DOC_SIGNATURE):
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def teams_header(body, secret=TEAMS_SECRET):
    # Written from Microsoft's published rule, independently of verify.teams_signature.
    digest = hmac.new(base64.b64decode(secret), body, hashlib.sha256).digest()
    return {"Authorization": "HMAC " + base64.b64encode(digest).decode()}


# -- signatures ---------------------------------------------------------------------------------------

def test_slacks_published_example_verifies():
    verify.verify_slack(slack_headers(), SLACK_DOC_BODY, SLACK_DOC_SECRET, now=int(SLACK_DOC_TS) + 10)
    assert verify.slack_signature(SLACK_DOC_SECRET, SLACK_DOC_TS, SLACK_DOC_BODY) == SLACK_DOC_SIGNATURE


def test_a_request_signed_by_slack_sdk_verifies():
    from slack_sdk.signature import SignatureVerifier

    body = b"team_id=T1&user_id=U1&command=%2Fplatform&text=status&response_url=https%3A%2F%2Fx"
    sig = SignatureVerifier(SLACK_DOC_SECRET).generate_signature(timestamp="1700000000", body=body)
    verify.verify_slack(slack_headers("1700000000", sig), body, SLACK_DOC_SECRET, now=1700000001)


@pytest.mark.parametrize("case, headers, body, secret, now", [
    ("tampered body", slack_headers(), SLACK_DOC_BODY + b"&x=1", SLACK_DOC_SECRET, int(SLACK_DOC_TS)),
    ("stale timestamp", slack_headers(), SLACK_DOC_BODY, SLACK_DOC_SECRET, int(SLACK_DOC_TS) + 301),
    ("timestamp from the future", slack_headers(), SLACK_DOC_BODY, SLACK_DOC_SECRET, int(SLACK_DOC_TS) - 301),
    ("wrong secret", slack_headers(), SLACK_DOC_BODY, "another-secret", int(SLACK_DOC_TS)),
    ("no signature", {"X-Slack-Request-Timestamp": SLACK_DOC_TS}, SLACK_DOC_BODY, SLACK_DOC_SECRET, int(SLACK_DOC_TS)),
    ("malformed timestamp", slack_headers(ts="15314x0618"), SLACK_DOC_BODY, SLACK_DOC_SECRET, int(SLACK_DOC_TS)),
    ("no secret configured", slack_headers(), SLACK_DOC_BODY, None, int(SLACK_DOC_TS)),
    ("signature of another timestamp", slack_headers(ts="1531420619"), SLACK_DOC_BODY, SLACK_DOC_SECRET,
     int(SLACK_DOC_TS)),
])
def test_slack_requests_that_fail_verification_get_401_with_no_details(case, headers, body, secret, now):
    with pytest.raises(verify.Unauthorized) as caught:
        verify.verify_slack(headers, body, secret, now=now)
    assert caught.value.status == 401 and caught.value.message == "unauthorized"


def test_slack_timestamps_inside_the_five_minute_window_are_accepted_at_both_edges():
    for now in (int(SLACK_DOC_TS) - 300, int(SLACK_DOC_TS) + 300):
        verify.verify_slack(slack_headers(), SLACK_DOC_BODY, SLACK_DOC_SECRET, now=now)


def test_a_teams_request_signed_with_the_decoded_secret_verifies():
    body = '{"type":"message","text":"<at>Platform</at> status — ünïcode"}'.encode()
    verify.verify_teams(teams_header(body), body, TEAMS_SECRET)
    assert verify.teams_signature(TEAMS_SECRET, body) == teams_header(body)["Authorization"]


@pytest.mark.parametrize("case, headers, body, secret", [
    ("tampered body", teams_header(b'{"text":"status"}'), b'{"text":"scale"}', TEAMS_SECRET),
    ("wrong secret", teams_header(b"{}", base64.b64encode(b"other").decode()), b"{}", TEAMS_SECRET),
    ("secret used without base64-decoding", {"Authorization": "HMAC " + base64.b64encode(hmac.new(
        TEAMS_SECRET.encode(), b"{}", hashlib.sha256).digest()).decode()}, b"{}", TEAMS_SECRET),
    ("no header", {}, b"{}", TEAMS_SECRET),
    ("another scheme", {"Authorization": "Bearer abc"}, b"{}", TEAMS_SECRET),
    ("no secret configured", teams_header(b"{}"), b"{}", None),
])
def test_teams_requests_that_fail_verification_get_401(case, headers, body, secret):
    with pytest.raises(verify.Unauthorized) as caught:
        verify.verify_teams(headers, body, secret)
    assert caught.value.status == 401


# -- grammar ------------------------------------------------------------------------------------------

DEV = "dev-uaenorth"


@pytest.mark.parametrize("text, verb, env, args", [
    ("help", "help", DEV, {}),
    ("", "help", DEV, {}),
    ("status", "status", DEV, {}),
    ("  STATUS   prd-uaenorth ", "status", "prd-uaenorth", {}),
    ("scale dev-uaenorth h100 3", "scale", DEV, {"pool": "h100", "count": 3, "seconds": 3600}),
    ("scale prd-uaenorth h100 4 for 2h", "scale", "prd-uaenorth", {"pool": "h100", "count": 4, "seconds": 7200}),
    ("scale dev-uaenorth h100 auto", "scale", DEV, {"pool": "h100", "count": None, "seconds": 3600}),
    ("certs", "certs", DEV, {}),
    ("rotate stg-uaenorth origin-rsa", "rotate", "stg-uaenorth", {"certificate": "origin-rsa"}),
    ("drift", "drift", DEV, {}),
    ("drift mr dev-uaenorth", "drift mr", DEV, {}),
    ("scan stg-uaenorth", "scan", "stg-uaenorth", {}),
    ("pause autoscaling dev-uaenorth", "pause autoscaling", DEV, {}),
    ("resume autoscaling dev-uaenorth", "resume autoscaling", DEV, {}),
    ("audit nodepool/dev-uaenorth/h100", "audit", DEV, {"target": "nodepool/dev-uaenorth/h100"}),
    ("approve 1a2b3c4d", "approve", DEV, {"id": "1a2b3c4d"}),
])
def test_each_command_parses(text, verb, env, args):
    command = grammar.parse(text, default_env=DEV)
    assert (command.verb, command.env, command.args) == (verb, env, args)


@pytest.mark.parametrize("text, says", [
    ("deploy everything", "unknown command 'deploy'"),
    ("scale h100 3", "scale needs an environment"),
    ("scale dev-uaenorth h100 three", "not a node count"),
    ("scale dev-uaenorth h100 3 for ever", "not a duration"),
    ("scale dev-uaenorth h100 3 for 2d", "at most 1d"),
    ("scale dev-uaenorth h100 3 during 2h", "expected `for <duration>`"),
    ("scale dev-uaenorth h100 auto for 2h", "takes no duration"),
    ("scale qa-uaenorth h100 3", "is not an environment"),
    ("rotate dev-uaenorth", "rotate needs an environment and a certificate"),
    ("drift mr", "drift mr takes an environment"),
    ("pause dev-uaenorth", "pause what?"),
    ("pause autoscaling", "takes an environment"),
    ("status dev-uaenorth extra", "at most an environment"),
    ("audit", "audit needs one target"),
    ("audit ../../etc", "audit needs one target"),
    ("approve x", "approve needs the request id"),
    ("help me", "help takes no arguments"),
])
def test_malformed_and_unknown_commands_say_what_is_wrong_and_how_it_is_written(text, says):
    with pytest.raises(grammar.CommandError) as caught:
        grammar.parse(text, default_env=DEV)
    assert says in caught.value.message
    assert caught.value.status == 400


def test_help_lists_every_command():
    text = grammar.help_text(DEV)
    assert all(v.usage in text for v in grammar.VERBS.values())


# -- the access file ----------------------------------------------------------------------------------

ALICE, BOB, VICTOR, STRANGER = "slack:TX/UALICE", "slack:TX/UBOB", "teams:00000000-0000-4000-8000-0000000000cc", \
    "slack:TX/UNOBODY"
POLICY = access.validate({
    "version": 1, "approval_required": ["prd-uaenorth"],
    "groups": {"ops": [ALICE, BOB]},
    "grants": [
        {"who": "group:ops", "role": "operator", "environments": ["*"]},
        {"who": VICTOR, "role": "viewer", "environments": ["dev-uaenorth"]},
        {"who": BOB, "role": "admin", "environments": ["dev-uaenorth"]},
    ],
})


def test_the_access_file_in_git_is_valid_and_asks_approval_for_production():
    policy = access.load()
    assert policy.needs_approval("prd-uaenorth")
    assert policy.role_of("slack:TNOBODY/UNOBODY", "dev-uaenorth") is None


def test_roles_are_per_environment_the_highest_grant_wins_and_everyone_else_is_denied():
    assert POLICY.role_of(ALICE, "prd-uaenorth") == "operator"
    assert POLICY.role_of(BOB, "dev-uaenorth") == "admin"
    assert POLICY.role_of(BOB, "stg-uaenorth") == "operator"
    assert POLICY.role_of(VICTOR, "dev-uaenorth") == "viewer"
    assert POLICY.role_of(VICTOR, "stg-uaenorth") is None
    assert POLICY.role_of(STRANGER, "dev-uaenorth") is None and not POLICY.known(STRANGER)


@pytest.mark.parametrize("raw, problem", [
    ({"version": 1, "grants": [{"who": "group:nobody", "role": "viewer", "environments": ["*"]}]},
     "group:nobody is not defined"),
    ({"version": 1, "grants": [{"who": "slack:TX/UA", "role": "root", "environments": ["*"]}]}, "role 'root'"),
    ({"version": 1, "grants": [{"who": "slack:TX/UA", "role": "viewer", "environments": ["qa"]}]}, "environments"),
    ({"version": 1, "grants": [{"who": "alice", "role": "viewer", "environments": ["*"]}]}, "is not group:<name>"),
    ({"version": 1, "groups": {"ops": ["bob@example.com"]}}, "is not slack:<team>/<user>"),
    ({"version": 1, "approval_required": ["prod"]}, "approval_required"),
    ({"version": 2}, "version"),
    ({"version": 1, "admins": []}, "unknown keys"),
])
def test_a_broken_access_file_is_refused_with_every_problem_named(raw, problem):
    with pytest.raises(ConfigError) as caught:
        access.validate(raw)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_the_sandbox_access_file_is_valid():
    raw = yaml.safe_load((APP_ROOT / "shared/local/sandbox/chatops-access.yaml").read_text())
    policy = access.validate(raw)
    assert policy.needs_approval("prd-uaenorth")


# -- authorization --------------------------------------------------------------------------------------

def cmd(text, env=DEV):
    return grammar.parse(text, default_env=env)


@pytest.mark.parametrize("who, text, app_env, reason", [
    (STRANGER, "status", DEV, "UnknownUser"),
    (STRANGER, "help", DEV, "UnknownUser"),
    (VICTOR, "help", DEV, "Help"),
    (VICTOR, "status", DEV, "Allowed"),
    (VICTOR, "scale dev-uaenorth h100 2", DEV, "Forbidden"),
    (VICTOR, "approve abcdef12", DEV, "Forbidden"),
    (ALICE, "scale dev-uaenorth h100 2", DEV, "Allowed"),
    (ALICE, "scale prd-uaenorth h100 2", "prd-uaenorth", "NeedsApproval"),
    (ALICE, "status prd-uaenorth", "prd-uaenorth", "Allowed"),
    (ALICE, "scale stg-uaenorth h100 2", DEV, "OtherEnvironment"),
    (BOB, "pause autoscaling dev-uaenorth", DEV, "Allowed"),
])
def test_authorization_is_deny_by_default_and_per_role(who, text, app_env, reason):
    assert service.authorize(POLICY, who, cmd(text, app_env), app_env=app_env).reason == reason


def test_the_refusal_to_an_unknown_user_is_polite_and_names_no_internals():
    message = service.authorize(POLICY, STRANGER, cmd("status"), app_env=DEV).message
    assert "Sorry" in message
    for internal in ("access", "yaml", "role", "slack:", "operator", "viewer", "infra"):
        assert internal not in message.replace("have access to", "")


# -- approvals ----------------------------------------------------------------------------------------

T0 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
PENDING = approvals.ApprovalRequest("abcdef12", "prd-uaenorth", ALICE, "alice", "scale prd-uaenorth h100 2", "slack",
                                    T0, T0 + dt.timedelta(minutes=15))


@pytest.mark.parametrize("request_, approver, env, now, reason", [
    (PENDING, BOB, "prd-uaenorth", T0 + dt.timedelta(minutes=1), "Approved"),
    (PENDING, ALICE, "prd-uaenorth", T0 + dt.timedelta(minutes=1), "SelfApproval"),
    (PENDING, BOB, "prd-uaenorth", T0 + dt.timedelta(minutes=15), "Expired"),
    (None, BOB, "prd-uaenorth", T0, "NoSuchRequest"),
    (approvals.ApprovalRequest(**{**vars(PENDING), "status": "approved"}), BOB, "prd-uaenorth", T0,
     "AlreadyApproved"),
    (PENDING, BOB, DEV, T0, "WrongEnvironment"),
])
def test_an_approval_needs_a_second_person_before_it_expires(request_, approver, env, now, reason):
    decision = approvals.decide_approval(request_, approver, env, now)
    assert decision.reason == reason and decision.ok == (reason == "Approved")


def test_teams_messages_are_adaptive_cards_with_code_blocks_in_monospace():
    from shared.services.chat_notify import ADAPTIVE_CARD, card_text, teams_card

    message = teams_card("Pools:\n```\nh100   3 ready\nmi300x 0 ready\n```\nAll good.")
    assert message["type"] == "message" and message["attachments"][0]["contentType"] == ADAPTIVE_CARD
    card = message["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert [(b["text"], b.get("fontType")) for b in card["body"]] == [
        ("Pools:", None), ("h100   3 ready\nmi300x 0 ready", "Monospace"), ("All good.", None)]
    assert card_text(message) == "Pools:\nh100   3 ready\nmi300x 0 ready\nAll good."
    assert card_text({"type": "message", "text": "plain"}) == "plain"
