terraform {
  required_version = ">= 1.11, < 2.0"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55.0"
    }
    azapi = {
      source  = "Azure/azapi"
      version = ">= 2.5, < 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
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

provider "azapi" {
  subscription_id = var.subscription_id
}

module "prerequisites" {
  source = "../../../../examples/prerequisites"

  resource_group_name             = "rg-example-postgresql"
  private_endpoint_network        = {}
  private_dns_zone_names          = ["privatelink.vaultcore.azure.net", "privatelink.postgres.database.azure.com"]
  log_analytics_workspace_enabled = true
}

data "azurerm_client_config" "current" {}

module "keyvault" {
  source = "../../../keyvault"

  name                       = "kv-psql-example"
  location                   = module.prerequisites.location
  resource_group_name        = module.prerequisites.resource_group_name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  purge_protection_enabled   = false
  soft_delete_retention_days = 7
  private_endpoint_subnet_id = module.prerequisites.private_endpoint_subnet_id
  private_dns_zone_id        = module.prerequisites.private_dns_zone_ids["privatelink.vaultcore.azure.net"]
  log_analytics_workspace_id = module.prerequisites.log_analytics_workspace_id
}

module "postgresql" {
  source = "../.."

  name                       = "psql-mlflow-example"
  location                   = module.prerequisites.location
  resource_group_name        = module.prerequisites.resource_group_name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "B_Standard_B1ms"
  private_endpoint_subnet_id = module.prerequisites.private_endpoint_subnet_id
  private_dns_zone_id        = module.prerequisites.private_dns_zone_ids["privatelink.postgres.database.azure.com"]
  key_vault_id               = module.keyvault.id
  password_secret_name       = "mlflow-db-password"
  log_analytics_workspace_id = module.prerequisites.log_analytics_workspace_id
}

output "fqdn" {
  description = "Host name of the example server (resolves to its private endpoint)."
  value       = module.postgresql.fqdn
}
