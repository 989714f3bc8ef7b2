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


module "state" {
  source = "../.."

  resource_group_name  = "rg-tfstate-example"
  location             = "uaenorth"
  storage_account_name = "sttfstateexample"
  allowed_ip_ranges    = ["203.0.113.0/24"]
}

output "backend" {
  description = "Values for a backend \"azurerm\" block."
  value = {
    resource_group_name  = module.state.resource_group_name
    storage_account_name = module.state.storage_account_name
    container_name       = module.state.container_name
  }
}
