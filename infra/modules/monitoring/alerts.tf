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

# -- Alerts on the stable error codes the automation app logs --------------------------------------------
#
# The app logs a permanent failure that needs a human at ERROR, its message starting with (or, for AKS events,
# naming) a stable code; the code, not the wording, is the contract. One entry a code family: the key is the
# alert's name (`alert-<key>-<suffix>` in Azure) and its runbook (docs/runbooks/alert-<key>.md, with the four
# headings); `codes` are matched as whole words in the message; `severity` is Azure Monitor's 0 (critical) to
# 4 (verbose). To alert on a new code: add an entry here and write its runbook (tests/delivery/test_runbooks.py).
# Temporary failures (CERT_ROTATION_DEFERRED, GPU scaling's retries) log warnings and alert on nothing.
locals {
  log_code_alerts = {
    # shared/services/certificates_rotation.py: Cloudflare refused the token (10000, 401/403) or the
    # configuration is wrong; nothing was changed.
    "cert-rotation" = {
      codes    = ["CERT_ROTATION_AUTH_FAILED", "CERT_ROTATION_FAILED"]
      severity = 1
      summary  = "Origin certificate rotation failed permanently: check the Cloudflare token and platform.yaml certificates, then run platformctl certs rotate NAME."
    }
    # shared/services/compliance/scan.py: one error per new high or critical finding; persisting findings
    # do not log it again.
    "compliance-new-high" = {
      codes    = ["COMPLIANCE_NEW_HIGH"]
      severity = 2
      summary  = "A compliance scan found a new high or critical finding: run platformctl scan --env ENV."
    }
    # shared/services/scaling/tick.py: AKS refused a scale-up for quota; the pool's fallback_pool serves
    # its queue until the quota rises.
    "gpu-quota-exhausted" = {
      codes    = ["GpuQuotaExhausted"]
      severity = 1
      summary  = "A GPU pool cannot add nodes: the subscription's VM family quota is exhausted. Raise the quota; platformctl scaling status shows the pool and its fallback."
    }
    # shared/services/scaling/tick.py: the autoscaler did not reach the raised min_count in twice the time
    # to ready (quota or zonal capacity on an autoscaled pool); the tick falls back as above.
    "gpu-scale-up-stalled" = {
      codes    = ["GpuScaleUpStalled"]
      severity = 2
      summary  = "A GPU pool's scale-up stalled: the cluster autoscaler did not add the nodes. Check the pool's activity log and quota; platformctl scaling status shows the pool."
    }
    # shared/services/scaling/bounds.py: GitLab refused the merge request raising a capped pool's max_count;
    # scaling goes on within the current bounds and the proposal is retried after an hour.
    "gpu-bounds-proposal-failed" = {
      codes    = ["GpuBoundsProposalFailed"]
      severity = 3
      summary  = "The merge request raising a capped GPU pool's max_count could not be opened (GitLab refused it). Scaling goes on within the current bounds."
    }
    # shared/services/platform_events.py: AKS announced the end of support of the cluster's version.
    "aks-cluster-support-ending" = {
      codes    = ["AksClusterSupportEnding"]
      severity = 2
      summary  = "The cluster's Kubernetes version is reaching the end of AKS support: merge the version-bump merge request or raise kubernetes_version in platform.yaml."
    }
    "aks-cluster-support-ended" = {
      codes    = ["AksClusterSupportEnded"]
      severity = 1
      summary  = "The cluster's Kubernetes version is out of AKS support: upgrade it now (kubernetes_version in platform.yaml)."
    }
    # shared/services/platform_events.py: a node pool upgrade (rolling node image or version) failed.
    "aks-node-pool-rolling-failed" = {
      codes    = ["AksNodePoolRollingFailed"]
      severity = 1
      summary  = "A node pool upgrade failed part way: the pool may run mixed versions. Check the pool's provisioning state and the event's errorCode."
    }
  }

  runbook_base = "https://gitlab.example.com/platform/platform-core/-/blob/main/docs/runbooks/"
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "log_code" {
  for_each = local.log_code_alerts

  name                 = "alert-${each.key}-${var.name_suffix}"
  resource_group_name  = var.resource_group_name
  location             = var.location
  scopes               = [azurerm_application_insights.this.id]
  description          = "${each.value.summary} Codes: ${join(", ", each.value.codes)}. Runbook: ${local.runbook_base}alert-${each.key}.md"
  severity             = each.value.severity
  evaluation_frequency = "PT15M"
  window_duration      = "PT30M"
  tags                 = var.tags

  criteria {
    # One alert per code that fired (dimension `code`): an entry may name several.
    query                   = <<-KQL
      traces
      | where severityLevel >= 3
      | extend code = extract(@"\b(${join("|", each.value.codes)})\b", 1, message)
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
    custom_properties = {
      runbook_url = "${local.runbook_base}alert-${each.key}.md"
    }
  }

  lifecycle {
    precondition {
      # Codes go into a KQL regular expression as whole words: letters, digits and underscores only.
      condition     = length(each.value.codes) > 0 && alltrue([for c in each.value.codes : can(regex("^[A-Za-z][A-Za-z0-9_]*$", c))])
      error_message = "log_code_alerts[\"${each.key}\"]: codes must be one or more identifiers ([A-Za-z][A-Za-z0-9_]*)."
    }
    precondition {
      condition     = can(regex("^[a-z0-9]+(-[a-z0-9]+)*$", each.key)) && contains([0, 1, 2, 3, 4], each.value.severity)
      error_message = "log_code_alerts[\"${each.key}\"]: the key must be lowercase words joined by hyphens and severity 0 to 4."
    }
  }
}

# The two alerts this map replaced, kept in state under their new keys (no destroy and create on apply).
moved {
  from = azurerm_monitor_scheduled_query_rules_alert_v2.certificate_rotation
  to   = azurerm_monitor_scheduled_query_rules_alert_v2.log_code["cert-rotation"]
}

moved {
  from = azurerm_monitor_scheduled_query_rules_alert_v2.compliance_new_high
  to   = azurerm_monitor_scheduled_query_rules_alert_v2.log_code["compliance-new-high"]
}
