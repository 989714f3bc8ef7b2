terraform {
  required_version = ">= 1.9, < 2.0"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.40, < 5.0"
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

resource "azurerm_resource_group" "example" {
  name     = "rg-example-network"
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
  source = "../.."

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
  git_fqdns                  = ["gitlab.example.com"]
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
}

output "firewall_private_ip" {
  description = "Next hop of the spoke's default route."
  value       = module.network.firewall_private_ip
}
