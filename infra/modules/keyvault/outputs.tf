output "id" {
  description = "Resource ID of the vault (scope of certificate and secret role assignments)."
  value       = azurerm_key_vault.this.id
}

output "name" {
  description = "Name of the vault."
  value       = azurerm_key_vault.this.name
}

output "vault_uri" {
  description = "Data plane URI, e.g. https://kv-plat-dev-uaen.vault.azure.net/."
  value       = azurerm_key_vault.this.vault_uri
}
