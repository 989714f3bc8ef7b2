# Issue 8 item 12, as the AKS baseline does: control-plane audit logs, Azure Policy on the cluster, and
# Defender for Containers (the sensor is the cluster's microsoft_defender block in cluster.tf).

# Control-plane logs to Log Analytics (resource-specific tables). kube-audit-admin is the audit log
# without get/list (who changed what), guard is Entra ID / Azure RBAC authentication and authorization,
# cluster-autoscaler explains GPU scale decisions.
resource "azurerm_monitor_diagnostic_setting" "control_plane" {
  name                           = "control-plane-to-log-analytics"
  target_resource_id             = azurerm_kubernetes_cluster.this.id
  log_analytics_workspace_id     = var.log_analytics_workspace_id
  log_analytics_destination_type = "Dedicated"

  dynamic "enabled_log" {
    for_each = toset(["kube-audit-admin", "guard", "cluster-autoscaler"])
    content {
      category = enabled_log.value
    }
  }
}

locals {
  # Built-in definitions (stable IDs, the same in every tenant).
  policy_definitions = {
    # Kubernetes cluster pod security baseline standards for Linux-based workloads (initiative).
    pod_security_baseline = "/providers/Microsoft.Authorization/policySetDefinitions/a8640138-9b0a-4a28-b8cb-1666c838647d"
    # Kubernetes cluster pod security restricted standards for Linux-based workloads (initiative).
    pod_security_restricted = "/providers/Microsoft.Authorization/policySetDefinitions/42b8ef37-b724-4e24-bbc8-7a7708edfe00"
    # Kubernetes clusters should use internal load balancers.
    internal_load_balancers = "/providers/Microsoft.Authorization/policyDefinitions/3fc4dc25-5baf-40d8-9b05-7fe74c1bc64e"
    # Kubernetes cluster containers should only use allowed images.
    allowed_images = "/providers/Microsoft.Authorization/policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469"
  }

  # Namespaces of components that need host access by design (GPU drivers and device plugins, the CNI,
  # node feature discovery): exempt from the pod security initiatives, still covered by the others.
  policy_excluded_namespaces = distinct(concat(
    ["kube-system", "gatekeeper-system", "azure-arc", "azure-extensions-usage-system"],
    var.azure_policy.privileged_namespaces,
  ))
}

# Baseline pod security is enforced; restricted is audited (the AKS baseline's split): workloads are
# expected to meet it, and the compliance view shows those that do not.
resource "azurerm_resource_policy_assignment" "pod_security_baseline" {
  name                 = "pod-security-baseline"
  display_name         = "Pod security baseline (deny) on ${var.name}"
  resource_id          = azurerm_kubernetes_cluster.this.id
  policy_definition_id = local.policy_definitions.pod_security_baseline
  parameters = jsonencode({
    effect             = { value = "Deny" }
    excludedNamespaces = { value = local.policy_excluded_namespaces }
  })
}

resource "azurerm_resource_policy_assignment" "pod_security_restricted" {
  name                 = "pod-security-restricted"
  display_name         = "Pod security restricted (audit) on ${var.name}"
  resource_id          = azurerm_kubernetes_cluster.this.id
  policy_definition_id = local.policy_definitions.pod_security_restricted
  parameters = jsonencode({
    effect             = { value = "Audit" }
    excludedNamespaces = { value = local.policy_excluded_namespaces }
  })
}

# No public load balancer at all: the public entry is the firewall's DNAT to an internal one
# (modules/network/public_entry.tf), so the rule needs no exception.
resource "azurerm_resource_policy_assignment" "internal_load_balancers" {
  name                 = "internal-load-balancers-only"
  display_name         = "Internal load balancers only on ${var.name}"
  resource_id          = azurerm_kubernetes_cluster.this.id
  policy_definition_id = local.policy_definitions.internal_load_balancers
  parameters = jsonencode({
    effect = { value = "Deny" }
  })
}

resource "azurerm_resource_policy_assignment" "allowed_images" {
  name                 = "allowed-registries"
  display_name         = "Images from the platform registry only on ${var.name}"
  resource_id          = azurerm_kubernetes_cluster.this.id
  policy_definition_id = local.policy_definitions.allowed_images
  parameters = jsonencode({
    effect                      = { value = var.azure_policy.allowed_images_effect }
    allowedContainerImagesRegex = { value = local.allowed_images_regex }
  })
}

locals {
  # ^(acr.azurecr.io|mcr.microsoft.com)/.+$ : the platform registry, plus MCR for the images of AKS
  # add-ons and extensions (Flux) that AKS itself deploys.
  allowed_images_regex = "^(${join("|", [for r in var.azure_policy.allowed_registries : replace(r, ".", "\\.")])})/.+$"
}
