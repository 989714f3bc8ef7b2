# Cost budgets (issue 16): one on the environment's subscription (each environment has its own) and one per
# resource group it is billed through (the platform's, and the cluster's node resource group where the GPU
# and CPU VMs are), monthly, in the billing currency. Azure evaluates them about once a day; each threshold
# notifies the platform action group (the on-call alias) once per month: `Actual` when the month's spend
# passes the share, `Forecasted` when Cost Management's forecast for the month does, so the forecast warns
# while there is still time to act (GPU pools are the lever: README "Cost"). Budgets carry no description, so
# their runbooks are linked here (tests/delivery/test_runbooks.py reads these lines):
# Runbook: https://gitlab.example.com/platform/platform-core/-/blob/main/docs/runbooks/PlatformBudgetActualExceeded.md
# Runbook: https://gitlab.example.com/platform/platform-core/-/blob/main/docs/runbooks/PlatformBudgetForecastExceeded.md
# Amounts and thresholds are platform facts (platform.yaml `cost.budgets`); no budget when it is null.
data "azurerm_subscription" "current" {}

locals {
  budget_notifications = var.budgets == null ? [] : concat(
    [for t in var.budgets.actual_thresholds : { threshold = t, type = "Actual" }],
    [for t in var.budgets.forecast_thresholds : { threshold = t, type = "Forecasted" }],
  )
}

resource "azurerm_consumption_budget_subscription" "platform" {
  count = var.budgets == null ? 0 : 1

  name            = "budget-${var.name_suffix}"
  subscription_id = data.azurerm_subscription.current.id
  amount          = var.budgets.subscription_monthly
  time_grain      = "Monthly"

  time_period {
    start_date = "${var.budgets.start_month}-01T00:00:00Z"
  }

  dynamic "notification" {
    for_each = local.budget_notifications
    content {
      enabled        = true
      threshold      = notification.value.threshold
      threshold_type = notification.value.type
      operator       = "GreaterThanOrEqualTo"
      contact_groups = [azurerm_monitor_action_group.platform.id]
    }
  }
}

resource "azurerm_consumption_budget_resource_group" "platform" {
  for_each = var.budgets == null ? {} : var.budgets.resource_groups_monthly

  name              = "budget-${each.key}-${var.name_suffix}"
  resource_group_id = "${data.azurerm_subscription.current.id}/resourceGroups/${var.budget_resource_groups[each.key]}"
  amount            = each.value
  time_grain        = "Monthly"

  time_period {
    start_date = "${var.budgets.start_month}-01T00:00:00Z"
  }

  dynamic "notification" {
    for_each = local.budget_notifications
    content {
      enabled        = true
      threshold      = notification.value.threshold
      threshold_type = notification.value.type
      operator       = "GreaterThanOrEqualTo"
      contact_groups = [azurerm_monitor_action_group.platform.id]
    }
  }
}
