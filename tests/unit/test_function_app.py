"""Indexing the app as the Functions host does: unique names, valid triggers and bindings, cheap import."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import HEAVY_SDKS
from shared.local.cron import CronSchedule

ROOT = Path(__file__).resolve().parents[2]
HEAVY = HEAVY_SDKS


@pytest.fixture(scope="module")
def indexed():
    # get_functions() may be called once per app object: index in a fresh interpreter, as the host does.
    code = (
        "import json, sys, function_app\n"
        "fs = function_app.app.get_functions()\n"
        "print(json.dumps({'functions': [json.loads(f.get_function_json()) | {'name': f.get_function_name()}"
        f" for f in fs], 'heavy': sorted(m for m in sys.modules if m.startswith({HEAVY!r}))}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_indexing_the_app_imports_no_heavy_sdk(indexed):
    assert indexed["heavy"] == []


def test_function_names_are_unique_and_valid(indexed):
    names = [f["name"] for f in indexed["functions"]]
    assert len(names) == len(set(names))
    for name in names:
        assert name.replace("_", "").isalnum() and name[0].isalpha(), name


def test_every_function_has_exactly_one_known_trigger_with_valid_settings(indexed):
    for function in indexed["functions"]:
        triggers = [b for b in function["bindings"] if b["type"].endswith("Trigger")]
        assert len(triggers) == 1, function["name"]
        trigger = triggers[0]
        assert trigger["type"] in ("httpTrigger", "timerTrigger", "queueTrigger", "eventGridTrigger")
        if trigger["type"] == "timerTrigger":
            schedule = trigger["schedule"]
            if schedule.startswith("%") and schedule.endswith("%"):
                # An app setting (resolved by the host): the sample settings must give a valid default.
                sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
                schedule = sample[schedule.strip("%")]
            CronSchedule.parse(schedule)
        if trigger["type"] == "httpTrigger":
            assert trigger["route"] and not trigger["route"].startswith("/")
            assert any(b["type"] == "http" and b["direction"] == "OUT" for b in function["bindings"])
        if trigger["type"] == "queueTrigger":
            assert trigger["connection"] and trigger["queueName"]


def test_the_health_function_is_anonymous_and_get_only(indexed):
    health = next(f for f in indexed["functions"] if f["name"] == "health")
    trigger = health["bindings"][0]
    assert trigger["authLevel"] == "ANONYMOUS" and trigger["methods"] == ["GET"] and trigger["route"] == "health"


def test_the_health_details_need_the_function_key_and_are_get_only(indexed):
    details = next(f for f in indexed["functions"] if f["name"] == "health_details")
    trigger = details["bindings"][0]
    assert trigger["authLevel"] == "FUNCTION" and trigger["methods"] == ["GET"]
    assert trigger["route"] == "health/details"


#: HTTP functions open to anyone on the public app, each a decision: the status probe (names nothing), and
#: webhooks that check their sender's signature themselves (add them here when they arrive).
ANONYMOUS_BY_DESIGN = {
    "health",
    "gitlab_webhook",  # GitLab sends X-Gitlab-Token (checked in constant time), not a function key
    # Slack and Teams sign every request (v0 signature, HMAC), verified on the raw bytes; they send no key.
    "chatops_slack_commands",
    "chatops_slack_interactions",
    "chatops_teams",
}


def test_no_http_function_is_anonymous_unless_by_design(indexed):
    anonymous = {f["name"] for f in indexed["functions"]
                 if any(b.get("authLevel") == "ANONYMOUS" for b in f["bindings"])}
    assert anonymous <= ANONYMOUS_BY_DESIGN


def test_host_json_is_a_valid_v2_host_file():
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensions"]["queues"]["messageEncoding"] == "base64"
