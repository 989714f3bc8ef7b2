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

  resource_group_name      = "rg-example-acr"
  private_endpoint_network = {}
  private_dns_zone_names   = ["privatelink.azurecr.io"]
}

module "acr" {
  source = "../.."

  name                       = "acrplatexample"
  location                   = module.prerequisites.location
  resource_group_name        = module.prerequisites.resource_group_name
  private_endpoint_subnet_id = module.prerequisites.private_endpoint_subnet_id
  private_dns_zone_id        = module.prerequisites.private_dns_zone_ids["privatelink.azurecr.io"]
}

output "login_server" {
  description = "Login server of the example registry."
  value       = module.acr.login_server
}
