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

  resource_group_name = "rg-example-monitoring"
}

module "monitoring" {
  source = "../.."

  name_suffix         = "platform-example"
  location            = module.prerequisites.location
  resource_group_name = module.prerequisites.resource_group_name
  alert_emails        = ["platform-oncall@example.com"]
}

output "log_analytics_workspace_id" {
  description = "Workspace of the example."
  value       = module.monitoring.log_analytics_workspace_id
}
