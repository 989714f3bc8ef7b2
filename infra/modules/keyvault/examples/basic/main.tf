terraform {
  required_version = ">= 1.9, < 2.0"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55.0"
    }
  }
}

variable "subscription_id" {
  type        = string
  description = "Required. Sandbox subscription to run the example in."
}

provider "azurerm" {
  subscription_id     = var.subscription_id
  storage_use_azuread = true
  features {}
}

module "prerequisites" {
  source = "../../../../examples/prerequisites"

  resource_group_name             = "rg-example-keyvault"
  private_endpoint_network        = {}
  private_dns_zone_names          = ["privatelink.vaultcore.azure.net"]
  log_analytics_workspace_enabled = true
}

data "azurerm_client_config" "current" {}

module "keyvault" {
  source = "../.."

  name                       = "kv-plat-example"
  location                   = module.prerequisites.location
  resource_group_name        = module.prerequisites.resource_group_name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  purge_protection_enabled   = false
  soft_delete_retention_days = 7
  private_endpoint_subnet_id = module.prerequisites.private_endpoint_subnet_id
  private_dns_zone_id        = module.prerequisites.private_dns_zone_ids["privatelink.vaultcore.azure.net"]
  log_analytics_workspace_id = module.prerequisites.log_analytics_workspace_id
}

output "vault_uri" {
  description = "URI of the example vault."
  value       = module.keyvault.vault_uri
}
