terraform {
  required_version = ">= 1.9, < 2.0"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55.0"
    }
    azapi = {
      source  = "Azure/azapi"
      version = ">= 2.2, < 3.0"
    }
  }
}

variable "subscription_id" {
  type        = string
  description = "Required. Sandbox subscription to run the example in."
}

variable "cluster_id" {
  type        = string
  description = "Required. An existing AKS cluster whose node pools the example app may scale."
}

provider "azurerm" {
  subscription_id     = var.subscription_id
  storage_use_azuread = true
  features {}
}

provider "azapi" {
  subscription_id = var.subscription_id
}

data "azurerm_client_config" "current" {}

# The real hub and spoke (firewall egress, routes, every subnet) and the monitoring workspaces.
module "prerequisites" {
  source = "../../../../examples/prerequisites"

  resource_group_name = "rg-example-automation"
  hub_and_spoke       = { automation_fqdns = ["slack.com"] }
}

module "keyvault" {
  source = "../../../keyvault"

  name                       = "kv-plat-example"
  location                   = module.prerequisites.location
  resource_group_name        = module.prerequisites.resource_group_name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  purge_protection_enabled   = false
  soft_delete_retention_days = 7
  private_endpoint_subnet_id = module.prerequisites.network.subnet_ids.private_endpoints
  private_dns_zone_id        = module.prerequisites.network.private_dns_zone_ids["privatelink.vaultcore.azure.net"]
  log_analytics_workspace_id = module.prerequisites.monitoring.log_analytics_workspace_id
}

module "storage" {
  source = "../../../storage"

  account_name               = "stplatexample"
  location                   = module.prerequisites.location
  resource_group_name        = module.prerequisites.resource_group_name
  replication_type           = "LRS"
  inference_queues           = ["inference-h100"]
  private_endpoint_subnet_id = module.prerequisites.network.subnet_ids.private_endpoints
  private_dns_zone_ids = {
    blob  = module.prerequisites.network.private_dns_zone_ids["privatelink.blob.core.windows.net"]
    queue = module.prerequisites.network.private_dns_zone_ids["privatelink.queue.core.windows.net"]
    table = module.prerequisites.network.private_dns_zone_ids["privatelink.table.core.windows.net"]
  }
  log_analytics_workspace_id = module.prerequisites.monitoring.log_analytics_workspace_id
}

module "automation" {
  source = "../.."

  name                = "func-platform-example"
  environment         = "dev-uaenorth"
  location            = module.prerequisites.location
  resource_group_name = module.prerequisites.resource_group_name
  subnet_id           = module.prerequisites.network.subnet_ids.functions
  cluster_id          = var.cluster_id
  key_vault = {
    id   = module.keyvault.id
    name = module.keyvault.name
  }
  storage = {
    id                   = module.storage.id
    name                 = module.storage.name
    blob_endpoint        = module.storage.primary_blob_endpoint
    deployment_container = "app-package"
    deadletter_container = "eventgrid-deadletter"
    queue_ids            = module.storage.queue_ids
    table_ids            = module.storage.table_ids
  }
  application_insights = {
    id                = module.prerequisites.monitoring.application_insights_id
    connection_string = module.prerequisites.application_insights_connection_string
  }
  # No app code deployed in the example, so no endpoint for Event Grid to validate.
  certificate_events_enabled = false
}

output "app_setting_names" {
  description = "App settings managed by Terraform."
  value       = module.automation.app_setting_names
}
