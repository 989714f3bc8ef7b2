"""The Azure Monitor alert for new high/critical compliance findings matches the code the scan logs, notifies
on-call, and names its runbook (docs/runbooks/<alert-name>.md with the four headings)."""

import re

from infra_helpers import MODULES_DIR, REPO, instances

from shared.services.compliance import scan


def alert() -> dict:
    return instances(MODULES_DIR / "monitoring", "azurerm_monitor_scheduled_query_rules_alert_v2",
                     "log_code")["compliance-new-high"]


def _one(value):
    return value[0] if isinstance(value, list) else value


def test_the_alert_fires_on_the_code_a_new_high_finding_logs():
    query = _one(alert()["criteria"])["query"]
    pattern = re.search(r'extract\(@"(.+?)", 1, message\)', query).group(1)
    assert re.search(pattern, f"{scan.CODE_NEW_HIGH}: dev-uaenorth high disallow-host-path on pod/a/b: x")
    assert not re.search(pattern, "compliance scan dev-uaenorth: 0 critical, 1 high open")
    assert "severityLevel >= 3" in query  # the scan logs the code at ERROR


def test_the_alert_notifies_the_platform_action_group_and_names_its_runbook():
    body = alert()
    action = _one(body["action"])
    assert action["action_groups"] == ["${azurerm_monitor_action_group.platform.id}"]
    runbook = action["custom_properties"]["runbook_url"]
    assert runbook == ("https://gitlab.example.com/platform/platform-core/-/blob/main/"
                       "docs/runbooks/alert-compliance-new-high.md")
    assert runbook in body["description"]
    text = (REPO / "docs" / "runbooks" / "alert-compliance-new-high.md").read_text()
    for heading in ("## What it means", "## How to confirm", "## How to fix", "## How to escalate"):
        assert heading in text


def test_the_alert_keeps_its_azure_name_and_severity_2():
    body = alert()
    assert body["name"] == "alert-compliance-new-high-${var.name_suffix}"  # the name forces a new rule in Azure
    assert body["severity"] == 2
