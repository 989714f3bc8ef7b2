"""Values in gitops/ that restate infra/envs/<env>/platform.yaml (Kustomize cannot read it) must match it."""

from __future__ import annotations

import pytest
import yaml

from .conftest import ENVS, GITOPS, containers, find, platform, pod_specs

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
def test_both_ingress_classes_default_to_the_origin_certificate(objects, env):
    objs = layer(objects, "infrastructure/controllers", env)
    cert = platform(env)["certificates"][0]["name"]
    classes = set()
    for name in ("ingress-nginx-public", "ingress-nginx-internal"):
        controller = one(objs, "HelmRelease", name)["spec"]["values"]["controller"]
        assert controller["extraArgs"]["default-ssl-certificate"] == f"ingress-nginx/{cert}"
        classes.add(controller["ingressClassResource"]["name"])
    assert classes == {"nginx-public", "nginx-internal"}
    ns = one(objs, "Namespace", "ingress-nginx")
    assert ns["metadata"]["labels"]["platform.example.com/origin-certificate"] == "true"


@pytest.mark.parametrize("env", ENVS)
def test_ingress_hosts_are_names_of_the_environment_certificate(objects, env):
    cert_hosts = [h for c in platform(env)["certificates"] for h in c["hostnames"]]
    apex = cert_hosts[0]
    hosts = [r["host"] for i in find(layer(objects, "apps", env), "Ingress") for r in i["spec"]["rules"]]
    assert hosts
    assert all(h.endswith("." + apex) and h.count(".") == apex.count(".") + 1 for h in hosts), hosts


@pytest.mark.parametrize("env", ENVS)
def test_registry_rule_and_app_images_use_the_environment_acr(objects, env):
    registry = f"{platform(env)['acr']['name']}.azurecr.io"
    policy = one(layer(objects, "infrastructure/configs", env), "ClusterPolicy", "platform-registry-only")
    pattern = policy["spec"]["rules"][0]["validate"]["pattern"]["spec"]
    assert {item["image"] for v in pattern.values() for item in v} == {f"{registry}/*"}
    images = [c["image"] for _, spec in pod_specs(layer(objects, "apps", env)) for c in containers(spec)]
    assert images and all(i.startswith(registry + "/") for i in images), images


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
    assert "replicas" not in target["spec"], "KEDA owns replicas; Flux must not set them"


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
    assert {"key": "amd.com/gpu", **taint} in amd["commonConfig"]["tolerations"]
    assert amd["selector"] == {"kubernetes.azure.com/agentpool": "mi300x"}
    assert {p["name"]: p["vendor"] for p in platform(env)["gpu_pools"]} == {"h100": "nvidia", "mi300x": "amd"}
