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
  name     = "rg-example-monitoring"
  location = "uaenorth"
}

module "monitoring" {
  source = "../.."

  name_suffix         = "platform-example"
  location            = azurerm_resource_group.example.location
  resource_group_name = azurerm_resource_group.example.name
  alert_emails        = ["platform-oncall@example.com"]
}

output "log_analytics_workspace_id" {
  description = "Workspace of the example."
  value       = module.monitoring.log_analytics_workspace_id
}
