resource "azurerm_log_analytics_workspace" "this" {
  name                = "log-${var.name_suffix}"
  location            = var.location
  resource_group_name = var.resource_group_name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  # Readers need a role on the workspace or the resource; no shared keys for ingestion from agents.
  local_authentication_enabled = false
  tags                         = var.tags
}

# Managed Prometheus store (the AKS metrics addon writes here).
resource "azurerm_monitor_workspace" "this" {
  name                = "amw-${var.name_suffix}"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_application_insights" "this" {
  name                = "appi-${var.name_suffix}"
  location            = var.location
  resource_group_name = var.resource_group_name
  workspace_id        = azurerm_log_analytics_workspace.this.id
  application_type    = "other"
  # Telemetry is accepted only with an Entra ID token (Monitoring Metrics Publisher), not the instrumentation key alone.
  local_authentication_disabled = true
  tags                          = var.tags
}
