resource "azurerm_monitor_action_group" "platform" {
  name                = "ag-${var.name_suffix}"
  resource_group_name = var.resource_group_name
  short_name          = "platform"
  tags                = var.tags

  dynamic "email_receiver" {
    for_each = var.alert_emails
    content {
      name                    = "email-${email_receiver.key}"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }
}

resource "azurerm_monitor_metric_alert" "automation_failures" {
  name                = "alert-automation-failures-${var.name_suffix}"
  resource_group_name = var.resource_group_name
  scopes              = [azurerm_application_insights.this.id]
  description         = "The automation app is failing requests: certificate rotation, scaling and ChatOps may be stuck. Runbook: https://gitlab.example.com/platform/platform-core/-/blob/main/docs/runbooks/automation-failures.md"
  severity            = 2
  frequency           = "PT5M"
  window_size         = "PT15M"
  tags                = var.tags

  criteria {
    metric_namespace = "microsoft.insights/components"
    metric_name      = "requests/failed"
    aggregation      = "Count"
    operator         = "GreaterThan"
    threshold        = var.failed_request_threshold
  }

  action {
    action_group_id = azurerm_monitor_action_group.platform.id
  }
}

# Origin certificate rotation needs a human: the automation app logs an error starting with a stable code
# (shared/services/certificates_rotation.py) when Cloudflare refuses its token (10000, 401/403) or the
# configuration is wrong, and changes nothing. Temporary failures (CERT_ROTATION_DEFERRED) retry by themselves.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "certificate_rotation" {
  name                 = "alert-cert-rotation-${var.name_suffix}"
  resource_group_name  = var.resource_group_name
  location             = var.location
  scopes               = [azurerm_application_insights.this.id]
  description          = "Origin certificate rotation failed permanently (CERT_ROTATION_AUTH_FAILED or CERT_ROTATION_FAILED): check the Cloudflare token and platform.yaml certificates, then run platformctl certs rotate NAME. Runbook: https://gitlab.example.com/platform/platform-core/-/blob/main/docs/runbooks/cert-rotation.md"
  severity             = 1
  evaluation_frequency = "PT15M"
  window_duration      = "PT30M"
  tags                 = var.tags

  criteria {
    query                   = <<-KQL
      traces
      | where severityLevel >= 3
      | extend code = extract(@"\b(CERT_ROTATION_(AUTH_)?FAILED)\b", 1, message)
      | where isnotempty(code)
    KQL
    time_aggregation_method = "Count"
    operator                = "GreaterThan"
    threshold               = 0

    dimension {
      name     = "code"
      operator = "Include"
      values   = ["*"]
    }

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }

  action {
    action_groups = [azurerm_monitor_action_group.platform.id]
  }
}

# A compliance scan found a new high or critical finding: the app logs one error per finding starting with
# COMPLIANCE_NEW_HIGH (shared/services/compliance/scan.py). Persisting findings do not log it again.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "compliance_new_high" {
  name                 = "alert-compliance-new-high-${var.name_suffix}"
  resource_group_name  = var.resource_group_name
  location             = var.location
  scopes               = [azurerm_application_insights.this.id]
  description          = "A compliance scan found a new high or critical finding (COMPLIANCE_NEW_HIGH): run platformctl scan --env ENV. Runbook: https://gitlab.example.com/platform/platform-core/-/blob/main/docs/runbooks/alert-compliance-new-high.md"
  severity             = 2
  evaluation_frequency = "PT15M"
  window_duration      = "PT30M"
  tags                 = var.tags

  criteria {
    query                   = <<-KQL
      traces
      | where severityLevel >= 3
      | extend code = extract(@"\b(COMPLIANCE_NEW_HIGH)\b", 1, message)
      | where isnotempty(code)
    KQL
    time_aggregation_method = "Count"
    operator                = "GreaterThan"
    threshold               = 0

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }

  action {
    action_groups = [azurerm_monitor_action_group.platform.id]
    custom_properties = {
      runbook_url = "https://gitlab.example.com/platform/platform-core/-/blob/main/docs/runbooks/alert-compliance-new-high.md"
    }
  }
}
