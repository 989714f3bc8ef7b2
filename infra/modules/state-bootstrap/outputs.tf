output "resource_group_name" {
  description = "Resource group of the state account (backend resource_group_name)."
  value       = azurerm_resource_group.state.name
}

output "storage_account_name" {
  description = "State storage account (backend storage_account_name)."
  value       = azurerm_storage_account.state.name
}

output "container_name" {
  description = "State container (backend container_name)."
  value       = azurerm_storage_container.state.name
}

output "storage_account_id" {
  description = "Resource ID of the state account."
  value       = azurerm_storage_account.state.id
}
