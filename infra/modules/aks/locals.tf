locals {
  # Taint per GPU vendor: only pods that tolerate it (inference workloads, the GPU operators)
  # land on GPU nodes. The keys match the extended resources the device plugins advertise.
  gpu_taints = {
    nvidia = "nvidia.com/gpu=present:NoSchedule"
    amd    = "amd.com/gpu=present:NoSchedule"
  }

  gpu_pools = { for p in var.gpu_pools : p.name => p }

  gpu_labels = {
    for name, p in local.gpu_pools : name => merge(
      {
        "${var.node_label_prefix}/gpu-vendor"    = p.vendor
        "${var.node_label_prefix}/gpu-pool"      = name
        "${var.node_label_prefix}/gpus-per-node" = tostring(p.gpus_per_node)
        "${var.node_label_prefix}/workload"      = "inference"
      },
      p.inference_queue == null ? {} : { "${var.node_label_prefix}/inference-queue" = p.inference_queue },
      p.mig_profile == null ? {} : { "${var.node_label_prefix}/mig-profile" = p.mig_profile },
    )
  }

  # Post-build substitution of the root Kustomization: workload identity client IDs by Flux variable.
  flux_substitute = { for name, wi in var.workload_identities : wi.flux_variable => wi.client_id }

  authorized_ip_ranges = var.private_cluster_enabled ? [] : distinct(concat(
    var.api_server_authorized_ip_ranges,
    var.firewall_public_ip == null ? [] : ["${var.firewall_public_ip}/32"],
  ))
}
