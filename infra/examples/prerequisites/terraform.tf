terraform {
  # 1.9 is the first release whose variable validations may refer to other variables.
  required_version = ">= 1.9, < 2.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55.0"
    }
  }
}
