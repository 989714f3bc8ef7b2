resource "azurerm_public_ip" "firewall" {
  name                = "pip-afw-${var.name_suffix}"
  location            = var.location
  resource_group_name = var.resource_group_name
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = var.zones
  tags                = var.tags
}

resource "azurerm_firewall_policy" "hub" {
  #checkov:skip=CKV_AZURE_220:IDPS exists only in the Premium tier; the intrusion_detection block below switches it on in Deny mode whenever the environment's data selects Premium (prd). Standard in dev/stg is a cost decision.
  name                     = "afwp-${var.name_suffix}"
  location                 = var.location
  resource_group_name      = var.resource_group_name
  sku                      = var.firewall_sku_tier
  threat_intelligence_mode = "Deny"
  tags                     = var.tags

  # FQDN network rules (NTP, Cloudflare Tunnel) only match when clients resolve through the firewall.
  dns {
    proxy_enabled = true
  }

  dynamic "intrusion_detection" {
    for_each = var.firewall_sku_tier == "Premium" ? [1] : []
    content {
      mode = "Deny"
    }
  }
}

resource "azurerm_firewall" "hub" {
  #checkov:skip=CKV_AZURE_216:Threat intelligence is set to Deny on the attached firewall policy (threat_intelligence_mode); Azure ignores the firewall-level setting once a policy is attached.
  name                = "afw-${var.name_suffix}"
  location            = var.location
  resource_group_name = var.resource_group_name
  sku_name            = "AZFW_VNet"
  sku_tier            = var.firewall_sku_tier
  firewall_policy_id  = azurerm_firewall_policy.hub.id
  zones               = var.zones
  tags                = var.tags

  ip_configuration {
    name                 = "ipconfig"
    subnet_id            = azurerm_subnet.firewall.id
    public_ip_address_id = azurerm_public_ip.firewall.id
  }
}

resource "azurerm_monitor_diagnostic_setting" "firewall" {
  name                           = "to-log-analytics"
  target_resource_id             = azurerm_firewall.hub.id
  log_analytics_workspace_id     = var.log_analytics_workspace_id
  log_analytics_destination_type = "Dedicated"

  enabled_log {
    category_group = "allLogs"
  }
}
