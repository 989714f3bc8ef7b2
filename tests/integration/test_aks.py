"""The AKS node-pool adapter through the real azure-mgmt-containerservice SDK against the ARM emulator."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from shared.adapters import HttpOptions
from shared.adapters.aks import AksNodePools, ApiServerEndpoint, NodePool, parse_kubeconfig_endpoint
from shared.errors import ConflictError, NotFoundError, PermanentError, TemporaryError
from shared.local.sandbox.arm import TOTAL_REGIONAL, ArmEmulator, vm_family
from shared.local.sandbox.base import Fault, SandboxCA

pytestmark = pytest.mark.integration
APP_ROOT = __file__.rsplit("/tests/", 1)[0]


def http(sandbox_ca, timeout: float = 2.0) -> HttpOptions:
    return HttpOptions(max_retries=0, timeout=timeout, ca_bundle=str(sandbox_ca.ca_path))


@pytest.fixture(scope="module")
def arm_server(sandbox_ca, dev_platform):
    emulator = ArmEmulator(dev_platform)
    emulator.start(sandbox_ca)
    yield emulator
    emulator.stop()


@pytest.fixture
def arm(arm_server):
    """The module's emulator, back at its seeded estate for every test."""
    arm_server.reset()
    return arm_server


@pytest.fixture
def pools(arm, sandbox_ca, credential, dev_platform) -> AksNodePools:
    return AksNodePools(credential, dev_platform, arm_endpoint=arm.base_url, http=http(sandbox_ca),
                        poll_interval=0)


@pytest.fixture
def gpu(arm, dev_platform):
    """The first GPU pool of the platform file, switched to a manual pool so that count-based scaling
    (the adapter's other path) is exercised; the seeded estate autoscales it as infra declares."""
    pool = dev_platform.gpu_pools[0]
    arm.set_pool(pool.name, enableAutoScaling=False)
    return pool


# -- reads -------------------------------------------------------------------------------------


def declared_non_gpu(platform) -> list[str]:
    from shared.local.sandbox.declared import cluster_pools

    return [d.name for d in cluster_pools(platform.name)]


def test_listing_node_pools_follows_next_link_across_pages(pools, arm, dev_platform):
    listed = pools.list()

    # The sandbox holds the declared estate: platform.yaml's system and CPU pools, then the GPU pools.
    gpu_names = sorted(p.name for p in dev_platform.gpu_pools)
    assert [p.name for p in listed] == [*declared_non_gpu(dev_platform), *gpu_names]
    assert all(isinstance(p, NodePool) for p in listed)
    pages = arm.count("GET", r"/agentPools$")
    assert pages == -(-len(listed) // arm.page_size) >= 2  # ceil: one GET per page of two


def test_a_gpu_pool_reads_with_its_size_taints_labels_and_bounds(pools, dev_platform):
    gpu = dev_platform.gpu_pools[0]
    pool = pools.get(gpu.name)

    assert pool.vm_size == gpu.vm_size
    assert (pool.count, pool.min_count, pool.max_count) == (gpu.min_count, gpu.min_count, gpu.max_count)
    assert pool.autoscaling and pool.mode == "User"  # as infra/modules/aks declares GPU pools
    assert pool.taints == (f"{'nvidia' if gpu.vendor == 'nvidia' else 'amd'}.com/gpu=present:NoSchedule",)
    prefix = pools.platform.node_label_prefix  # the labels infra/modules/aks sets
    assert pool.label_map[f"{prefix}/gpu-pool"] == gpu.name
    assert pool.label_map[f"{prefix}/gpu-vendor"] == gpu.vendor
    assert pool.mig_profile == gpu.mig_profile
    assert (pool.provisioning_state, pool.power_state, pool.busy) == ("Succeeded", "Running", False)
    assert pool.etag


def test_an_unknown_pool_is_not_found(pools):
    with pytest.raises(NotFoundError):
        pools.get("nosuchpool")


def test_the_api_server_url_is_the_clusters_fqdn(pools, arm):
    url = pools.api_server_url()

    assert url == f"https://{arm._cluster['properties']['fqdn']}"
    assert url.endswith(".hcp.uaenorth.azmk8s.io")


def test_a_private_cluster_gives_its_private_fqdn(pools, arm):
    arm.reset(private_cluster=True)

    assert pools.api_server_url() == f"https://{arm._cluster['properties']['privateFQDN']}"
    assert ".privatelink.uaenorth.azmk8s.io" in pools.api_server_url()


def test_the_api_server_endpoint_is_the_fqdn_and_cluster_ca_from_the_user_kubeconfig(pools, arm, sandbox_ca):
    endpoint = pools.api_server_endpoint()

    assert endpoint == ApiServerEndpoint(f"https://{arm._cluster['properties']['fqdn']}:443",
                                         sandbox_ca.ca_path.read_bytes())
    assert arm.count("POST", r"/listClusterUserCredential$") == 1
    assert "BEGIN CERTIFICATE" not in repr(endpoint)  # the PEM stays out of logs and reprs


def test_the_api_server_endpoint_follows_what_the_cluster_advertises(pools, arm, tmp_path):
    cluster_ca = SandboxCA(tmp_path).ca_path.read_bytes()
    arm.set_api_server("https://127.0.0.1:6443", cluster_ca)

    assert pools.api_server_endpoint() == ApiServerEndpoint("https://127.0.0.1:6443", cluster_ca)

    arm.reset(private_cluster=True)
    assert pools.api_server_endpoint().url == f"https://{arm._cluster['properties']['privateFQDN']}:443"


def test_a_forbidden_credential_listing_names_the_cluster_user_role(pools, arm):
    arm.inject(Fault(status=403, method="POST", path=r"/listClusterUserCredential$", code="AuthorizationFailed",
                     message="The client does not have authorization to perform action 'Microsoft."
                             "ContainerService/managedClusters/listClusterUserCredential/action'"))

    with pytest.raises(PermanentError) as caught:
        pools.api_server_endpoint()

    assert caught.value.code == "AuthorizationFailed"
    assert "Azure Kubernetes Service Cluster User Role" in caught.value.remediation
    assert "Contributor" not in caught.value.remediation


def test_a_broken_kubeconfig_is_permanent_and_never_quoted():
    secret = "token: eyJhbGciOiJSUzI1NiJ9.c2VjcmV0"
    for text in (f"clusters: [\n  {secret}\n  - : :", f"users: [{{user: {{{secret}}}}}]\n",
                 "clusters: [{cluster: {server: 'https://x:443', certificate-authority-data: '!!'}}]"):
        with pytest.raises(PermanentError) as caught:
            parse_kubeconfig_endpoint(text)
        assert caught.value.code == "InvalidKubeconfig"
        assert "eyJhbGci" not in str(caught.value) and caught.value.__cause__ is None


def test_the_probe_is_one_human_line_with_every_pool(pools, dev_platform):
    line = pools.probe()

    pools_declared = len(declared_non_gpu(dev_platform)) + len(dev_platform.gpu_pools)
    assert line.startswith(f"{pools_declared} node pools in {dev_platform.cluster_name} (")
    for gpu in dev_platform.gpu_pools:
        assert f"{gpu.name}: {gpu.min_count} node" in line


# -- scaling -----------------------------------------------------------------------------------


def test_scaling_a_manual_pool_sets_its_count_through_the_long_running_operation(pools, arm, gpu):
    target = min(gpu.max_count, gpu.min_count + 1)

    pool = pools.scale(gpu.name, count=target)

    assert (pool.count, pool.provisioning_state, pool.busy) == (target, "Succeeded", False)
    assert arm.pool(gpu.name)["properties"]["count"] == target
    assert arm.count("GET", r"/operations/") >= 1  # the poller followed Azure-AsyncOperation


def test_scaling_to_the_current_count_sends_nothing(pools, arm, gpu):
    pools.scale(gpu.name, count=gpu.min_count)

    assert arm.count("PUT") == 0


def test_scaling_without_waiting_returns_the_pool_while_it_is_still_scaling(pools, arm, gpu):
    arm.operation_seconds = 60

    pool = pools.scale(gpu.name, count=gpu.min_count + 1, wait=False)

    assert (pool.count, pool.provisioning_state, pool.busy) == (gpu.min_count + 1, "Scaling", True)
    assert arm.count("GET", r"/operations/") == 0
    assert pools.get(gpu.name).busy


def test_a_second_scale_while_one_runs_is_a_temporary_error_with_retry_after(pools, arm, gpu):
    arm.operation_seconds = 60
    pools.scale(gpu.name, count=gpu.min_count + 1, wait=False)

    with pytest.raises(TemporaryError) as caught:
        pools.scale(gpu.name, count=gpu.min_count + 2, wait=False)

    assert caught.value.code == "OperationNotAllowed"
    assert caught.value.retry_after == 30  # AKS sent no Retry-After: our default
    assert "in progress" in str(caught.value)


def test_an_in_progress_409_with_retry_after_uses_the_servers_delay(pools, arm, gpu):
    arm.inject(Fault(status=409, method="PUT", path=f"/agentPools/{gpu.name}$", code="OperationNotAllowed",
                     message="Operation is not allowed because there's an in progress scale node pool operation",
                     retry_after=12))

    with pytest.raises(TemporaryError) as caught:
        pools.scale(gpu.name, count=gpu.min_count + 1)

    assert (caught.value.code, caught.value.retry_after) == ("OperationNotAllowed", 12)


def test_scaling_an_autoscaling_pool_moves_min_and_max_and_keeps_count(pools, arm):
    before = pools.get("system")
    assert before.autoscaling

    after = pools.scale("system", min_count=before.min_count, max_count=before.max_count + 2)

    assert (after.count, after.min_count, after.max_count) == (before.count, before.min_count, before.max_count + 2)
    assert arm.pool("system")["properties"]["enableAutoScaling"] is True


def test_a_count_for_an_autoscaling_pool_becomes_its_new_floor_and_the_autoscaler_reaches_it_later(pools, arm):
    # Fixed: the emulator used to set count = minCount inside the PUT; AKS leaves count to the autoscaler.
    arm.autoscaler_delay = 0.3
    before = pools.get("system")

    after = pools.scale("system", count=before.max_count + 1)

    assert after.min_count == after.max_count == before.max_count + 1
    assert after.count == before.count  # the operation itself does not scale
    assert after.autoscaling
    deadline = time.monotonic() + 5
    while pools.get("system").count != before.max_count + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pools.get("system").count == before.max_count + 1  # the autoscaler scaled up to the new floor


def test_exceeding_core_quota_is_a_permanent_quota_error_with_remediation(pools, arm, gpu):
    arm.set_quota(gpu.vm_size, 0)

    with pytest.raises(PermanentError) as caught:
        pools.scale(gpu.name, count=gpu.min_count + 1)

    error = caught.value
    assert error.code == "QuotaExceeded"
    assert vm_family(gpu.vm_size) in error.remediation and "standard" in error.remediation
    assert "uaenorth" in error.remediation and "fall back to another pool" in error.remediation
    assert arm.pool(gpu.name)["properties"]["count"] == gpu.min_count


def test_exceeding_the_total_regional_quota_names_that_quota(pools, arm, gpu):
    arm.set_quota(TOTAL_REGIONAL, 0)

    with pytest.raises(PermanentError) as caught:
        pools.scale(gpu.name, count=gpu.min_count + 1)

    assert caught.value.code == "QuotaExceeded"
    assert "request more Total Regional cores quota in uaenorth" in caught.value.remediation


@pytest.mark.parametrize("status, code, quota", [
    (409, "OperationNotAllowed", "standardNCADSH100v5Family"),  # Compute's own answer
    (400, "QuotaExceeded", "Total Regional"),  # AKS's preflight wrapping it
])
def test_the_real_quota_message_forms_are_recognised(pools, arm, gpu, status, code, quota):
    arm.inject(status=status, code=code, method="PUT", path="agentPools", message=(
        "Operation could not be completed as it results in exceeding approved "
        f"{quota} Cores quota. Additional details - Deployment Model: Resource Manager, Location: uaenorth, "
        "Current Limit: 0, Current Usage: 0, Additional Required: 40, (Minimum) New Limit Required: 40."))

    with pytest.raises(PermanentError) as caught:
        pools.scale(gpu.name, count=gpu.min_count + 1)

    assert caught.value.code == "QuotaExceeded"
    assert f"request more {quota} cores quota" in caught.value.remediation


def test_scaling_in_is_allowed_even_over_quota(pools, arm, gpu):
    arm.set_pool(gpu.name, count=gpu.min_count + 1)
    arm.set_quota(vm_family(gpu.vm_size), 0)

    assert pools.scale(gpu.name, count=gpu.min_count).count == gpu.min_count


def test_a_stale_etag_is_a_conflict_and_the_current_one_goes_through(pools, arm, gpu):
    seen = pools.get(gpu.name)
    arm.set_pool(gpu.name, count=gpu.min_count + 1)  # someone else scaled it meanwhile

    with pytest.raises(ConflictError):
        pools.scale(gpu.name, count=gpu.min_count + 2, expected_etag=seen.etag)

    fresh = pools.get(gpu.name)
    assert pools.scale(gpu.name, count=gpu.min_count + 2, expected_etag=fresh.etag).count == gpu.min_count + 2
    assert [r.status for r in arm.requests if r.method == "PUT"] == [412, 200]


def test_an_operation_that_fails_after_acceptance_is_a_permanent_error(pools, arm, gpu):
    arm.fail_next_operation("InternalOperationError", "the node pool could not be scaled")

    with pytest.raises(PermanentError) as caught:
        pools.scale(gpu.name, count=gpu.min_count + 1)

    assert caught.value.code == "InternalOperationError"
    assert arm.pool(gpu.name)["properties"]["provisioningState"] == "Failed"


def test_a_gpu_allocation_failure_is_temporary(pools, arm, gpu):
    arm.fail_next_operation("ZonalAllocationFailed", "Allocation failed. We do not have sufficient capacity")

    with pytest.raises(TemporaryError) as caught:
        pools.scale(gpu.name, count=gpu.min_count + 1)

    assert caught.value.code == "ZonalAllocationFailed"


# -- faults ------------------------------------------------------------------------------------


def test_throttling_is_temporary_with_the_servers_retry_after(pools, arm, gpu):
    arm.inject(Fault(status=429, method="GET", path=f"/agentPools/{gpu.name}$", code="TooManyRequests",
                     message="too many requests", retry_after=7))

    with pytest.raises(TemporaryError) as caught:
        pools.get(gpu.name)

    assert caught.value.retry_after == 7


def test_a_server_error_is_temporary(pools, arm):
    arm.inject(Fault(status=500, path=r"/agentPools$", code="InternalServerError", message="boom"))

    with pytest.raises(TemporaryError):
        pools.list()


def test_a_refused_token_is_permanent_with_role_remediation(pools, arm, gpu):
    arm.accepted_tokens = {"some-other-token"}

    with pytest.raises(PermanentError) as caught:
        pools.get(gpu.name)

    assert "Azure Kubernetes Service Contributor Role" in caught.value.remediation
    assert "sandbox-token" not in str(caught.value)


def test_a_forbidden_answer_is_permanent(pools, arm, gpu):
    arm.inject(Fault(status=403, path=f"/agentPools/{gpu.name}$", code="AuthorizationFailed",
                     message="The client does not have authorization to perform action"))

    with pytest.raises(PermanentError) as caught:
        pools.get(gpu.name)

    assert caught.value.code == "AuthorizationFailed"


def test_an_answer_slower_than_the_timeout_is_temporary(arm, sandbox_ca, credential, dev_platform, gpu):
    adapter = AksNodePools(credential, dev_platform, arm_endpoint=arm.base_url, http=http(sandbox_ca, timeout=0.5))
    arm.inject(Fault(status=None, path=f"/agentPools/{gpu.name}$", delay=1.0))

    with pytest.raises(TemporaryError):
        adapter.get(gpu.name)


# -- wiring ------------------------------------------------------------------------------------


def test_the_context_builds_the_adapter_from_the_sandbox_settings(arm, sandbox_ca, credential, dev_platform):
    from shared.context import Context
    from shared.settings import Settings

    settings = Settings.from_env({
        "PLATFORM_ENV": dev_platform.name, "PLATFORM_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "AZURE_CREDENTIAL": "static", "TLS_CA_BUNDLE": str(sandbox_ca.ca_path), "SDK_MAX_RETRIES": "0",
        **arm.settings_env(),
    })
    ctx = Context(settings=settings, platform=dev_platform, credential=credential)

    assert ctx.node_pools.get("system").mode == "System"
    assert credential.scopes[0] == "https://management.azure.com/.default"


def test_importing_the_adapter_does_not_import_the_sdk():
    code = ("import shared.adapters.aks, sys; "
            "assert 'azure.mgmt.containerservice' not in sys.modules; assert 'azure.core' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=APP_ROOT, check=True, timeout=30)
