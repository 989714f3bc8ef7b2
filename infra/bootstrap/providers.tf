terraform {
  required_version = ">= 1.9, < 2.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55.0"
    }
  }
}

provider "azurerm" {
  subscription_id     = local.platform.subscription_id
  tenant_id           = local.platform.tenant_id
  storage_use_azuread = true
  features {}
}
