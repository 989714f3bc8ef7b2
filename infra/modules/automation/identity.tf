# A user-assigned identity exists before the app, so every role below is granted before the app
# first starts and resolves its Key Vault references.
resource "azurerm_user_assigned_identity" "app" {
  name                = "id-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags
}
