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

  resource_group_name             = "rg-example-storage"
  private_endpoint_network        = {}
  private_dns_zone_names          = ["privatelink.blob.core.windows.net", "privatelink.queue.core.windows.net", "privatelink.table.core.windows.net"]
  log_analytics_workspace_enabled = true
}

module "storage" {
  source = "../.."

  account_name               = "stplatexample"
  location                   = module.prerequisites.location
  resource_group_name        = module.prerequisites.resource_group_name
  replication_type           = "LRS"
  inference_queues           = ["inference-h100", "inference-mi300x"]
  private_endpoint_subnet_id = module.prerequisites.private_endpoint_subnet_id
  private_dns_zone_ids = {
    blob  = module.prerequisites.private_dns_zone_ids["privatelink.blob.core.windows.net"]
    queue = module.prerequisites.private_dns_zone_ids["privatelink.queue.core.windows.net"]
    table = module.prerequisites.private_dns_zone_ids["privatelink.table.core.windows.net"]
  }
  log_analytics_workspace_id = module.prerequisites.log_analytics_workspace_id
}

output "queue_ids" {
  description = "Resource Manager IDs of the example queues."
  value       = module.storage.queue_ids
}
