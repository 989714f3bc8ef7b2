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

# The firewall only needs a workspace for its logs, so a small one rather than the monitoring module.
module "prerequisites" {
  source = "../../../../examples/prerequisites"

  resource_group_name             = "rg-example-network"
  log_analytics_workspace_enabled = true
}

module "network" {
  source = "../.."

  name_suffix         = "platform-example"
  location            = module.prerequisites.location
  resource_group_name = module.prerequisites.resource_group_name
  # hub 10.90.0.0/22, spoke 10.91.0.0/16 with one subnet per role: the same plan the aks and
  # automation examples get from prerequisites' hub_and_spoke.
  hub_address_space          = module.prerequisites.hub_address_space
  spoke_address_space        = module.prerequisites.spoke_address_space
  subnets                    = module.prerequisites.spoke_subnets
  git_fqdns                  = ["gitlab.example.com"]
  log_analytics_workspace_id = module.prerequisites.log_analytics_workspace_id
}

output "firewall_private_ip" {
  description = "Next hop of the spoke's default route."
  value       = module.network.firewall_private_ip
}
