resource "azurerm_private_endpoint" "this" {
  name                = "pe-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "postgresqlServer"
    private_connection_resource_id = azurerm_postgresql_flexible_server.this.id
    subresource_names              = ["postgresqlServer"]
    is_manual_connection           = false
  }

  # <name>.postgres.database.azure.com resolves to the endpoint through privatelink.postgres.database.azure.com.
  private_dns_zone_group {
    name                 = "postgresqlServer"
    private_dns_zone_ids = [var.private_dns_zone_id]
  }
}
