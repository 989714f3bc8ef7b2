"""Values in gitops/ that restate infra/envs/<env>/platform.yaml (Kustomize cannot read it) must match it."""

from __future__ import annotations

import ipaddress
import re

import pytest
import yaml

from .conftest import (
    ENVS,
    GITOPS,
    INFRA_MODULES,
    LAYERS,
    SUBSTITUTION_KEYS,
    containers,
    find,
    hcl,
    name_of,
    platform,
    pod_specs,
    tf_locals,
    workload_identities,
)

# platform.yaml gpu_pools[].mig_profile (AKS naming) -> MIG manager layout in nvidia-gpu-operator/mig-config.yaml
MIG_LAYOUTS = {None: "all-disabled", "MIG1g": "all-1g.12gb", "MIG2g": "all-2g.24gb", "MIG3g": "all-3g.47gb",
               "MIG4g": "all-4g.47gb", "MIG7g": "all-7g.94gb"}


def layer(objects, name, env):
    key = (name, env)
    if key not in objects:
        pytest.skip(f"{name}/{env} does not build (see test_every_overlay_builds)")
    return objects[key]


def one(objs, kind, name):
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def gpu_pool(env, name):
    return next(p for p in platform(env)["gpu_pools"] if p["name"] == name)


@pytest.mark.parametrize("env", ENVS)
def test_cluster_entry_point_is_the_gitops_path_of_platform_yaml(env):
    facts = platform(env)["gitlab"]
    assert (GITOPS.parent / facts["gitops_path"]).resolve() == (GITOPS / "clusters" / env).resolve()
    assert facts["project"] == "platform/platform-core"  # gitops/README.md documents this source


@pytest.mark.parametrize("env", ENVS)
def test_cluster_secret_store_reads_the_environment_key_vault_with_workload_identity(objects, env):
    store = one(layer(objects, "infrastructure/configs", env), "ClusterSecretStore", "azure-key-vault")
    azurekv = store["spec"]["provider"]["azurekv"]
    assert azurekv["vaultUrl"].rstrip("/") == f"https://{platform(env)['key_vault']['name']}.vault.azure.net"
    assert azurekv["authType"] == "WorkloadIdentity"
    assert azurekv["serviceAccountRef"] == {"name": "external-secrets", "namespace": "external-secrets"}


@pytest.mark.parametrize("env", ENVS)
def test_synced_secrets_are_the_namespaces_external_secrets_fills(objects, env):
    # Certificate rotation revokes the old certificate only once every synced_secrets entry holds the new
    # serial: an entry no ClusterExternalSecret fills would hold revocation forever ("(missing)").
    label = "platform.example.com/origin-certificate"
    labelled = sorted({ns["metadata"]["name"] for (_, e), objs in objects.items() if e == env
                       for ns in find(objs, "Namespace") if (ns["metadata"].get("labels") or {}).get(label) == "true"})
    assert labelled, "no namespace receives the origin certificate"
    for cert in platform(env)["certificates"]:
        assert sorted(cert["synced_secrets"]) == [f"{ns}/{cert['name']}" for ns in labelled], cert["name"]


@pytest.mark.parametrize("env", ENVS)
def test_every_origin_certificate_becomes_a_tls_secret_of_the_same_name(objects, env):
    objs = layer(objects, "infrastructure/configs", env)
    made = {}
    for ces in find(objs, "ClusterExternalSecret"):
        spec = ces["spec"]["externalSecretSpec"]
        assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "azure-key-vault"}
        assert spec["target"]["template"]["type"] == "kubernetes.io/tls"
        keys = [d["remoteRef"]["key"] for d in spec["data"]]
        made[spec["target"]["name"]] = keys
        assert ces["spec"]["externalSecretName"] == spec["target"]["name"]
    wanted = {c["name"]: [f"secret/{c['name']}"] for c in platform(env)["certificates"]}
    assert made == wanted


@pytest.mark.parametrize("env", ENVS)
def test_only_the_gateways_namespace_receives_the_origin_certificate(objects, env):
    # The origin certificate is served by the public Gateway only; app namespaces no longer need a copy.
    objs = [o for name in LAYERS if name != "clusters" for o in layer(objects, name, env)]
    labelled = {o["metadata"]["name"] for o in find(objs, "Namespace")
                if o["metadata"].get("labels", {}).get("platform.example.com/origin-certificate") == "true"}
    assert labelled == {"gateways"}


@pytest.mark.parametrize("env", ENVS)
def test_route_hosts_are_names_of_the_environment_certificate(objects, env):
    cert_hosts = [h for c in platform(env)["certificates"] for h in c["hostnames"]]
    apex = cert_hosts[0]
    objs = layer(objects, "apps", env) + layer(objects, "infrastructure/configs", env)
    hosts = [h for kind in ("HTTPRoute", "AIGatewayRoute") for r in find(objs, kind) for h in r["spec"]["hostnames"]]
    assert len(hosts) == 4  # llm, mlflow, grafana, opencost (internal, for the automation app)
    assert all(h.endswith("." + apex) and h.count(".") == apex.count(".") + 1 for h in hosts), hosts


def gateway_ips(env: str) -> dict | None:
    return (platform(env)["network"].get("gateways") or None)


@pytest.mark.parametrize("env", ENVS)
def test_gateway_load_balancers_sit_in_the_ingress_subnet_at_the_platform_ips(objects, env):
    objs = layer(objects, "infrastructure/configs", env)
    proxies = {p["metadata"]["name"]: p["spec"]["provider"]["kubernetes"]["envoyService"]
               for p in find(objs, "EnvoyProxy")}
    assert set(proxies) == {"public", "internal"}
    for service in proxies.values():
        annotations = service["annotations"]
        assert annotations["service.beta.kubernetes.io/azure-load-balancer-internal"] == "true"
        # modules/network names the ingress_internal subnet snet-ingress-internal
        assert annotations["service.beta.kubernetes.io/azure-load-balancer-internal-subnet"] == "snet-ingress-internal"
        assert ipaddress.ip_address(annotations["service.beta.kubernetes.io/azure-load-balancer-ipv4"]) in \
            ipaddress.ip_network(platform(env)["network"]["subnets"]["ingress_internal"])
    # The public entry is the hub firewall's DNAT (SNAT to the firewall's private address): that is the only
    # source the public load balancer accepts; Cloudflare's ranges are enforced at the DNAT rule (infra).
    assert proxies["public"]["loadBalancerSourceRanges"] == [platform(env)["network"]["hub_address_space"]]
    ips = gateway_ips(env)
    if ips is None:
        pytest.skip("platform.yaml has no network.gateways yet (infra-8 adds the static IPs)")
    ipv4 = "service.beta.kubernetes.io/azure-load-balancer-ipv4"
    assert proxies["public"]["annotations"][ipv4] == ips["public_ip"]
    assert proxies["internal"]["annotations"][ipv4] == ips["internal_ip"]


def test_cloudflare_ranges_are_one_file_read_by_infra():
    # The DNAT rule (infra) admits exactly infra/cloudflare-ip-ranges.yaml; gitops restates no range.
    ranges = yaml.safe_load((GITOPS.parent / "infra" / "cloudflare-ip-ranges.yaml").read_text())
    text = "\n".join(p.read_text() for p in GITOPS.rglob("*.yaml"))
    assert not [r for r in ranges["ipv4"] + ranges["ipv6"] if r in text], "Cloudflare ranges restated in gitops/"


@pytest.mark.parametrize("env", ENVS)
def test_vllm_reads_model_weights_from_the_models_container_of_the_platform_account(objects, env):
    objs = layer(objects, "apps", env)
    (pv,) = find(objs, "PersistentVolume")
    attrs = pv["spec"]["csi"]["volumeAttributes"]
    assert pv["spec"]["csi"]["driver"] == "blob.csi.azure.com"
    assert attrs["storageAccount"] == platform(env)["storage"]["account_name"]
    assert attrs["resourceGroup"] == platform(env)["resource_group"]
    assert attrs["containerName"] == "models"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["spec"]["storageClassName"] == ""
    pvc = one(objs, "PersistentVolumeClaim", "models")
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"] and pvc["spec"]["storageClassName"] == ""
    assert pv["spec"]["claimRef"] == {"namespace": pvc["metadata"]["namespace"], "name": "models"}
    platform_locals = tf_locals("platform")
    if "models_container" in platform_locals:  # infra-8 adds the container
        assert platform_locals["models_container"] == attrs["containerName"]


@pytest.mark.parametrize("env", ENVS)
def test_registry_rule_and_app_images_use_the_environment_acr(objects, env):
    registry = f"{platform(env)['acr']['name']}.azurecr.io"
    policy = one(layer(objects, "infrastructure/configs", env), "ValidatingPolicy", "platform-registry-only")
    (variable,) = [v for v in policy["spec"]["variables"] if v["name"] == "registry"]
    assert variable["expression"] == f"'{registry}/'"
    images = [c["image"] for _, spec in pod_specs(layer(objects, "apps", env)) for c in containers(spec)]
    assert images and all(i.startswith(registry + "/") for i in images), images
    amd = one(layer(objects, "infrastructure/controllers", env), "HelmRelease", "amd-gpu-operator")
    assert amd["spec"]["values"]["deviceConfig"]["spec"]["driver"]["image"].startswith(registry + "/")


@pytest.mark.parametrize("env", ENVS)
def test_vllm_scales_on_the_h100_inference_queue_of_the_platform_storage_account(objects, env):
    objs = layer(objects, "apps", env)
    so = one(objs, "ScaledObject", "vllm-h100")
    (trigger,) = so["spec"]["triggers"]
    pool = gpu_pool(env, "h100")
    assert trigger["type"] == "azure-queue"
    assert trigger["metadata"]["queueName"] == pool["inference_queue"]
    assert trigger["metadata"]["accountName"] == platform(env)["storage"]["account_name"]
    assert int(trigger["metadata"]["queueLength"]) == pool["requests_per_gpu"]
    assert so["spec"]["maxReplicaCount"] == pool["max_count"] * pool["gpus_per_node"]
    auth = one(objs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["spec"]["podIdentity"]["provider"] == "azure-workload"
    target = one(objs, "Deployment", so["spec"]["scaleTargetRef"]["name"])
    assert "replicas" not in target["spec"], "gpu_scaling (or KEDA where it only decides) owns replicas; Flux must not"


@pytest.mark.parametrize("env", ENVS)
def test_gpu_workloads_select_pools_that_exist_with_their_vendor(objects, env):
    pools = {p["name"]: p for p in platform(env)["gpu_pools"]}
    selected = []
    for _, spec in pod_specs(layer(objects, "apps", env)):
        sel = spec.get("nodeSelector") or {}
        if "kubernetes.azure.com/agentpool" in sel and sel["kubernetes.azure.com/agentpool"] in ("h100", "mi300x"):
            pool = pools[sel["kubernetes.azure.com/agentpool"]]
            assert sel["platform.example.com/gpu-vendor"] == pool["vendor"]
            selected.append(pool["name"])
    assert "h100" in selected


@pytest.mark.parametrize("env", ENVS)
def test_mig_layout_matches_the_h100_pool_mig_profile(objects, env):
    objs = layer(objects, "infrastructure/controllers", env)
    values = one(objs, "HelmRelease", "gpu-operator")["spec"]["values"]
    expected = MIG_LAYOUTS[gpu_pool(env, "h100")["mig_profile"]]
    assert values["migManager"]["config"]["default"] == expected
    config = one(objs, "ConfigMap", values["migManager"]["config"]["name"])
    assert expected in yaml.safe_load(config["data"]["config.yaml"])["mig-configs"]


@pytest.mark.parametrize("env", ENVS)
def test_mlflow_stores_artifacts_in_the_platform_storage_account(objects, env):
    deploy = one(layer(objects, "apps", env), "Deployment", "mlflow")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    account = platform(env)["storage"]["account_name"]
    assert f"--artifacts-destination=wasbs://mlflow@{account}.blob.core.windows.net/artifacts" in args


@pytest.mark.parametrize("env", ENVS)
def test_gpu_operators_tolerate_the_pool_taints(objects, env):
    objs = layer(objects, "infrastructure/controllers", env)
    nvidia = one(objs, "HelmRelease", "gpu-operator")["spec"]["values"]["daemonsets"]["tolerations"]
    amd = one(objs, "HelmRelease", "amd-gpu-operator")["spec"]["values"]["deviceConfig"]["spec"]
    taint = {"operator": "Equal", "value": "present", "effect": "NoSchedule"}
    assert {"key": "nvidia.com/gpu", **taint} in nvidia
    # The DeviceConfig has no common toleration: each operand takes its own (a commonConfig.tolerations value
    # is dropped by the chart's template and unknown to its CRD).
    amd_operands = {"driver": amd["driver"].get("tolerations", []),
                    "device plugin": amd["devicePlugin"].get("devicePluginTolerations", []),
                    "node labeller": amd["devicePlugin"].get("nodeLabellerTolerations", []),
                    "metrics exporter": amd["metricsExporter"].get("tolerations", [])}
    assert not [op for op, tolerations in amd_operands.items() if {"key": "amd.com/gpu", **taint} not in tolerations]
    assert "tolerations" not in amd.get("commonConfig", {})
    assert amd["selector"] == {"kubernetes.azure.com/agentpool": "mi300x"}
    assert {p["name"]: p["vendor"] for p in platform(env)["gpu_pools"]} == {"h100": "nvidia", "mi300x": "amd"}


# ---------------------------------------------------------------- node labels and taints set by infra/modules/aks

# Label domains Kubernetes, AKS and the GPU operators set themselves; every other node label key gitops selects on
# must be one infra puts on the pools, under cluster.node_label_prefix.
SYSTEM_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "kubernetes.azure.com", "nvidia.com", "amd.com")
AGENTPOOL = "kubernetes.azure.com/agentpool"


def infra_node_labels() -> set[str]:
    """Label names (after `<prefix>/`) that infra/modules/aks puts on the node pools."""
    text = "\n".join(p.read_text() for p in sorted((INFRA_MODULES / "aks").glob("*.tf")))
    return set(re.findall(r"\$\{var\.node_label_prefix\}/([a-z0-9.-]+)", text))


def _walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, path)


def node_label_uses(objs: list[dict]) -> list[tuple[str, str, str | None]]:
    """(where, label key, value or None) for every node label gitops selects on: nodeSelector maps and node
    affinity terms anywhere (pod specs and Helm values), the AMD operator's node selector, Kyverno rules reading
    nodeSelector, and the node labels kube-state-metrics exports."""
    uses = []
    for o in objs:
        where = name_of(o)
        for path, node in _walk(o):
            key = path[-1] if path else None
            if key == "nodeSelector" and isinstance(node, dict):
                uses += [(where, k, str(v)) for k, v in node.items()]
            elif key in ("nodeSelectorTerms", "preference") and node:
                terms = node if isinstance(node, list) else [node]
                for term in terms:
                    for expr in term.get("matchExpressions") or []:
                        for v in expr.get("values") or [None]:
                            uses.append((where, expr["key"], v))
            elif path[-3:] == ("deviceConfig", "spec", "selector") and isinstance(node, dict):
                uses += [(where, k, str(v)) for k, v in node.items()]
            elif key == "metricLabelsAllowlist" and isinstance(node, list):
                for entry in node:
                    resource, _, labels = entry.partition("=")
                    if resource == "nodes":
                        uses += [(where, k.strip(), None) for k in labels.strip("[]").split(",") if k.strip()]
        if o.get("kind") == "ValidatingPolicy":
            uses += [(where, k, None) for k in re.findall(r"nodeSelector\.orValue\(\{\}\)\[\?'([^']+)'\]",
                                                           yaml.safe_dump(o, width=10**6))]
    return uses


def test_infra_labels_the_pools_the_way_gitops_expects():
    assert {"gpu-vendor", "gpu-pool", "workload"} <= infra_node_labels()
    aks = hcl(INFRA_MODULES / "aks" / "variables.tf")
    prefix_var = next(v["node_label_prefix"] for v in aks["variable"] if "node_label_prefix" in v)
    assert "default" not in prefix_var, "the prefix is a platform fact (cluster.node_label_prefix), not a default"
    module_aks = next(m["aks"] for m in hcl(INFRA_MODULES / "platform" / "main.tf")["module"] if "aks" in m)
    assert module_aks["node_label_prefix"] == "${local.p.cluster.node_label_prefix}"


@pytest.mark.parametrize("env", ENVS)
def test_node_label_keys_use_the_platform_prefix_and_labels_infra_sets(objects, env):
    prefix = platform(env)["cluster"]["node_label_prefix"]
    known = infra_node_labels()
    pools = {p["name"]: p for p in platform(env)["gpu_pools"]}
    uses = [u for layer_name in LAYERS if layer_name != "clusters"
            for u in node_label_uses(layer(objects, layer_name, env))]
    problems = []
    for where, key, value in uses:
        domain, _, name = key.rpartition("/")
        if key == AGENTPOOL:
            # AKS sets it to the pool name: the pool must exist in this environment.
            if value is not None and value not in {"system", "cpu", *pools}:
                problems.append(f"{where}: {key}={value} is not a node pool of {env}")
        elif domain == prefix:
            if name not in known:
                problems.append(f"{where}: {key} is not a label infra/modules/aks sets ({sorted(known)})")
            elif name == "gpu-vendor" and value is not None and value not in {p["vendor"] for p in pools.values()}:
                problems.append(f"{where}: {key}={value} matches no GPU pool vendor of {env}")
            elif name == "gpu-pool" and value is not None and value not in pools:
                problems.append(f"{where}: {key}={value} is not a GPU pool of {env}")
        elif not any(domain == d or domain.endswith("." + d) for d in SYSTEM_LABEL_DOMAINS):
            problems.append(f"{where}: node label {key} must start with cluster.node_label_prefix {prefix}/")
    assert not problems
    used = {key for _, key, _ in uses}
    assert f"{prefix}/gpu-vendor" in used, "GPU workloads and Kyverno select on <prefix>/gpu-vendor"


@pytest.mark.parametrize("env", ENVS)
def test_gpu_tolerations_match_the_taints_infra_puts_on_the_pools(objects, env):
    taints = {}
    for taint in tf_locals("aks")["gpu_taints"].values():
        key, _, rest = taint.partition("=")
        value, _, effect = rest.partition(":")
        taints[key] = (value, effect)
    assert set(taints) == {"nvidia.com/gpu", "amd.com/gpu"}
    assert {p["vendor"] for p in platform(env)["gpu_pools"]} <= set(tf_locals("aks")["gpu_taints"])
    problems, seen = [], set()
    for layer_name in ("infrastructure/controllers", "apps"):
        for o in layer(objects, layer_name, env):
            for path, node in _walk(o):
                if path[-1:] != ("tolerations",) or not isinstance(node, list):
                    continue
                for t in node:
                    if t.get("key") not in taints:
                        continue
                    seen.add(t["key"])
                    value, effect = taints[t["key"]]
                    if t.get("effect") not in (None, "", effect):
                        problems.append(
                            f"{name_of(o)}: toleration effect {t.get('effect')} for {t['key']}, infra: {effect}")
                    if t.get("operator", "Equal") == "Equal" and t.get("value") != value:
                        problems.append(f"{name_of(o)}: toleration {t['key']}={t.get('value')}, infra taints {value}")
    assert not problems
    assert seen == set(taints), "the GPU operators and GPU workloads tolerate both vendors' taints"
    policy = yaml.safe_dump(find(layer(objects, "infrastructure/configs", env), "ValidatingPolicy", "gpu-pools"))
    for key, (value, effect) in taints.items():
        assert f"{key}={value}:{effect}" in policy, f"Kyverno gpu-pools does not describe the infra taint of {key}"


# ---------------------------------------------------------------- Flux substitution and workload identity (infra)


def gitops_cluster_variables() -> dict[str, set[str]]:
    """${VAR} (or ${VAR:=default}) in the files under gitops/clusters, by file."""
    found = {}
    for path in sorted((GITOPS / "clusters").rglob("*")):
        if path.is_file():
            names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))
            if names:
                found[str(path.relative_to(GITOPS))] = names
    return found


def test_terraform_substitutes_the_workload_identity_client_ids_into_the_root_kustomization():
    flux = hcl(INFRA_MODULES / "aks" / "flux.tf")["resource"]
    config = next(r["azurerm_kubernetes_flux_configuration"]["platform"] for r in flux
                  if "azurerm_kubernetes_flux_configuration" in r)
    (root,) = config["kustomizations"]
    assert root["path"] == "${var.flux.path}"
    assert root["post_build"][0]["substitute"] == "${merge(local.flux_substitute, local.flux_platform_substitute)}"
    substitute = tf_locals("aks")["flux_substitute"]
    assert "var.workload_identities" in substitute and "wi.flux_variable => wi.client_id" in substitute
    module_aks = next(m["aks"] for m in hcl(INFRA_MODULES / "platform" / "main.tf")["module"] if "aks" in m)
    assert "local.workload_identities" in module_aks["workload_identities"]
    assert "azurerm_user_assigned_identity.workload[name].client_id" in module_aks["workload_identities"]


def test_every_substitution_under_gitops_clusters_is_provided_by_terraform():
    found = gitops_cluster_variables()
    assert found, "gitops/clusters passes the workload identity client IDs on with ${VAR}"
    missing = {f: sorted(v - SUBSTITUTION_KEYS) for f, v in found.items() if v - SUBSTITUTION_KEYS}
    assert not missing, (f"not in the substitute map of infra's fluxConfiguration (modules/platform "
                         f"workload_identity.tf, flux_variable): {missing}")


@pytest.mark.parametrize("env", ENVS)
def test_every_terraform_substitution_is_used_by_the_environment(env):
    used = set().union(*(v for f, v in gitops_cluster_variables().items() if f.startswith(f"clusters/{env}/")))
    assert used == SUBSTITUTION_KEYS, f"identities created for nothing: {sorted(SUBSTITUTION_KEYS - used)}"


def federated_service_accounts(objs: list[dict]) -> dict[tuple[str, str], str]:
    """(namespace, service account) -> ${VAR} of its azure.workload.identity/client-id, from ServiceAccounts and
    from the Helm values of external-secrets (serviceAccount.annotations) and KEDA (podIdentity.azureWorkload)."""
    found = {}
    client_id = "azure.workload.identity/client-id"
    for o in objs:
        ns = o["metadata"].get("namespace")
        if o["kind"] == "ServiceAccount" and client_id in (o["metadata"].get("annotations") or {}):
            found[(ns, o["metadata"]["name"])] = o["metadata"]["annotations"][client_id]
        elif o["kind"] == "HelmRelease":
            ns = o["spec"].get("targetNamespace", ns)
            values = o["spec"].get("values") or {}
            sa = values.get("serviceAccount") or {}
            if client_id in (sa.get("annotations") or {}):
                found[(ns, sa["name"])] = sa["annotations"][client_id]
            azure_workload = (values.get("podIdentity") or {}).get("azureWorkload") or {}
            if azure_workload.get("enabled"):
                found[(ns, sa["operator"]["name"])] = azure_workload["clientId"]
    return found


@pytest.mark.parametrize("env", ENVS)
def test_workload_identity_service_accounts_are_the_subjects_infra_federates(objects, env):
    objs = layer(objects, "infrastructure/controllers", env) + layer(objects, "apps", env)
    expected = {(wi["namespace"], wi["service_account"]): "${" + wi["flux_variable"] + "}"
                for wi in workload_identities().values()}
    assert federated_service_accounts(objs) == expected
    mlflow = one(layer(objects, "apps", env), "Deployment", "mlflow")["spec"]["template"]
    assert mlflow["spec"]["serviceAccountName"] == workload_identities()["mlflow"]["service_account"]
    assert mlflow["metadata"]["labels"]["azure.workload.identity/use"] == "true"


@pytest.mark.parametrize("env", ENVS)
def test_mlflow_artifacts_go_to_the_container_infra_creates(objects, env):
    deploy = one(layer(objects, "apps", env), "Deployment", "mlflow")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    (dest,) = [a for a in args if a.startswith("--artifacts-destination=")]
    container = re.match(r"--artifacts-destination=wasbs://([^@]+)@", dest).group(1)
    platform_locals = tf_locals("platform")
    assert platform_locals["mlflow_container"] == container
    assert "local.mlflow_container" in platform_locals["storage_containers"]


# MIG profiles each GPU SKU offers (NVIDIA MIG user guide, "Supported MIG profiles"): Standard_NC40ads_H100_v5
# carries one H100 NVL (94 GB). A layout naming a profile the SKU lacks is refused by the MIG manager on the node.
SKU_MIG_PROFILES = {
    "Standard_NC40ads_H100_v5": {"1g.12gb", "1g.12gb+me", "1g.24gb", "2g.24gb", "3g.47gb", "4g.47gb", "7g.94gb"},
}


@pytest.mark.parametrize("env", ENVS)
def test_every_mig_layout_uses_profiles_of_the_pools_exact_sku(objects, env):
    objs = layer(objects, "infrastructure/controllers", env)
    values = one(objs, "HelmRelease", "gpu-operator")["spec"]["values"]
    config = yaml.safe_load(one(objs, "ConfigMap", values["migManager"]["config"]["name"])["data"]["config.yaml"])
    profiles = SKU_MIG_PROFILES[gpu_pool(env, "h100")["vm_size"]]
    used = {p for layout in config["mig-configs"].values() for device in layout
            for p in (device.get("mig-devices") or {})}
    assert used and used <= profiles, f"not offered by {gpu_pool(env, 'h100')['vm_size']}: {sorted(used - profiles)}"
