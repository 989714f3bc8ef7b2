"""The sandbox emulators themselves: seeded from what the repository declares, and refusing what the real
services refuse (each rule with the service's documented status, code and message form).

Adapter behaviour is tested in test_<adapter>.py; here the far side is driven with the raw SDK or plain
HTTP, so that an emulator rule is checked as the service states it, not as our adapter happens to use it.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
import yaml
from _fixtures_saas import APP_ROOT

from shared import logs
from shared.credentials import StaticTokenCredential
from shared.local.sandbox import arm as arm_module
from shared.local.sandbox import keyvault as keyvault_module
from shared.local.sandbox.arm import TOTAL_REGIONAL, ArmEmulator, vm_family
from shared.local.sandbox.cloudflare import KNOWN_CODES, CloudflareEmulator
from shared.local.sandbox.gitlab import GitLabEmulator
from shared.local.sandbox.keyvault import KeyVaultEmulator
from shared.local.sandbox.kubernetes import KubernetesEmulator

pytestmark = pytest.mark.integration

KS = "kustomize.toolkit.fluxcd.io/v1"
GR = "source.toolkit.fluxcd.io/v1"
HR = "helm.toolkit.fluxcd.io/v2"
AUTH = {"Authorization": "Bearer sandbox-token"}


# -- emulators: one of each per module, reset before every test ------------------------------------


@pytest.fixture(scope="module")
def kube_server(dev_platform):
    emulator = KubernetesEmulator(dev_platform)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def arm_server(dev_platform, sandbox_ca):
    emulator = ArmEmulator(dev_platform)
    emulator.start(sandbox_ca)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def vault_server(dev_platform, sandbox_ca):
    emulator = KeyVaultEmulator(dev_platform)
    emulator.start(sandbox_ca)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def cloudflare_server(dev_platform):
    emulator = CloudflareEmulator(dev_platform)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def gitlab_server(dev_platform):
    emulator = GitLabEmulator(dev_platform)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def kube(kube_server):
    kube_server.reset()
    return kube_server


@pytest.fixture
def arm(arm_server):
    arm_server.reset()
    return arm_server


@pytest.fixture
def vault(vault_server):
    vault_server.reset()
    return vault_server


@pytest.fixture
def cloudflare(cloudflare_server):
    cloudflare_server.reset()
    return cloudflare_server


@pytest.fixture
def gitlab(gitlab_server):
    gitlab_server.reset()
    return gitlab_server


def k8s(kube, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, kube.base_url + path, headers={**AUTH, **kwargs.pop("headers", {})}, **kwargs)


def aks_client(arm, sandbox_ca, dev_platform):
    from azure.mgmt.containerservice import ContainerServiceClient

    return ContainerServiceClient(StaticTokenCredential(), dev_platform.subscription_id, base_url=arm.base_url,
                                  connection_verify=str(sandbox_ca.ca_path), retry_total=0, polling_interval=0)


# -- item 4: the seeds are what the repository declares --------------------------------------------


def declared_by_the_files(env: str) -> tuple[str, str, dict[str, dict]]:
    """Read independently of the sandbox: flux.tf's configuration and root Kustomization names, and the
    Kustomization documents of gitops/clusters/<env>."""
    import hcl2  # as the infra tests read Terraform

    with (APP_ROOT / "infra/modules/aks/flux.tf").open() as fh:
        flux_tf = hcl2.load(fh, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True,
                                                                               explicit_blocks=False))
    config = next(body for entry in flux_tf["resource"] for kind, named in entry.items()
                  if kind == "azurerm_kubernetes_flux_configuration" for body in named.values())
    children = {}
    for path in sorted((APP_ROOT / "gitops/clusters" / env).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Kustomization" and doc["apiVersion"].startswith("kustomize.toolkit"):
                children[doc["metadata"]["name"]] = doc
    return config["name"], f"{config['name']}-{config['kustomizations'][0]['name']}", children


def declared_pools_by_the_files(env: str) -> dict[str, dict]:
    """The system and CPU pools as ``infra/modules/aks`` declares them (cluster.tf's ``default_node_pool``,
    node_pools.tf's ``cpu``), with ``var.*`` resolved the way ``infra/modules/platform`` passes platform.yaml's
    ``cluster`` section (``system_pool``, ``cpu_pool``, ``zones``, ``node_label_prefix``)."""
    import re

    import hcl2

    cluster = yaml.safe_load((APP_ROOT / f"infra/envs/{env}/platform.yaml").read_text())["cluster"]
    variables = {"system_pool": cluster["system_pool"], "cpu_pool": cluster["cpu_pool"], "zones": cluster["zones"],
                 "node_label_prefix": cluster["node_label_prefix"]}

    def resolve(value):
        if isinstance(value, str):
            whole = re.fullmatch(r"\$\{var\.([a-z_]+)(?:\.([a-z_]+))?\}", value)
            if whole and whole.group(1) in variables:
                found = variables[whole.group(1)]
                return found.get(whole.group(2), value) if whole.group(2) else found
            return re.sub(r"\$\{var\.([a-z_]+)\}", lambda m: str(variables.get(m.group(1), m.group(0))), value)
        if isinstance(value, dict):
            return {resolve(k): resolve(v) for k, v in value.items()}
        return value

    bodies = {}
    for name in ("cluster.tf", "node_pools.tf"):
        with (APP_ROOT / "infra/modules/aks" / name).open() as fh:
            doc = hcl2.load(fh, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True,
                                                                                explicit_blocks=False))
        for entry in doc["resource"]:
            for kind, named in entry.items():
                for body in named.values():
                    if kind == "azurerm_kubernetes_cluster":
                        bodies["system"] = {**body["default_node_pool"][0], "mode": "System"}
                    elif kind == "azurerm_kubernetes_cluster_node_pool" and body.get("name") == "cpu":
                        bodies["cpu"] = body
    return {name: {k: resolve(v) for k, v in body.items()} for name, body in bodies.items()}


def test_the_arm_seed_has_the_system_and_cpu_pools_platform_yaml_and_the_aks_module_declare(arm, kube, dev_platform):
    declared = declared_pools_by_the_files(dev_platform.name)
    assert set(declared) == {"system", "cpu"}
    prefix = dev_platform.node_label_prefix
    for name, tf in declared.items():
        props = arm.pool(name)["properties"]
        taints = ["CriticalAddonsOnly=true:NoSchedule"] if tf.get("only_critical_addons_enabled") else []
        labels = tf.get("node_labels") or {}
        assert {"mode": props["mode"], "vmSize": props["vmSize"], "enableAutoScaling": props["enableAutoScaling"],
                "minCount": props["minCount"], "maxCount": props["maxCount"], "nodeTaints": props["nodeTaints"],
                "labels": {k: v for k, v in props["nodeLabels"].items() if k.startswith(prefix + "/")},
                "availabilityZones": props["availabilityZones"], "osSKU": props["osSKU"],
                "osDiskType": props["osDiskType"]} == {
            "mode": tf["mode"], "vmSize": tf["vm_size"], "enableAutoScaling": tf["auto_scaling_enabled"],
            "minCount": tf["min_count"], "maxCount": tf["max_count"], "nodeTaints": taints, "labels": labels,
            "availabilityZones": tf["zones"], "osSKU": tf["os_sku"], "osDiskType": tf["os_disk_type"]}, name
        # The autoscaler's floor: the pool starts at min_count, and the API server lists as many nodes of it,
        # labelled and tainted as the pool.
        assert props["count"] == tf["min_count"]
        nodes = [n for n in kube.objects[("v1", "nodes")].values()
                 if n["metadata"]["labels"]["kubernetes.azure.com/agentpool"] == name]
        assert len(nodes) == props["count"], name
        for node in nodes:
            assert {k: v for k, v in node["metadata"]["labels"].items() if k.startswith(prefix + "/")} == labels
            assert [f"{t['key']}={t['value']}:{t['effect']}" for t in node["spec"]["taints"]] == taints
            assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == tf["vm_size"]


def test_the_flux_objects_are_the_ones_flux_tf_and_gitops_clusters_declare(kube, dev_platform):
    configuration, root, children = declared_by_the_files(dev_platform.name)

    sources = kube.objects[(GR, "gitrepositories")]
    kustomizations = {name: obj for (_, name), obj in kube.objects[(KS, "kustomizations")].items()}

    assert [name for _, name in sources] == [configuration]
    assert set(kustomizations) == {root} | set(children)
    source = next(iter(sources.values()))
    assert source["spec"]["url"] == f"{dev_platform.gitlab.url.rstrip('/')}/{dev_platform.gitlab.project}.git"
    assert source["spec"]["ref"] == {"branch": dev_platform.gitlab.default_branch}
    assert kustomizations[root]["spec"]["path"] == f"./{dev_platform.gitlab.gitops_path}"
    for name, doc in children.items():
        assert kustomizations[name]["spec"] == doc["spec"], name  # as written, dependsOn and all
        assert kustomizations[name]["spec"]["sourceRef"]["name"] == configuration
    root_inventory = {e["id"] for e in kustomizations[root]["status"]["inventory"]["entries"]}
    assert root_inventory == {f"{kustomizations[root]['metadata']['namespace']}_{name}_kustomize.toolkit.fluxcd.io_"
                              f"Kustomization" for name in children}


def test_every_seeded_path_and_helm_release_exists_in_the_repository(kube):
    for obj in kube.objects[(KS, "kustomizations")].values():
        assert (APP_ROOT / obj["spec"]["path"]).is_dir(), obj["spec"]["path"]
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    declared_releases = {
        (doc["metadata"]["name"]) for path in (APP_ROOT / "gitops").rglob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict) and doc.get("kind") == "HelmRelease"}
    seeded = {name for _, name in kube.objects[(HR, "helmreleases")]}
    assert seeded and seeded <= declared_releases


def test_a_helm_release_on_an_oci_chart_reports_the_tag_its_oci_repository_declares(kube):
    # HelmReleases with spec.chartRef carry no version themselves: helm-controller installs the OCIRepository's tag.
    tags = {(doc["metadata"]["name"]): str(doc["spec"]["ref"]["tag"])
            for path in (APP_ROOT / "gitops").rglob("*.yaml") for doc in yaml.safe_load_all(path.read_text())
            if isinstance(doc, dict) and doc.get("kind") == "OCIRepository" and (doc.get("spec") or {}).get("ref")}
    on_oci = [r for r in kube.objects[(HR, "helmreleases")].values()
              if (r["spec"].get("chartRef") or {}).get("kind") == "OCIRepository"]
    assert on_oci, "gitops/ declares HelmReleases on OCI charts: the seed should hold them"
    for release in on_oci:
        expected = tags[release["spec"]["chartRef"]["name"]]
        assert release["status"]["history"][0]["chartVersion"] == expected, release["metadata"]["name"]
        assert release["status"]["lastAttemptedRevision"] == expected


def test_a_renamed_kustomization_is_what_the_sandbox_then_holds(dev_platform, tmp_path):
    # A rename in the repository must show up in the sandbox (not pass here and 404 in Azure).
    for tree in ("gitops", "infra/modules", "infra/envs"):
        shutil.copytree(APP_ROOT / tree, tmp_path / tree, symlinks=True)
    _, _, children = declared_by_the_files(dev_platform.name)
    old = sorted(children)[0]
    for path in (tmp_path / "gitops/clusters" / dev_platform.name).glob("*.yaml"):
        path.write_text(path.read_text().replace(f"name: {old}\n", f"name: {old}-renamed\n"))

    emulator = KubernetesEmulator(dev_platform, repository_root=tmp_path)

    names = {name for _, name in emulator.objects[(KS, "kustomizations")]}
    assert f"{old}-renamed" in names and old not in names


def test_the_gitlab_project_holds_the_gitops_and_infra_trees_of_the_checkout(gitlab):
    listed = subprocess.run(["git", "-C", str(APP_ROOT), "ls-files", "gitops", "infra"], capture_output=True,
                            text=True, check=True).stdout.split()
    tree = gitlab.commits[gitlab.head(gitlab.default_branch)].tree

    assert {p for p in listed if (APP_ROOT / p).is_file()} <= set(tree)
    assert all(p.startswith(("gitops/", "infra/")) for p in tree)
    sample = "gitops/clusters/dev-uaenorth/kustomization.yaml"
    assert gitlab.file(gitlab.default_branch, sample) == (APP_ROOT / sample).read_text()


# -- item 5: the Kubernetes API server refuses what the real one refuses ---------------------------


@pytest.mark.parametrize(("what", "path_of", "content_type", "status"), [
    ("strategic merge on a custom resource", "kustomization", "application/strategic-merge-patch+json", 415),
    ("merge patch on a custom resource", "kustomization", "application/merge-patch+json", 200),
    ("strategic merge on a built-in kind", "deployment", "application/strategic-merge-patch+json", 200),
    ("an unknown patch type", "deployment", "application/yaml", 415),
])
def test_patch_types_are_accepted_as_the_api_server_accepts_them(kube, what, path_of, content_type, status):
    ks_ns, ks_name = next(iter(kube.objects[(KS, "kustomizations")]))
    dep_ns, dep_name = next(iter(kube.objects[("apps/v1", "deployments")]))
    path = {"kustomization": f"/apis/{KS}/namespaces/{ks_ns}/kustomizations/{ks_name}",
            "deployment": f"/apis/apps/v1/namespaces/{dep_ns}/deployments/{dep_name}"}[path_of]

    answer = k8s(kube, "PATCH", path, content=b'{"metadata":{"labels":{"a":"b"}}}',
                 headers={"Content-Type": content_type})

    assert answer.status_code == status, what
    if status == 415:
        assert answer.json()["reason"] == "UnsupportedMediaType"
        assert "application/merge-patch+json" in answer.json()["message"]


def test_a_json_patch_is_applied_in_order(kube):
    ns, name = next(iter(kube.objects[("apps/v1", "deployments")]))
    ops = [{"op": "add", "path": "/metadata/labels/tier", "value": "gpu"},
           {"op": "test", "path": "/metadata/labels/tier", "value": "gpu"}]

    answer = k8s(kube, "PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}", json=ops,
                 headers={"Content-Type": "application/json-patch+json"})

    assert answer.status_code == 200 and answer.json()["metadata"]["labels"]["tier"] == "gpu"


def test_watch_is_neither_advertised_nor_silently_answered_with_a_list(kube):
    discovery = k8s(kube, "GET", f"/apis/{KS}").json()
    assert all("watch" not in r["verbs"] for r in discovery["resources"])

    answer = k8s(kube, "GET", f"/apis/{KS}/kustomizations", params={"watch": "true"})

    assert answer.status_code == 405 and answer.json()["kind"] == "Status"


@pytest.mark.parametrize(("path", "selector", "status"), [
    (f"/apis/{KS}/kustomizations", "metadata.name=apps", 200),
    (f"/apis/{KS}/kustomizations", "status.phase=Ready", 400),
    (f"/apis/{KS}/kustomizations", "spec.path=./gitops", 400),
    ("/api/v1/pods", "spec.nodeName=aks-system-0", 200),
    ("/api/v1/pods", "status.phase!=Running", 200),
    ("/api/v1/pods", "spec.containers=manager", 400),
    ("/api/v1/nodes", "spec.unschedulable=false", 200),
    ("/api/v1/nodes", "status.capacity=8", 400),
])
def test_field_selectors_work_only_on_the_fields_each_kind_supports(kube, path, selector, status):
    answer = k8s(kube, "GET", path, params={"fieldSelector": selector})

    assert answer.status_code == status
    if status == 400:
        assert answer.json()["reason"] == "BadRequest"
        assert answer.json()["message"] == f"field label not supported: {selector.split('=')[0].rstrip('!')}"


def test_a_supported_field_selector_filters(kube):
    node = sorted(kube.objects[("v1", "nodes")])[0][1]
    answer = k8s(kube, "GET", "/api/v1/nodes", params={"fieldSelector": f"metadata.name={node}"}).json()
    assert [n["metadata"]["name"] for n in answer["items"]] == [node]


@pytest.mark.parametrize("limit", ["abc", "1.5", "ten"])
def test_a_malformed_limit_is_a_bad_request_not_a_server_error(kube, limit):
    answer = k8s(kube, "GET", "/api/v1/nodes", params={"limit": limit})
    assert answer.status_code == 400 and answer.json()["reason"] == "BadRequest"


def test_writes_to_the_main_resource_leave_status_alone_and_status_writes_leave_the_rest(kube):
    ns, name = next(iter(kube.objects[(KS, "kustomizations")]))
    path = f"/apis/{KS}/namespaces/{ns}/kustomizations/{name}"
    merge = {"Content-Type": "application/merge-patch+json"}
    before = k8s(kube, "GET", path).json()

    main = k8s(kube, "PATCH", path, json={"spec": {"suspend": True},
                                          "status": {"observedGeneration": 99, "lastAppliedRevision": "forged"}},
               headers=merge).json()
    status = k8s(kube, "PATCH", path + "/status", json={"spec": {"suspend": False},
                                                       "status": {"lastHandledReconcileAt": "x"}},
                 headers=merge).json()

    assert main["spec"]["suspend"] is True
    assert main["status"]["observedGeneration"] != 99  # ignored: status has its own subresource
    assert main["status"]["lastAppliedRevision"] == before["status"]["lastAppliedRevision"]
    assert status["status"]["lastHandledReconcileAt"] == "x"
    assert status["spec"]["suspend"] is True  # ignored: the status subresource writes status only
    assert status["metadata"]["generation"] == before["metadata"]["generation"] + 1


def test_kinds_without_a_status_subresource_have_no_status_path(kube):
    ns, name = next(iter(kube.objects[("v1", "configmaps")]))
    answer = k8s(kube, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/{name}/status", json={"status": {}},
                 headers={"Content-Type": "application/merge-patch+json"})
    assert answer.status_code == 404


def test_a_request_without_a_bearer_token_is_refused_with_a_status_object(kube):
    answer = httpx.get(kube.base_url + "/api/v1/nodes")
    assert answer.status_code == 401
    assert answer.json() | {"message": ""} == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                "status": "Failure", "message": "", "reason": "Unauthorized",
                                                "code": 401}


def test_the_emulated_controllers_catch_up_with_a_spec_change(kube):
    ns, name = next(iter(kube.objects[(HR, "helmreleases")]))
    path = f"/apis/{HR}/namespaces/{ns}/helmreleases/{name}"

    changed = k8s(kube, "PATCH", path, json={"spec": {"suspend": True}},
                  headers={"Content-Type": "application/merge-patch+json"}).json()

    assert changed["status"]["observedGeneration"] == changed["metadata"]["generation"]


# -- items 6 and 7: ARM and Key Vault --------------------------------------------------------------


def test_quota_families_are_named_as_azure_quota_errors_name_them():
    # Fixed: the emulator used to say "Standard NCadsH100v5 Family"; Azure joins the family to "Family".
    assert vm_family("Standard_NC40ads_H100_v5") == "standardNCADSH100v5Family"
    assert vm_family("Standard_ND96isr_MI300X_v5") == "standardNDISRMI300Xv5Family"
    assert vm_family("Standard_D4ds_v5") == "standardDDSv5Family"
    assert vm_family("Standard_B2s") == "standardBSFamily"  # "exceeding approved standardBSFamily Cores quota"


@pytest.mark.parametrize("quota", ["family", TOTAL_REGIONAL])
def test_a_put_over_quota_is_refused_with_azures_message(arm, sandbox_ca, dev_platform, quota):
    from azure.core.exceptions import HttpResponseError

    pool = dev_platform.gpu_pools[0]
    arm.set_pool(pool.name, enableAutoScaling=False)
    arm.set_quota(vm_family(pool.vm_size) if quota == "family" else TOTAL_REGIONAL, 0)
    client = aks_client(arm, sandbox_ca, dev_platform)
    model = client.agent_pools.get(dev_platform.resource_group, dev_platform.cluster_name, pool.name)
    model.count = (model.count or 0) + 1

    with pytest.raises(HttpResponseError) as caught:
        client.agent_pools.begin_create_or_update(dev_platform.resource_group, dev_platform.cluster_name,
                                                  pool.name, model).result()

    name = vm_family(pool.vm_size) if quota == "family" else "Total Regional"
    assert caught.value.error.code == "QuotaExceeded"
    assert (f"Operation could not be completed as it results in exceeding approved {name} Cores quota. "
            f"Additional details - Deployment Model: Resource Manager, Location: {dev_platform.location}, "
            "Current Limit: 0,") in caught.value.error.message


def test_raising_min_count_leaves_count_to_the_autoscaler_which_scales_later_with_nodes(
        arm, kube, sandbox_ca, dev_platform):
    arm.link_kubernetes(kube)
    arm.autoscaler_delay = 0.4
    pool = dev_platform.gpu_pools[0]
    client = aks_client(arm, sandbox_ca, dev_platform)
    model = client.agent_pools.get(dev_platform.resource_group, dev_platform.cluster_name, pool.name)
    floor = model.count + 2
    model.min_count, model.max_count = floor, max(model.max_count, floor)

    accepted = client.agent_pools.begin_create_or_update(dev_platform.resource_group, dev_platform.cluster_name,
                                                         pool.name, model)
    done = accepted.result()

    assert (done.count, done.min_count) == (floor - 2, floor)  # the PUT itself does not scale
    deadline = time.monotonic() + 5
    while arm.pool(pool.name)["properties"]["count"] != floor and time.monotonic() < deadline:
        time.sleep(0.05)
    assert arm.pool(pool.name)["properties"]["count"] == floor
    nodes = [n for n in kube.objects[("v1", "nodes")].values()
             if n["metadata"]["labels"]["kubernetes.azure.com/agentpool"] == pool.name]
    assert len(nodes) == floor


def test_the_autoscaler_does_not_scale_past_the_quota(arm, kube, sandbox_ca, dev_platform):
    pool = dev_platform.gpu_pools[0]
    arm.set_quota(vm_family(pool.vm_size), 0)
    client = aks_client(arm, sandbox_ca, dev_platform)
    model = client.agent_pools.get(dev_platform.resource_group, dev_platform.cluster_name, pool.name)
    model.min_count, model.max_count = model.count + 1, max(model.max_count, model.count + 1)

    done = client.agent_pools.begin_create_or_update(dev_platform.resource_group, dev_platform.cluster_name,
                                                     pool.name, model).result()
    arm.pool(pool.name)

    assert arm.pool(pool.name)["properties"]["count"] == done.count  # the scale-up met the quota
    assert arm.autoscaler_events and "Cores quota" in arm.autoscaler_events[-1][1]


def test_the_autoscaler_acts_even_when_nobody_reads_the_pool(arm, kube, dev_platform):
    arm.link_kubernetes(kube)
    arm.autoscaler_delay = 0.1
    pool = dev_platform.gpu_pools[0]
    arm.set_pool(pool.name, minCount=pool.min_count + 1, maxCount=max(pool.max_count, pool.min_count + 1))
    arm._tick()
    time.sleep(0.3)
    arm._tick()
    nodes = [n for n in kube.objects[("v1", "nodes")].values()
             if n["metadata"]["labels"]["kubernetes.azure.com/agentpool"] == pool.name]
    assert len(nodes) == pool.min_count + 1


def test_the_installed_azure_sdks_send_an_api_version_the_emulators_serve(arm, vault, sandbox_ca, dev_platform):
    # An SDK upgrade that moves the api-version fails here first, not in Azure.
    from azure.keyvault.certificates import CertificateClient

    aks_client(arm, sandbox_ca, dev_platform).agent_pools.get(dev_platform.resource_group,
                                                              dev_platform.cluster_name, "system")
    CertificateClient(vault.base_url, StaticTokenCredential(), connection_verify=str(sandbox_ca.ca_path),
                      verify_challenge_resource=False).get_certificate(dev_platform.certificates[0].name)

    assert arm.api_versions and arm.api_versions <= set(arm_module.ACCEPTED_API_VERSIONS)
    assert vault.api_versions and vault.api_versions <= set(keyvault_module.ACCEPTED_API_VERSIONS)


def test_other_api_versions_are_refused_as_the_services_refuse_them(arm, vault, sandbox_ca, dev_platform):
    p = dev_platform
    pools = (f"{arm.base_url}/subscriptions/{p.subscription_id}/resourceGroups/{p.resource_group}/providers/"
             f"Microsoft.ContainerService/managedClusters/{p.cluster_name}/agentPools")
    verify = ssl.create_default_context(cafile=str(sandbox_ca.ca_path))

    old_arm = httpx.get(pools, params={"api-version": "2024-01-01"}, headers=AUTH, verify=verify)
    old_vault = httpx.get(f"{vault.base_url}/certificates", params={"api-version": "7.4"}, headers=AUTH,
                          verify=verify)

    assert old_arm.status_code == 400 and old_arm.json()["error"]["code"] == "NoRegisteredProviderFound"
    assert "The supported api-versions are" in old_arm.json()["error"]["message"]
    assert old_vault.status_code == 400 and old_vault.json()["error"]["code"] == "BadParameter"


def get_secret(vault, sandbox_ca, name: str, version: str = "") -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=str(sandbox_ca.ca_path))
    url = f"{vault.base_url}/secrets/{name}/{version}?api-version={keyvault_module.ACCEPTED_API_VERSIONS[0]}"
    request = urllib.request.Request(url, headers=AUTH)  # noqa: S310 - https on loopback
    try:
        with urllib.request.urlopen(request, context=context, timeout=2) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_secret_serves_the_pem_bundle_external_secrets_reads(vault, sandbox_ca, dev_platform):
    name = dev_platform.certificates[0].name
    status, body = get_secret(vault, sandbox_ca, name)

    assert status == 200
    assert body["contentType"] == "application/x-pem-file"
    assert body["value"].startswith("-----BEGIN PRIVATE KEY-----")
    assert body["id"].startswith(f"{vault.base_url}/secrets/{name}/")


def test_a_disabled_secret_version_is_forbidden(vault, sandbox_ca, dev_platform):
    from azure.keyvault.certificates import CertificateClient

    name = dev_platform.certificates[0].name
    client = CertificateClient(vault.base_url, StaticTokenCredential(), connection_verify=str(sandbox_ca.ca_path),
                               verify_challenge_resource=False)
    version = client.get_certificate(name).properties.version
    client.update_certificate_properties(name, version, enabled=False)

    status, body = get_secret(vault, sandbox_ca, name, version)

    assert status == 403
    assert body["error"]["code"] == "Forbidden"
    assert body["error"]["message"] == "Operation get is not allowed on a disabled secret."
    assert body["error"]["innererror"] == {"code": "SecretDisabled"}


def test_the_user_kubeconfig_is_an_entra_exec_one_with_no_secret(arm, sandbox_ca, dev_platform):
    # The emulator's answer through the raw SDK: the shape real Entra ID clusters return.
    from azure.mgmt.containerservice import ContainerServiceClient

    client = ContainerServiceClient(StaticTokenCredential(), dev_platform.subscription_id, base_url=arm.base_url,
                                    connection_verify=str(sandbox_ca.ca_path), retry_total=0)
    result = client.managed_clusters.list_cluster_user_credentials(dev_platform.resource_group,
                                                                   dev_platform.cluster_name)
    assert [k.name for k in result.kubeconfigs] == ["clusterUser"]
    assert isinstance(result.kubeconfigs[0].value, bytes)  # the SDK already decoded the base64
    config = yaml.safe_load(result.kubeconfigs[0].value)
    user = config["users"][0]["user"]
    assert user["exec"]["command"] == "kubelogin" and "token" not in user and "client-key-data" not in user
    assert base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]) \
        == sandbox_ca.ca_path.read_bytes()

    legacy = client.managed_clusters.list_cluster_user_credentials(
        dev_platform.resource_group, dev_platform.cluster_name, format="azure")
    assert yaml.safe_load(legacy.kubeconfigs[0].value)["users"][0]["user"]["auth-provider"]["name"] == "azure"


def test_the_emulator_refuses_a_changed_count_on_an_autoscaling_pool(arm, sandbox_ca, dev_platform):
    # What the adapter protects us from, checked on the raw SDK so the emulator's rule is real.
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.containerservice import ContainerServiceClient

    client = ContainerServiceClient(StaticTokenCredential(), dev_platform.subscription_id, base_url=arm.base_url,
                                    connection_verify=str(sandbox_ca.ca_path), retry_total=0)
    pool = client.agent_pools.get(dev_platform.resource_group, dev_platform.cluster_name, "system")
    pool.count = pool.count + 1
    with pytest.raises(HttpResponseError) as caught:
        client.agent_pools.begin_create_or_update(dev_platform.resource_group, dev_platform.cluster_name,
                                                  "system", pool)
    assert caught.value.status_code == 400
    assert "autoscaler" in caught.value.message


# -- item 8: Cloudflare's documented bounds and codes ----------------------------------------------


def cf(cloudflare, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{cloudflare.base_url}/client/v4{path}",
                         headers={"Authorization": f"Bearer {cloudflare.token}"}, **kwargs)


@pytest.mark.parametrize(("per_page", "status"), [("4", 400), ("5", 200), ("50", 200), ("51", 400),
                                                  ("100", 400), ("x", 400)])
def test_per_page_is_within_the_documented_five_to_fifty(cloudflare, dev_platform, per_page, status):
    zone = dev_platform.certificates[0].zone_id
    answer = cf(cloudflare, "GET", "/certificates", params={"zone_id": zone, "per_page": per_page})

    assert answer.status_code == status
    body = answer.json()
    assert body["success"] is (status == 200)
    if status == 200:
        assert body["result_info"]["per_page"] == int(per_page)
    else:
        assert [e["code"] for e in body["errors"]] == [6008]


def test_the_default_page_is_twenty(cloudflare, dev_platform):
    answer = cf(cloudflare, "GET", "/certificates", params={"zone_id": dev_platform.certificates[0].zone_id})
    assert answer.json()["result_info"]["per_page"] == 20


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("GET", "/certificates", {}),
    ("GET", "/certificates", {"params": {"zone_id": "0" * 32}}),
    ("POST", "/certificates", {"content": b"not json"}),
    ("POST", "/certificates", {"json": {"request_type": "origin-ecc"}}),
    ("POST", "/certificates", {"json": {"request_type": "nope", "hostnames": ["a.b"], "csr": "x"}}),
    ("POST", "/certificates", {"json": {"request_type": "origin-ecc", "requested_validity": 45}}),
    ("POST", "/certificates", {"json": {"request_type": "origin-ecc", "hostnames": ["x.example.org"]}}),
    ("GET", "/certificates/12345", {}),
    ("DELETE", "/certificates/12345", {}),
    ("PUT", "/certificates", {}),
])
def test_every_error_answers_only_codes_cloudflare_uses(cloudflare, method, path, kwargs):
    answer = cf(cloudflare, method, path, **kwargs)

    assert answer.status_code >= 400
    body = answer.json()
    assert body["success"] is False and body["result"] is None
    assert {e["code"] for e in body["errors"]} <= set(KNOWN_CODES)


def test_omitting_requested_validity_issues_a_fifteen_year_certificate_like_the_real_api(cloudflare, dev_platform):
    from shared.adapters.cloudflare import make_key_and_csr

    spec = dev_platform.certificates[0]
    keys = make_key_and_csr(spec)
    answer = httpx.post(cloudflare.base_url + "/client/v4/certificates",
                        headers={"Authorization": f"Bearer {cloudflare.token}"},
                        json={"csr": keys.csr_pem, "hostnames": list(spec.hostnames), "request_type": "origin-ecc"})
    assert answer.status_code == 200 and answer.json()["result"]["requested_validity"] == 5475


def test_merge_request_lists_carry_gitlab_pagination_headers(gitlab):
    project = f"{gitlab.base_url}/api/v4/projects/platform%2Fplatform-core"
    headers = {"PRIVATE-TOKEN": gitlab.token}
    for i in range(3):
        gitlab.push(f"page-{i}", {"gitops/x.yaml": f"x: {i}\n"}, create_branch=True)
        httpx.post(f"{project}/merge_requests", headers=headers, timeout=2, json={
            "source_branch": f"page-{i}", "target_branch": "main", "title": f"MR {i}", "labels": "paging"})

    answer = httpx.get(f"{project}/merge_requests", params={"labels": "paging", "per_page": 2}, headers=headers,
                       timeout=2)

    assert answer.headers["X-Total"] == "3" and answer.headers["X-Page"] == "1"
    assert answer.headers["X-Per-Page"] == "2" and answer.headers["X-Next-Page"] == "2"
    assert 'rel="next"' in answer.headers["Link"] and len(answer.json()) == 2


# -- item 9: module-scoped emulators reset, and no global secret outlives its module ---------------


def test_reset_brings_every_emulator_back_to_its_seed(kube, arm, vault, cloudflare, gitlab, dev_platform):
    seeded = {k: dict(v) for k, v in kube.objects.items()}
    ns, name = next(iter(kube.objects[(KS, "kustomizations")]))
    k8s(kube, "PATCH", f"/apis/{KS}/namespaces/{ns}/kustomizations/{name}", json={"spec": {"suspend": True}},
        headers={"Content-Type": "application/merge-patch+json"})
    for emulator in (kube, arm, vault, cloudflare, gitlab):
        emulator.inject(status=503, path="never-matches")
    head = gitlab.head("main")
    gitlab.push("main", {"gitops/x.yaml": "x: 1\n"})
    arm.set_pool("system", count=3)
    cloudflare.certificates["1"] = {"id": "1"}

    for emulator in (kube, arm, vault, cloudflare, gitlab):
        emulator.reset()

    assert all(not e.faults and not e.requests for e in (kube, arm, vault, cloudflare, gitlab))
    assert set(kube.objects) == set(seeded)
    assert "suspend" not in kube.objects[(KS, "kustomizations")][(ns, name)]["spec"]
    assert gitlab.file("main", "gitops/x.yaml") is None and head in gitlab.commits
    assert arm.pool("system")["properties"]["count"] == 2
    assert cloudflare.certificates == {}


def test_no_secret_registered_by_an_earlier_module_is_still_registered(session_secrets):
    # Settings.from_env registers secret settings for redaction; modules that build sandbox settings
    # (the Cloudflare and GitLab tokens) must not leave them registered for the rest of the run.
    assert logs._known_secrets <= session_secrets


def test_the_repository_root_is_this_checkout():
    from shared.local.sandbox.declared import REPO_ROOT

    assert Path(REPO_ROOT) == APP_ROOT
