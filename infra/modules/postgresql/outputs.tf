output "id" {
  description = "Resource ID of the flexible server."
  value       = azurerm_postgresql_flexible_server.this.id
}

output "fqdn" {
  description = "Host name clients connect to (<name>.postgres.database.azure.com, resolved to the private endpoint)."
  value       = azurerm_postgresql_flexible_server.this.fqdn
}

output "database_name" {
  description = "Name of the application database."
  value       = azurerm_postgresql_flexible_server_database.this.name
}

output "administrator_login" {
  description = "Login of the administrator (the password is only in Key Vault, secret `password_secret_name`)."
  value       = azurerm_postgresql_flexible_server.this.administrator_login
}

output "password_secret_name" {
  description = "Name of the Key Vault secret that holds the administrator password (not the password)."
  value       = azapi_resource.password_secret.name
}
