"""One place for "alert on this stable error code": every code the app logs for a human has exactly one entry in
`log_code_alerts` (infra/modules/monitoring/alerts.tf), and every entry's rule matches its codes in the app's
error traces, notifies on-call at its severity and links its runbook (README "Delivery": alert runbooks)."""

import re

import pytest
from infra_helpers import MODULES_DIR, REPO, instances, module_locals

from shared.services import certificates_rotation, platform_events
from shared.services.compliance import scan
from shared.services.scaling import bounds, tick

MONITORING = MODULES_DIR / "monitoring"
BASE = "https://gitlab.example.com/platform/platform-core/-/blob/main/docs/runbooks/"
# The codes the app logs at ERROR for a human to act on (its modules say "alert on it").
APP_ALERT_CODES = {
    certificates_rotation.CODE_AUTH_FAILED,
    certificates_rotation.CODE_FAILED,
    scan.CODE_NEW_HIGH,
    tick.ALERT_QUOTA,
    tick.ALERT_STALLED,
    bounds.ALERT_FAILED,
    *platform_events.AKS_ALERTS.values(),
}
ALERTS = instances(MONITORING, "azurerm_monitor_scheduled_query_rules_alert_v2", "log_code")
ENTRIES = module_locals(MONITORING)["log_code_alerts"]


def _one(value):
    return value[0] if isinstance(value, list) else value


def _pattern(body: dict) -> str:
    return re.search(r'extract\(@"(.+?)", 1, message\)', _one(body["criteria"])["query"]).group(1)


def test_every_code_the_app_alerts_on_has_exactly_one_entry():
    listed = [code for entry in ENTRIES.values() for code in entry["codes"]]
    assert sorted(listed) == sorted(set(listed)), "a code in two entries would page twice"
    assert set(listed) == APP_ALERT_CODES


def test_the_map_keeps_the_two_alerts_it_replaced():
    assert {"cert-rotation", "compliance-new-high"} <= set(ALERTS)


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_each_rule_matches_its_codes_as_whole_words_in_error_traces_only(key):
    body, pattern = ALERTS[key], _pattern(ALERTS[key])
    assert "severityLevel >= 3" in _one(body["criteria"])["query"]
    for code in ENTRIES[key]["codes"]:
        assert re.search(pattern, f"{code}: pool h100: detail")[1] == code  # tick, bounds, rotation, scan
        assert re.search(pattern, f"ALERT {code}: on cluster aks-x {{}}")[1] == code  # platform_events
        assert not re.search(pattern, f"{code}X: detail") and not re.search(pattern, f"X{code} detail")
    for other in APP_ALERT_CODES - set(ENTRIES[key]["codes"]):
        assert not re.search(pattern, f"{other}: detail"), f"{key} would fire on {other}"


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_each_rule_watches_the_app_and_notifies_on_call_per_code(key):
    body = ALERTS[key]
    assert body["scopes"] == ["${azurerm_application_insights.this.id}"]
    assert _one(body["action"])["action_groups"] == ["${azurerm_monitor_action_group.platform.id}"]
    criteria = _one(body["criteria"])
    assert criteria["operator"] == "GreaterThan" and criteria["threshold"] == 0
    assert criteria["time_aggregation_method"] == "Count"
    assert _one(criteria["dimension"]) == {"name": "code", "operator": "Include", "values": ["*"]}


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_each_rule_is_named_after_its_key_and_links_its_runbook_which_names_it_and_its_severity(key):
    body = ALERTS[key]
    assert body["name"] == f"alert-{key}-${{var.name_suffix}}"
    assert body["severity"] in range(5)
    runbook = f"{BASE}alert-{key}.md"
    assert _one(body["action"])["custom_properties"] == {"runbook_url": runbook}
    assert body["description"].endswith(f" Runbook: {runbook}")
    assert all(code in body["description"] for code in ENTRIES[key]["codes"])
    text = (REPO / "docs" / "runbooks" / f"alert-{key}.md").read_text()
    assert f"`alert-{key}-<env>`" in text and f"severity {body['severity']}." in text.split("##")[0]
