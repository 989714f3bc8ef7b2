terraform {
  # 1.11: write-only arguments (modules/postgresql writes its password to Key Vault write-only).
  required_version = ">= 1.11, < 2.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # The release tests/infra validates every argument against (infra/README.md "Provider versions").
      version = "~> 4.55.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
    azapi = {
      source = "Azure/azapi"
      # Passed through to automation, storage and postgresql (write-only sensitive_body: 2.5).
      version = ">= 2.5, < 3.0"
    }
  }
}
