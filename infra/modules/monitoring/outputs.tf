output "log_analytics_workspace_id" {
  description = "Resource ID of the Log Analytics workspace."
  value       = azurerm_log_analytics_workspace.this.id
}

output "monitor_workspace_id" {
  description = "Resource ID of the Azure Monitor workspace (Managed Prometheus)."
  value       = azurerm_monitor_workspace.this.id
}

output "application_insights_id" {
  description = "Resource ID of Application Insights (scope of the app's Monitoring Metrics Publisher role)."
  value       = azurerm_application_insights.this.id
}

output "application_insights_connection_string" {
  description = "Connection string of Application Insights. Not a credential once local authentication is disabled, but kept sensitive to stay out of logs."
  value       = azurerm_application_insights.this.connection_string
  sensitive   = true
}

output "action_group_id" {
  description = "Resource ID of the platform action group, for further alerts."
  value       = azurerm_monitor_action_group.platform.id
}

output "budget_ids" {
  description = "Resource IDs of the subscription budget and of the resource group budgets by key (null and empty when budgets is null)."
  value = {
    subscription    = one(azurerm_consumption_budget_subscription.platform[*].id)
    resource_groups = { for k, b in azurerm_consumption_budget_resource_group.platform : k => b.id }
  }
}
