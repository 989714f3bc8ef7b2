resource "azurerm_kubernetes_cluster_node_pool" "cpu" {
  name                        = "cpu"
  kubernetes_cluster_id       = azurerm_kubernetes_cluster.this.id
  mode                        = "User"
  vm_size                     = var.cpu_pool.vm_size
  vnet_subnet_id              = var.subnet_ids.system_nodes
  zones                       = var.zones
  auto_scaling_enabled        = true
  min_count                   = var.cpu_pool.min_count
  max_count                   = var.cpu_pool.max_count
  max_pods                    = 110
  os_sku                      = "AzureLinux"
  os_disk_type                = "Ephemeral"
  os_disk_size_gb             = var.cpu_pool.os_disk_size_gb
  host_encryption_enabled     = true
  orchestrator_version        = var.kubernetes_version
  temporary_name_for_rotation = "cputmp"
  node_labels                 = { "${var.node_label_prefix}/workload" = "general" }
  tags                        = var.tags

  upgrade_settings {
    max_surge                = "33%"
    drain_timeout_in_minutes = 30
  }

  lifecycle {
    # The autoscaler owns node_count and the automation app raises min_count ahead of demand (never
    # below platform.yaml's min_count, which it reads as its floor): a plan must not undo either.
    ignore_changes = [node_count, min_count]
  }
}

resource "azurerm_kubernetes_cluster_node_pool" "gpu" {
  for_each = local.gpu_pools

  name                  = each.key
  kubernetes_cluster_id = azurerm_kubernetes_cluster.this.id
  mode                  = "User"
  vm_size               = each.value.vm_size
  vnet_subnet_id        = var.subnet_ids.gpu_nodes
  zones                 = coalesce(each.value.zones, var.zones)
  # The automation app moves min_count/max_count within what platform.yaml allows; the
  # autoscaler owns the node count.
  auto_scaling_enabled = true
  min_count            = each.value.min_count
  max_count            = each.value.max_count
  max_pods             = 110
  # The GPU operators support Ubuntu node images.
  os_sku          = "Ubuntu"
  os_disk_type    = "Managed"
  os_disk_size_gb = each.value.os_disk_size_gb
  # Stopped VMs come back faster than new ones are created: GPU scale-up is minutes, not seconds.
  scale_down_mode             = "Deallocate"
  host_encryption_enabled     = true
  orchestrator_version        = var.kubernetes_version
  temporary_name_for_rotation = "${each.key}tmp"

  node_taints = [local.gpu_taints[each.value.vendor]]
  node_labels = local.gpu_labels[each.key]

  # NVIDIA: the GPU operator installs and upgrades the driver, so AKS must not. AMD pools get
  # no AKS driver in any case; the AMD GPU operator installs it.
  gpu_driver   = each.value.vendor == "nvidia" ? "None" : null
  gpu_instance = each.value.mig_profile

  tags = merge(var.tags, { "gpu-vendor" = each.value.vendor })

  upgrade_settings {
    # One extra GPU node at a time: GPU quota is the scarce resource.
    max_surge                = "1"
    drain_timeout_in_minutes = 60
  }

  lifecycle {
    ignore_changes = [node_count]
  }
}
