# Remote state of prd-uaenorth: one key per environment in the state account of its subscription,
# created by infra/bootstrap. Locking is the azurerm backend's blob lease. A backend block cannot
# read platform.yaml, so tests/infra checks that these values match its `state` section.
terraform {
  backend "azurerm" {
    subscription_id      = "00000000-0000-0000-0000-0000000000d3"
    resource_group_name  = "rg-tfstate-prd-uaenorth"
    storage_account_name = "sttfstateprduaen"
    container_name       = "tfstate"
    key                  = "prd-uaenorth.tfstate"
    use_azuread_auth     = true
  }
}
