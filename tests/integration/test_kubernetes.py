"""The cluster adapter through the real ``kubernetes`` client against the API server emulator."""

from __future__ import annotations

import os
import stat
import time

import pytest
from _fixtures_saas import closed_port_url, imported_modules_after, sandbox_context

from shared.adapters import HttpOptions
from shared.adapters.kubernetes import AKS_SCOPE, KubernetesCluster
from shared.credentials import StaticTokenCredential
from shared.errors import ConflictError, NotFoundError, PermanentError, TemporaryError
from shared.local.sandbox.arm import ArmEmulator
from shared.local.sandbox.base import Fault, SandboxCA
from shared.local.sandbox.kubernetes import KubernetesEmulator

pytestmark = pytest.mark.integration

KS = "kustomize.toolkit.fluxcd.io/v1"
HR = "helm.toolkit.fluxcd.io/v2"


@pytest.fixture(scope="module")
def arm(sandbox_ca, dev_platform):
    emulator = ArmEmulator(dev_platform)
    emulator.start(sandbox_ca)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def cluster_ca(tmp_path_factory):
    """The AKS cluster's own CA: a second CA that TLS_CA_BUNDLE (the sandbox CA) does not contain."""
    return SandboxCA(tmp_path_factory.mktemp("cluster-ca"))


@pytest.fixture(scope="module")
def aks_api(dev_platform, cluster_ca):
    """The API server as AKS serves it: https, with a certificate from the cluster CA."""
    emulator = KubernetesEmulator(dev_platform, tls=True)
    emulator.start(cluster_ca)
    yield emulator
    emulator.stop()


def via_arm(dev_platform, arm, sandbox_ca):
    """A context as in Azure: no KUBERNETES_API_URL, so the API server comes from ARM."""
    ctx = sandbox_context(dev_platform, arm, TLS_CA_BUNDLE=str(sandbox_ca.ca_path))
    assert ctx.settings.kubernetes_api_url is None
    return ctx


@pytest.fixture(autouse=True)
def fresh(kube, aks_api):
    """Module-scoped emulators, back at their seeded state (objects, faults, request log) for every test."""
    kube.reset()
    aks_api.reset()


@pytest.fixture(scope="module")
def flux(dev_platform):
    """The Flux objects the repository declares for dev (names are never hard-coded here)."""
    from shared.local.sandbox.declared import flux_objects

    declared = flux_objects(dev_platform.name)
    kustomizations = [d for d in declared if d.kind == "Kustomization"]
    releasing = next(k for k in kustomizations if any(o["kind"] == "HelmRelease" for o in k.applies))
    return {"namespace": kustomizations[0].namespace, "kustomizations": [k.name for k in kustomizations],
            "layer": kustomizations[-1].name, "releasing": releasing.name}


@pytest.fixture(scope="module")
def cluster(kube, dev_platform):
    return sandbox_context(dev_platform, kube).cluster


def direct(url: str, credential=None, page_size: int = 250) -> KubernetesCluster:
    return KubernetesCluster(url, credential or StaticTokenCredential(), HttpOptions(max_retries=0, timeout=2),
                             page_size=page_size)


# -- happy paths -----------------------------------------------------------------------------


def test_build_from_the_context_uses_an_entra_token_for_the_aks_server_app(kube, dev_platform):
    credential = StaticTokenCredential("aks-entra-token")
    cluster = sandbox_context(dev_platform, kube, credential=credential).cluster

    assert cluster.probe().startswith("Kubernetes v1.32")
    assert credential.scopes == [AKS_SCOPE]
    assert kube.tokens_seen[-1] == "aks-entra-token"


def test_https_with_the_sandbox_ca_bundle_works(dev_platform, sandbox_ca):
    emulator = KubernetesEmulator(dev_platform, tls=True)
    emulator.start(sandbox_ca)
    try:
        cluster = KubernetesCluster(emulator.base_url, StaticTokenCredential(),
                                    HttpOptions(max_retries=0, timeout=2, ca_bundle=str(sandbox_ca.ca_path)))
        assert emulator.base_url.startswith("https://") and cluster.probe().startswith("Kubernetes")
        with pytest.raises(PermanentError, match="TLS"):  # without the bundle, verification fails for good
            direct(emulator.base_url).probe()
    finally:
        emulator.stop()


def test_the_token_is_asked_for_again_when_it_is_about_to_expire(kube):
    short_lived = StaticTokenCredential(lifetime=60)  # inside the refresh margin: refresh on every call
    cluster = direct(kube.base_url, short_lived)
    cluster.probe()
    cluster.probe()
    assert len(short_lived.scopes) >= 2

    long_lived = StaticTokenCredential(lifetime=3600)
    cluster = direct(kube.base_url, long_lived)
    cluster.probe()
    cluster.probe()
    assert long_lived.scopes == [AKS_SCOPE]


def test_nodes_are_selected_by_agent_pool_with_the_aks_labels_and_taints(cluster, kube, dev_platform):
    system = cluster.nodes("kubernetes.azure.com/agentpool=system")
    assert len(system) == 2
    assert system[0]["spec"]["taints"][0]["key"] == "CriticalAddonsOnly"

    pool = dev_platform.gpu_pools[0]
    assert cluster.nodes(f"kubernetes.azure.com/agentpool={pool.name}") == []  # dev runs GPU pools at min 0
    kube.scale_pool(pool.name, 3)
    gpu = cluster.nodes(f"kubernetes.azure.com/agentpool={pool.name}")
    assert len(gpu) == 3
    labels = gpu[0]["metadata"]["labels"]
    assert labels["node.kubernetes.io/instance-type"] == pool.vm_size
    assert labels[f"{dev_platform.node_label_prefix}/gpu-vendor"] == pool.vendor
    assert labels[f"{dev_platform.node_label_prefix}/gpu-pool"] == pool.name
    assert gpu[0]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert len(cluster.nodes("kubernetes.azure.com/agentpool in (system, " + pool.name + ")")) == 5
    kube.scale_pool(pool.name, 0)


def test_listing_custom_resources_pages_with_limit_and_continue(kube, flux):
    paged = direct(kube.base_url, page_size=2)

    items = paged.list(KS, "kustomizations", namespace=flux["namespace"])

    assert sorted(i["metadata"]["name"] for i in items) == sorted(flux["kustomizations"])
    pages = -(-len(flux["kustomizations"]) // 2)
    assert sum(1 for r in kube.requests if "continue" in r.query) == pages - 1  # every page after the first


def test_label_selectors_filter_custom_resources_across_namespaces(cluster, flux):
    owned = f"kustomize.toolkit.fluxcd.io/name={flux['releasing']}"
    releases = cluster.list(HR, "helmreleases", label_selector=owned)
    everything = cluster.list(HR, "helmreleases")
    assert releases and all(r["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == flux["releasing"]
                            for r in releases)
    assert len({r["metadata"]["namespace"] for r in everything}) > 1  # across namespaces
    assert cluster.list(HR, "helmreleases", label_selector="!kustomize.toolkit.fluxcd.io/name") == []


def test_get_returns_none_for_a_missing_object(cluster, flux):
    assert cluster.get("v1", "configmaps", "nope", flux["namespace"]) is None
    assert cluster.get(KS, "kustomizations", flux["layer"], flux["namespace"])["metadata"]["name"] == flux["layer"]


def test_a_merge_patch_returns_the_updated_object_with_generation_moved_only_by_spec(cluster, flux):
    name, ns = flux["layer"], flux["namespace"]
    before = cluster.get(KS, "kustomizations", name, ns)
    generation = before["metadata"]["generation"]

    labelled = cluster.patch_merge(KS, "kustomizations", name, {"metadata": {"labels": {"team": "core"}}}, ns)
    changed = cluster.patch_merge(KS, "kustomizations", name, {"spec": {"suspend": True}}, ns)

    assert labelled["metadata"]["generation"] == generation
    assert int(labelled["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert changed["metadata"]["generation"] == generation + 1
    assert changed["spec"]["suspend"] is True and changed["metadata"]["labels"]["team"] == "core"


def test_a_reconcile_request_sets_the_annotation_and_flux_handles_it_later(cluster, kube, flux):
    kube.reconcile_delay = 0.2
    token = f"{time.time()}"

    answer = cluster.request_reconcile(KS, "kustomizations", flux["layer"], flux["namespace"], token)

    assert answer["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"] == token
    assert answer["status"].get("lastHandledReconcileAt") != token  # not yet: Flux takes a moment
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        handled = cluster.get(KS, "kustomizations", flux["layer"], flux["namespace"])["status"]
        if handled.get("lastHandledReconcileAt") == token:
            break
        time.sleep(0.05)
    assert handled.get("lastHandledReconcileAt") == token


# -- errors mapped at the seam ---------------------------------------------------------------------


def test_patching_a_missing_object_is_not_found(cluster, flux):
    with pytest.raises(NotFoundError, match="NotFound"):
        cluster.patch_merge(KS, "kustomizations", "ghost", {"spec": {"suspend": True}}, flux["namespace"])


def test_a_stale_resource_version_in_the_patch_is_a_conflict(cluster, flux):
    with pytest.raises(ConflictError, match="the object has been modified"):
        cluster.patch_merge(KS, "kustomizations", flux["layer"], {"metadata": {"resourceVersion": "1"}},
                            flux["namespace"])


def test_throttling_carries_the_retry_after_the_server_sent(cluster, kube):
    kube.inject(Fault(status=429, code="TooManyRequests", message="too many requests", retry_after=3))
    with pytest.raises(TemporaryError) as err:
        cluster.nodes()
    assert err.value.retry_after == 3


def test_a_server_error_is_temporary(cluster, kube, flux):
    kube.inject(Fault(status=500, code="InternalError", message="etcdserver: request timed out"))
    with pytest.raises(TemporaryError, match="etcdserver"):
        cluster.get(KS, "kustomizations", flux["layer"], flux["namespace"])


def test_unauthorized_is_permanent_with_rbac_advice(cluster, kube):
    kube.inject(Fault(status=401, code="Unauthorized", message="Unauthorized"))
    with pytest.raises(PermanentError) as err:
        cluster.nodes()
    assert "Unauthorized" in str(err.value) and "RBAC" in err.value.remediation


def test_an_empty_token_from_the_credential_is_refused_before_any_request(kube):
    before = len(kube.requests)
    with pytest.raises(PermanentError, match="empty token"):
        direct(kube.base_url, StaticTokenCredential(token="")).nodes()
    assert len(kube.requests) == before


def test_forbidden_names_the_role_to_grant_and_never_shows_the_token(cluster, kube, flux):
    kube.inject(Fault(status=403, code="Forbidden", message='kustomizations is forbidden: token '
                                                            'Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'))
    with pytest.raises(PermanentError) as err:
        cluster.request_reconcile(KS, "kustomizations", flux["layer"], flux["namespace"], "now")
    assert "eyJhbGci" not in str(err.value) and "Azure Kubernetes Service RBAC" in err.value.remediation


def test_an_unreachable_api_server_is_a_temporary_error():
    with pytest.raises(TemporaryError, match="cannot reach"):
        direct(closed_port_url()).probe()


def test_without_an_explicit_url_the_server_and_its_cluster_ca_come_from_aks_on_first_use(
        arm, aks_api, cluster_ca, sandbox_ca, dev_platform):
    arm.reset()
    arm.set_api_server(aks_api.base_url, cluster_ca.ca_path.read_bytes())
    cluster = via_arm(dev_platform, arm, sandbox_ca).cluster
    assert arm.count("POST", r"/listClusterUserCredential$") == 0

    assert len(cluster.nodes("kubernetes.azure.com/agentpool=system")) == 2
    assert cluster.probe() == f"Kubernetes v1.32.4 at {aks_api.base_url}"
    assert arm.count("POST", r"/listClusterUserCredential$") == 1  # once per adapter, not per call

    ca_file = cluster.ca_path
    assert stat.S_IMODE(os.stat(ca_file).st_mode) == 0o600
    with open(ca_file, "rb") as handle:
        assert handle.read() == cluster_ca.ca_path.read_bytes()
    cluster.close()
    assert not os.path.exists(ca_file)


def test_a_cluster_ca_that_does_not_sign_the_server_is_a_tls_error(arm, aks_api, sandbox_ca, dev_platform):
    # The sandbox CA is TLS_CA_BUNDLE, yet it did not sign the API server's certificate: only AKS's CA counts.
    arm.reset()
    arm.set_api_server(aks_api.base_url, sandbox_ca.ca_path.read_bytes())
    with pytest.raises(PermanentError) as caught:
        via_arm(dev_platform, arm, sandbox_ca).cluster.nodes()
    assert caught.value.code == "TlsError" and "cluster CA" in caught.value.remediation


def test_a_refused_credential_listing_stops_before_the_api_server(arm, aks_api, sandbox_ca, dev_platform):
    arm.reset()
    arm.inject(Fault(status=403, method="POST", path=r"/listClusterUserCredential$", code="AuthorizationFailed",
                     message="no listClusterUserCredential/action"))
    before = len(aks_api.requests)
    with pytest.raises(PermanentError) as caught:
        via_arm(dev_platform, arm, sandbox_ca).cluster.nodes()
    assert "Azure Kubernetes Service Cluster User Role" in caught.value.remediation
    assert len(aks_api.requests) == before


def test_importing_the_adapter_does_not_import_the_sdk():
    loaded = imported_modules_after("shared.adapters.kubernetes")
    assert "kubernetes" not in loaded and "urllib3" not in loaded
