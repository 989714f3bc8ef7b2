output "id" {
  description = "Resource ID of the registry."
  value       = azurerm_container_registry.this.id
}

output "name" {
  description = "Name of the registry."
  value       = azurerm_container_registry.this.name
}

output "login_server" {
  description = "Login server, e.g. acrplatdevuaen.azurecr.io: the only registry model-serving images may come from."
  value       = azurerm_container_registry.this.login_server
}
