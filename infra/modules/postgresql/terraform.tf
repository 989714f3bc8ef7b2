terraform {
  # 1.11: write-only arguments (azapi sensitive_body keeps the password out of the state).
  required_version = ">= 1.11, < 2.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # The release tests/infra validates every argument against (infra/README.md "Provider versions").
      version = "~> 4.55.0"
    }
    azapi = {
      source = "Azure/azapi"
      # The Key Vault secret through ARM: write-only sensitive_body with sensitive_body_version.
      version = ">= 2.5, < 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }
}
