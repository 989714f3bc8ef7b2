terraform {
  # 1.9 is the first release whose variable validations may refer to other variables.
  required_version = ">= 1.9, < 2.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # The release tests/infra validates every argument against (infra/README.md "Provider versions").
      version = "~> 4.55.0"
    }
  }
}
