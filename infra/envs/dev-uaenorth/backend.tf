# Remote state of dev-uaenorth: one key per environment in the state account of its subscription,
# created by infra/bootstrap. Locking is the azurerm backend's blob lease. A backend block cannot
# read platform.yaml, so tests/infra checks that these values match its `state` section.
terraform {
  backend "azurerm" {
    subscription_id      = "00000000-0000-0000-0000-0000000000d1"
    resource_group_name  = "rg-tfstate-dev-uaenorth"
    storage_account_name = "sttfstatedevuaen"
    container_name       = "tfstate"
    key                  = "dev-uaenorth.tfstate"
    use_azuread_auth     = true
  }
}
