terraform {
  # 1.9 is the first release whose variable validations may refer to other variables.
  required_version = ">= 1.9, < 2.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.40 carries the Flex Consumption function app resource.
      version = ">= 4.40, < 5.0"
    }
    azapi = {
      source = "Azure/azapi"
      # Only for keyVaultReferenceIdentity, which azurerm's Flex Consumption resource cannot set yet.
      version = ">= 2.2, < 3.0"
    }
  }
}
