# The three infra/envs folders are the real callers of this module; this example plans the dev
# environment's platform.yaml against a sandbox subscription, with local state.
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

variable "tenant_id" {
  type        = string
  description = "Required. Entra ID tenant of the sandbox subscription."
}

locals {
  platform = merge(
    yamldecode(file("${path.module}/../../../../envs/dev-uaenorth/platform.yaml")),
    { subscription_id = var.subscription_id, tenant_id = var.tenant_id },
  )
}

provider "azurerm" {
  subscription_id     = var.subscription_id
  tenant_id           = var.tenant_id
  storage_use_azuread = true
  features {}
}

provider "azapi" {
  subscription_id = var.subscription_id
  tenant_id       = var.tenant_id
}

module "platform" {
  source = "../.."

  platform = local.platform
}

output "cluster" {
  description = "The example cluster."
  value       = module.platform.cluster
}
