output "id" {
  description = "Resource ID of the function app."
  value       = azurerm_function_app_flex_consumption.this.id
}

output "name" {
  description = "Name of the function app."
  value       = azurerm_function_app_flex_consumption.this.name
}

output "default_hostname" {
  description = "Host name of the app: GitLab and Slack webhooks point here."
  value       = azurerm_function_app_flex_consumption.this.default_hostname
}

output "identity" {
  description = "The app's user-assigned identity: principal_id for further role assignments, client_id for AZURE_CLIENT_ID."
  value = {
    id           = azurerm_user_assigned_identity.app.id
    principal_id = azurerm_user_assigned_identity.app.principal_id
    client_id    = azurerm_user_assigned_identity.app.client_id
  }
}

output "app_setting_names" {
  description = "Names of the app settings Terraform manages (values of Key Vault references are resolved by App Service, never by Terraform)."
  value       = sort(keys(local.app_settings))
}

output "event_grid_system_topic_id" {
  description = "Resource ID of the Key Vault's Event Grid system topic."
  value       = azurerm_eventgrid_system_topic.key_vault.id
}
