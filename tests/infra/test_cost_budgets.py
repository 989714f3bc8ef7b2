"""Budgets per environment, on its subscription and on the resource groups it is billed through, alerting the
platform's action group on actual spend and on the month's forecast."""

from __future__ import annotations

import pytest
import yaml
from infra_helpers import ENVIRONMENTS, ENVS_DIR, MODULES_DIR, load_hcl

BUDGETS_TF = MODULES_DIR / "monitoring" / "budgets.tf"


def budgets(env: str) -> dict:
    return yaml.safe_load((ENVS_DIR / env / "platform.yaml").read_text())["cost"]["budgets"]


def resources(kind: str) -> dict:
    return next(r[kind]["platform"] for r in load_hcl(BUDGETS_TF)["resource"] if kind in r)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_budgets_its_subscription_and_both_resource_groups_with_a_forecast_alert(env):
    b = budgets(env)
    assert set(b["resource_groups_monthly"]) == {"platform", "nodes"}
    assert 0 < sum(b["resource_groups_monthly"].values()) <= b["subscription_monthly"]
    assert b["forecast_thresholds"] and len(b["actual_thresholds"]) + len(b["forecast_thresholds"]) <= 5


def test_budgets_grow_from_dev_to_prd():
    amounts = [budgets(env)["subscription_monthly"] for env in ("dev-uaenorth", "stg-uaenorth", "prd-uaenorth")]
    assert amounts == sorted(amounts)


@pytest.mark.parametrize("kind", ["azurerm_consumption_budget_subscription",
                                  "azurerm_consumption_budget_resource_group"])
def test_each_budget_notifies_the_platform_action_group_at_every_actual_and_forecast_threshold(kind):
    body = resources(kind)
    assert body["time_grain"] == "Monthly"
    [dynamic] = body["dynamic"]
    notification = dynamic["notification"]
    assert notification["for_each"] == "${local.budget_notifications}"
    [content] = notification["content"]
    assert content["contact_groups"] == ["${azurerm_monitor_action_group.platform.id}"]
    assert content["threshold_type"] == "${notification.value.type}" and content["enabled"] is True
    [local] = [entry["budget_notifications"] for entry in load_hcl(BUDGETS_TF)["locals"]]
    assert '"Actual"' in local and '"Forecasted"' in local


def test_the_node_resource_group_where_the_vms_are_billed_is_budgeted():
    text = (MODULES_DIR / "platform" / "main.tf").read_text()
    assert "budgets             = local.p.cost.budgets" in text
    assert "nodes    = module.aks.node_resource_group" in text
    body = resources("azurerm_consumption_budget_resource_group")
    assert "var.budget_resource_groups[each.key]" in body["resource_group_id"]
