terraform {
  required_version = ">= 1.11, < 2.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
    azapi = {
      source  = "Azure/azapi"
      version = ">= 2.5, < 3.0"
    }
  }
}

provider "azurerm" {
  subscription_id = local.platform.subscription_id
  tenant_id       = local.platform.tenant_id
  # Storage accounts have shared keys disabled: data-plane calls use Entra ID.
  storage_use_azuread = true

  features {
    key_vault {
      # Purging would defeat soft delete; a deleted vault is recovered on the next apply instead.
      purge_soft_delete_on_destroy    = false
      recover_soft_deleted_key_vaults = true
    }
    resource_group {
      prevent_deletion_if_contains_resources = true
    }
  }
}

provider "azapi" {
  subscription_id = local.platform.subscription_id
  tenant_id       = local.platform.tenant_id
}
