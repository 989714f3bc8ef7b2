terraform {
  required_version = ">= 1.9, < 2.0"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.40, < 5.0"
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

resource "azurerm_resource_group" "example" {
  name     = "rg-example-automation"
  location = "uaenorth"
}

module "monitoring" {
  source = "../../../monitoring"

  name_suffix         = "platform-example"
  location            = azurerm_resource_group.example.location
  resource_group_name = azurerm_resource_group.example.name
  alert_emails        = ["platform-oncall@example.com"]
}

module "network" {
  source = "../../../network"

  name_suffix         = "platform-example"
  location            = azurerm_resource_group.example.location
  resource_group_name = azurerm_resource_group.example.name
  hub_address_space   = "10.90.0.0/22"
  spoke_address_space = "10.91.0.0/16"
  subnets = {
    system_nodes      = "10.91.0.0/22"
    gpu_nodes         = "10.91.4.0/22"
    private_endpoints = "10.91.8.0/24"
    ingress_internal  = "10.91.9.0/24"
    functions         = "10.91.10.0/24"
  }
  automation_fqdns           = ["slack.com"]
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
}

module "keyvault" {
  source = "../../../keyvault"

  name                       = "kv-plat-example"
  location                   = azurerm_resource_group.example.location
  resource_group_name        = azurerm_resource_group.example.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  purge_protection_enabled   = false
  soft_delete_retention_days = 7
  private_endpoint_subnet_id = module.network.subnet_ids.private_endpoints
  private_dns_zone_id        = module.network.private_dns_zone_ids["privatelink.vaultcore.azure.net"]
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
}

module "storage" {
  source = "../../../storage"

  account_name               = "stplatexample"
  location                   = azurerm_resource_group.example.location
  resource_group_name        = azurerm_resource_group.example.name
  replication_type           = "LRS"
  inference_queues           = ["inference-h100"]
  private_endpoint_subnet_id = module.network.subnet_ids.private_endpoints
  private_dns_zone_ids = {
    blob  = module.network.private_dns_zone_ids["privatelink.blob.core.windows.net"]
    queue = module.network.private_dns_zone_ids["privatelink.queue.core.windows.net"]
    table = module.network.private_dns_zone_ids["privatelink.table.core.windows.net"]
  }
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
}

module "automation" {
  source = "../.."

  name                = "func-platform-example"
  environment         = "dev-uaenorth"
  location            = azurerm_resource_group.example.location
  resource_group_name = azurerm_resource_group.example.name
  subnet_id           = module.network.subnet_ids.functions
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
    id                = module.monitoring.application_insights_id
    connection_string = module.monitoring.application_insights_connection_string
  }
  # No app code deployed in the example, so no endpoint for Event Grid to validate.
  certificate_events_enabled = false
}

output "app_setting_names" {
  description = "App settings managed by Terraform."
  value       = module.automation.app_setting_names
}
