"""The Azure Monitor alert for certificate rotation matches the codes the app logs, and notifies on-call."""

import re

from infra_helpers import MODULES_DIR, instances

from shared.services import certificates_rotation as rotation


def alert() -> dict:
    return instances(MODULES_DIR / "monitoring", "azurerm_monitor_scheduled_query_rules_alert_v2",
                     "log_code")["cert-rotation"]


def _criteria(body: dict) -> dict:
    criteria = body["criteria"]
    return criteria[0] if isinstance(criteria, list) else criteria


def test_the_alert_query_matches_the_permanent_failure_codes_and_not_the_deferred_one():
    query = _criteria(alert())["query"]
    pattern = re.search(r'extract\(@"(.+?)", 1, message\)', query).group(1)
    assert re.search(pattern, f"{rotation.CODE_AUTH_FAILED}: certificate x: Cloudflare10000: refused")
    assert re.search(pattern, f"{rotation.CODE_FAILED}: certificate x: BadParameter")
    assert not re.search(pattern, f"{rotation.CODE_DEFERRED}: certificate x: HTTP429")
    assert "severityLevel >= 3" in query  # errors only: the app logs those codes at ERROR


def test_the_alert_watches_the_app_and_notifies_the_platform_action_group():
    body = alert()
    assert body["scopes"] == ["${azurerm_application_insights.this.id}"]
    action = body["action"][0] if isinstance(body["action"], list) else body["action"]
    assert action["action_groups"] == ["${azurerm_monitor_action_group.platform.id}"]
    criteria = _criteria(body)
    assert criteria["operator"] == "GreaterThan" and criteria["threshold"] == 0


def test_the_alert_keeps_its_azure_name_and_pages_at_severity_1():
    body = alert()
    assert body["name"] == "alert-cert-rotation-${var.name_suffix}"  # the name forces a new rule in Azure
    assert body["severity"] == 1
