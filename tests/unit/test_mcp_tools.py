"""The MCP tools' pure parts: tool arguments to chat commands, the caller's principal, which tools are offered,
and the agent example's reading of GPU-scaling audit records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from pathlib import Path

import pytest

from shared.services import mcp
from shared.services.chatops import grammar
from shared.services.chatops.grammar import CommandError
from shared.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "agent"))
import why_scaled

TOOL = {t.name: t for t in mcp.TOOLS}


@pytest.mark.parametrize(("tool", "arguments", "command"), [
    ("status", {}, "status"),
    ("status", {"env": "stg-uaenorth"}, "status stg-uaenorth"),
    ("audit", {"target": "nodepool/dev-uaenorth/h100"}, "audit nodepool/dev-uaenorth/h100"),
    ("scale", {"env": "dev-uaenorth", "pool": "h100", "count": 2, "duration": "2h"},
     "scale dev-uaenorth h100 2 for 2h"),
    ("scale", {"env": "dev-uaenorth", "pool": "h100", "count": "auto"}, "scale dev-uaenorth h100 auto"),
    ("drift_mr", {"env": "prd-uaenorth"}, "drift mr prd-uaenorth"),
    ("pause_autoscaling", {"env": "dev-uaenorth"}, "pause autoscaling dev-uaenorth"),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_a_tool_call_becomes_the_chat_command_a_person_would_type(tool, arguments, command):
    text = TOOL[tool].command_text(arguments)
    assert text == command
    assert grammar.parse(text, default_env="dev-uaenorth").verb == TOOL[tool].verb


@pytest.mark.parametrize(("tool", "arguments", "says"), [
    ("audit", {}, "missing target"),
    ("status", {"env": "dev-uaenorth", "pool": "h100"}, "unknown arguments"),
    ("audit", {"target": "a b"}, "single words"),
], ids=["a required argument missing", "an argument the tool has not", "words smuggled into an argument"])
def test_arguments_that_are_not_the_tools_are_refused(tool, arguments, says):
    with pytest.raises(CommandError, match=says):
        TOOL[tool].command_text(arguments)


def test_the_caller_is_the_teams_principal_of_the_easyauth_object_id():
    who = mcp.caller({"X-MS-CLIENT-PRINCIPAL-ID": "00000000-0000-4000-8000-0000000A11CE",
                      "X-MS-CLIENT-PRINCIPAL-NAME": "alice@example.com"})
    assert who == mcp.Caller("teams:00000000-0000-4000-8000-0000000a11ce", "alice@example.com")
    assert mcp.caller({}).principal == ""


@pytest.mark.parametrize(("environ", "trusted"), [
    ({}, True),
    ({"WEBSITE_INSTANCE_ID": "abc", "WEBSITE_AUTH_ENABLED": "True"}, True),
    ({"WEBSITE_INSTANCE_ID": "abc"}, False),
    ({"WEBSITE_INSTANCE_ID": "abc", "WEBSITE_AUTH_ENABLED": "False"}, False),
], ids=["off App Service (sandbox)", "App Service with Authentication", "App Service without it",
        "App Service with it switched off"])
def test_the_identity_header_is_believed_only_where_app_service_authentication_sets_it(environ, trusted):
    who = mcp.caller({"X-MS-CLIENT-PRINCIPAL-ID": "00000000-0000-4000-8000-0000000a11ce"}, environ)
    assert bool(who.principal) is trusted


def test_changing_tools_are_offered_only_when_the_setting_enables_them():
    settings = Settings.from_env({"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": "x"})
    read_only = {t.name for t in mcp.offered(settings)}
    assert read_only == {"status", "certs", "drift", "scan", "audit"}
    everything = {t.name for t in mcp.offered(dataclasses.replace(settings, mcp_mutating_tools=True))}
    assert everything - read_only == {"scale", "rotate", "drift_mr", "pause_autoscaling", "resume_autoscaling"}


NIGHT = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)


def record(hour, minute, reason, before, after, action="scale", day=15):
    return {"time": dt.datetime(2026, 1, day, hour, minute, tzinfo=dt.UTC).isoformat(), "action": action,
            "reason": reason, "outcome": "succeeded", "inputs": {"count": after, "depth": 7, "pool": {"count": before}}}


def test_last_night_is_18z_the_day_before_to_08z():
    assert why_scaled.last_night(NIGHT) == (dt.datetime(2026, 1, 14, 18, tzinfo=dt.UTC),
                                            dt.datetime(2026, 1, 15, 8, tzinfo=dt.UTC))


def test_the_agent_keeps_only_last_nights_scale_ups():
    records = [record(17, 59, "ScaleUp", 0, 1, day=14), record(23, 0, "WakeFromZero", 0, 1, day=14),
               record(2, 0, "ScaleDown", 3, 1), record(3, 0, "Override", 1, 2, action="override"),
               record(4, 0, "ScaleUp", 1, 4), record(8, 0, "ScaleUp", 4, 6)]
    since, until = why_scaled.last_night(NIGHT)
    ups = why_scaled.scale_ups(records, since, until)
    assert [(u.time.hour, u.reason, u.before, u.after) for u in ups] == [(23, "WakeFromZero", 0, 1),
                                                                          (4, "ScaleUp", 1, 4)]


def test_a_quiet_night_is_answered_as_such():
    answer = why_scaled.explain("", [], lambda q: {}, env="dev-uaenorth", pool="h100", now=NIGHT)
    assert answer.scale_ups == () and "did not scale up" in answer.text
