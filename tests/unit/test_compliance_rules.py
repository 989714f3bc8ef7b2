"""Compliance rules: for every rule a failing and a passing object (table-driven, keyed by behaviour).

The Pod Security Standards cases follow the standard's field lists and allowed values
(https://kubernetes.io/docs/concepts/security/pod-security-standards/), including init and ephemeral
containers, so that upstream fixtures (Kyverno's pod-security tests) agree with us.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from shared.services.compliance import rules as r

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
REGISTRY = "acrtest.azurecr.io"
FACTS = r.PlatformFacts(
    env="dev-uaenorth", registry=REGISTRY, node_label_prefix="platform.example.com",
    gpu_pools=(r.GpuPoolFacts("h100", "nvidia", None, "nvidia.com/gpu=present:NoSchedule"),
               r.GpuPoolFacts("a100mig", "nvidia", "MIG1g", "nvidia.com/gpu=present:NoSchedule")),
    serving_workloads=frozenset({"model-serving/vllm"}),
    certificates=(r.CertificateFacts("origin-test", 30, ("gateways/origin-test",)),))
DENY_ALL = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "apps"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
DIGEST = "sha256:" + "a" * 64


def container(name: str = "app") -> dict[str, Any]:
    return {"name": name, "image": f"{REGISTRY}/team/app:1.0",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}


def good_pod() -> dict[str, Any]:
    """Compliant with every rule (restricted and platform)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [container()]}}


def rules_on(obj: dict[str, Any], *extra: dict[str, Any], facts: r.PlatformFacts = FACTS) -> set[str]:
    return {f.rule for f in r.evaluate([obj, DENY_ALL, *extra], facts, NOW)}


Mutation = Callable[[dict[str, Any]], None]


def spec(**values: Any) -> Mutation:
    return lambda pod: pod["spec"].update(values)


def pod_sc(**values: Any) -> Mutation:
    return lambda pod: pod["spec"]["securityContext"].update(values)


def sc(**values: Any) -> Mutation:
    return lambda pod: pod["spec"]["containers"][0]["securityContext"].update(values)


def unset_sc(*keys: str) -> Mutation:
    def apply(pod: dict[str, Any]) -> None:
        for key in keys:
            pod["spec"]["containers"][0]["securityContext"].pop(key, None)
    return apply


def extra_container(field: str, **security: Any) -> Mutation:
    def apply(pod: dict[str, Any]) -> None:
        c = container(field.lower())
        c["securityContext"].update(security)
        if field == "ephemeralContainers":
            c.pop("resources")
        pod["spec"].setdefault(field, []).append(c)
    return apply


def volume(**source: Any) -> Mutation:
    return lambda pod: pod["spec"].setdefault("volumes", []).append({"name": "v", **source})


def annotations(**values: str) -> Mutation:
    return lambda pod: pod["metadata"].setdefault("annotations", {}).update(values)


def both(*mutations: Mutation) -> Mutation:
    def apply(pod: dict[str, Any]) -> None:
        for m in mutations:
            m(pod)
    return apply


APPARMOR = "container.apparmor.security.beta.kubernetes.io/app"
CASES: dict[str, tuple[str, Mutation, Mutation]] = {
    # behaviour: (rule, failing change, passing change)
    "a hostProcess pod is refused, hostProcess false passes": (
        "disallow-host-process", pod_sc(windowsOptions={"hostProcess": True}),
        pod_sc(windowsOptions={"hostProcess": False})),
    "a hostProcess ephemeral container is refused": (
        "disallow-host-process", extra_container("ephemeralContainers", windowsOptions={"hostProcess": True}),
        extra_container("ephemeralContainers")),
    "hostNetwork is refused, false passes": ("disallow-host-namespaces", spec(hostNetwork=True),
                                             spec(hostNetwork=False)),
    "hostPID is refused": ("disallow-host-namespaces", spec(hostPID=True), spec(hostPID=False)),
    "hostIPC is refused": ("disallow-host-namespaces", spec(hostIPC=True), spec(hostIPC=False)),
    "a privileged init container is refused": (
        "disallow-privileged-containers", extra_container("initContainers", privileged=True),
        extra_container("initContainers", privileged=False)),
    "adding SYS_ADMIN is refused, adding CHOWN (a default) passes baseline": (
        "disallow-capabilities", sc(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        sc(capabilities={"add": ["CHOWN"]})),
    "a hostPath volume is refused": ("disallow-host-path", volume(hostPath={"path": "/etc"}), volume(emptyDir={})),
    "a host port is refused, hostPort 0 passes": (
        "disallow-host-ports", lambda p: p["spec"]["containers"][0].update(ports=[{"containerPort": 80,
                                                                                   "hostPort": 8080}]),
        lambda p: p["spec"]["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 0}])),
    "an unconfined AppArmor annotation is refused, localhost/ passes": (
        "restrict-apparmor-profiles", annotations(**{APPARMOR: "unconfined"}),
        annotations(**{APPARMOR: "localhost/k8s-apparmor-example"})),
    "an Unconfined appArmorProfile field is refused, RuntimeDefault passes": (
        "restrict-apparmor-profiles", sc(appArmorProfile={"type": "Unconfined"}),
        pod_sc(appArmorProfile={"type": "RuntimeDefault"})),
    "a custom SELinux type is refused, container_init_t passes": (
        "disallow-selinux", sc(seLinuxOptions={"type": "spc_t"}), sc(seLinuxOptions={"type": "container_init_t"})),
    "container_engine_t is allowed (the standard since Kubernetes 1.31; Kyverno's policy predates it)": (
        "disallow-selinux", pod_sc(seLinuxOptions={"type": "unconfined_t"}),
        sc(seLinuxOptions={"type": "container_engine_t"})),
    "an SELinux user on the pod is refused, an empty one passes": (
        "disallow-selinux", pod_sc(seLinuxOptions={"user": "system_u"}), pod_sc(seLinuxOptions={"user": "",
                                                                                                  "level": "s0"})),
    "an SELinux role is refused": ("disallow-selinux", sc(seLinuxOptions={"role": "sysadm_r"}),
                                   sc(seLinuxOptions={"level": "s0:c123,c456"})),
    "procMount Unmasked is refused, Default passes": ("disallow-proc-mount", sc(procMount="Unmasked"),
                                                       sc(procMount="Default")),
    "an Unconfined seccomp profile is refused, Localhost passes": (
        "restrict-seccomp", sc(seccompProfile={"type": "Unconfined"}),
        sc(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})),
    "an unsafe sysctl is refused, a safe one (incl. later additions) passes": (
        "restrict-sysctls", pod_sc(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        pod_sc(sysctls=[{"name": "net.ipv4.tcp_keepalive_time", "value": "60"},
                        {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}])),
    "an nfs volume is refused in restricted, a PVC passes": (
        "restrict-volume-types", volume(nfs={"server": "x", "path": "/"}), volume(persistentVolumeClaim={
            "claimName": "c"})),
    "a hostPath volume is refused in restricted too": ("restrict-volume-types", volume(hostPath={"path": "/"}),
                                                       volume(csi={"driver": "blob.csi.azure.com"})),
    "allowPrivilegeEscalation unset is refused, false passes": (
        "disallow-privilege-escalation", unset_sc("allowPrivilegeEscalation"), sc(allowPrivilegeEscalation=False)),
    "an ephemeral container allowing escalation is refused": (
        "disallow-privilege-escalation", extra_container("ephemeralContainers", allowPrivilegeEscalation=True),
        extra_container("ephemeralContainers")),
    "runAsNonRoot unset everywhere is refused, true on every container passes": (
        "require-run-as-nonroot", lambda p: p["spec"]["securityContext"].pop("runAsNonRoot"),
        both(lambda p: p["spec"]["securityContext"].pop("runAsNonRoot"), sc(runAsNonRoot=True))),
    "runAsNonRoot false on the pod is refused even when containers say true": (
        "require-run-as-nonroot", both(pod_sc(runAsNonRoot=False), sc(runAsNonRoot=True)), sc(runAsNonRoot=True)),
    "a container with runAsNonRoot false is refused under a true pod": (
        "require-run-as-nonroot", extra_container("initContainers", runAsNonRoot=False),
        extra_container("initContainers")),
    "runAsUser 0 is refused, a non-zero user passes": ("require-run-as-non-root-user", sc(runAsUser=0),
                                                       sc(runAsUser=1000)),
    "runAsUser 0 on the pod is refused": ("require-run-as-non-root-user", pod_sc(runAsUser=0), pod_sc(runAsUser=10)),
    "no seccomp profile anywhere is refused, RuntimeDefault on each container passes": (
        "restrict-seccomp-strict", lambda p: p["spec"]["securityContext"].pop("seccompProfile"),
        both(lambda p: p["spec"]["securityContext"].pop("seccompProfile"),
             sc(seccompProfile={"type": "RuntimeDefault"}))),
    "capabilities not dropping ALL are refused, NET_BIND_SERVICE added to drop ALL passes": (
        "disallow-capabilities-strict", sc(capabilities={"drop": ["NET_RAW"]}),
        sc(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})),
    "adding CHOWN is refused in restricted": ("disallow-capabilities-strict",
                                              sc(capabilities={"drop": ["ALL"], "add": ["CHOWN"]}),
                                              sc(capabilities={"drop": ["ALL"]})),
    # platform rules
    "an image from another registry is refused": (
        "platform-image-registry", lambda p: p["spec"]["containers"][0].update(image="docker.io/library/nginx:1"),
        lambda p: p["spec"]["containers"][0].update(image=f"{REGISTRY}/library/nginx:1")),
    "a container without limits is refused": (
        "platform-requests-limits", lambda p: p["spec"]["containers"][0]["resources"].pop("limits"),
        lambda p: p["spec"]["containers"][0]["resources"]["limits"].update(cpu="2")),
    "a non-GPU pod tolerating the GPU taint is refused, a GPU pod passes": (
        "platform-gpu-toleration",
        spec(tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]),
        both(spec(tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]),
             lambda p: p["spec"]["containers"][0]["resources"]["limits"].update({"nvidia.com/gpu": "1"}),
             lambda p: p["spec"]["containers"][0].update(image=f"{REGISTRY}/m@{DIGEST}"))),
    "tolerating every taint counts as tolerating the GPU taint": (
        "platform-gpu-toleration", spec(tolerations=[{"operator": "Exists"}]),
        spec(tolerations=[{"key": "CriticalAddonsOnly", "operator": "Exists"}])),
    "a model-serving image by tag is refused, by digest passes": (
        "platform-model-image-digest",
        lambda p: p["metadata"].update(labels={"app.kubernetes.io/component": "model-serving"}),
        lambda p: p["spec"]["containers"][0].update(image=f"{REGISTRY}/vllm/vllm-openai@{DIGEST}")),
}


@pytest.mark.parametrize("behaviour", CASES)
def test_each_rule_flags_the_failing_object_and_passes_the_compliant_one(behaviour):
    rule, failing, passing = CASES[behaviour]
    bad, ok = good_pod(), good_pod()
    failing(bad)
    passing(ok)
    if rule == "platform-model-image-digest":  # serving is by label in the failing case only
        ok["metadata"]["labels"] = {"app.kubernetes.io/component": "model-serving"}
    assert rule in rules_on(bad), behaviour
    assert rule not in rules_on(ok), (behaviour, rules_on(ok))


def test_the_compliant_pod_has_no_finding_at_all():
    assert rules_on(good_pod()) == set()


def test_every_pod_rule_has_a_case():
    covered = {rule for rule, _, _ in CASES.values()}
    assert set(r.POD_RULES) <= covered


def test_windows_pods_are_exempt_from_the_linux_only_restricted_controls():
    pod = good_pod()
    pod["spec"]["os"] = {"name": "windows"}
    pod["spec"]["securityContext"].pop("seccompProfile")
    pod["spec"]["containers"][0]["securityContext"] = {}
    assert not rules_on(pod) & {"disallow-privilege-escalation", "restrict-seccomp-strict",
                                "disallow-capabilities-strict"}


def test_baseline_is_high_and_restricted_medium():
    for rule, _ in r.POD_RULES.values():
        assert rule.severity == {"baseline": "high", "restricted": "medium"}[rule.profile], rule.id
        assert rule.source.startswith(r.PSS_URL)


def _template(kind: str, pod: dict[str, Any]) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": pod["spec"]}
    body: dict[str, Any] = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w", "namespace": "apps"}}
    if kind == "CronJob":
        body["spec"] = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    else:
        body["spec"] = {"template": template}
    return body


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"])
def test_rules_apply_to_the_pod_templates_of_workload_controllers(kind):
    pod = good_pod()
    pod["spec"]["hostPID"] = True
    findings = r.evaluate([_template(kind, pod), DENY_ALL], FACTS, NOW)
    assert [(f.rule, f.resource) for f in findings] == [("disallow-host-namespaces", f"{kind.lower()}/apps/w")]


def test_a_pod_owned_by_a_controller_is_judged_through_its_owner_only():
    pod = good_pod()
    pod["spec"]["hostPID"] = True
    pod["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "w-1", "controller": True}]
    assert rules_on(pod) == set()
    assert "disallow-host-namespaces" in {f.rule for f in r.evaluate([pod, DENY_ALL], FACTS, NOW,
                                                                    owned_by_controllers=False)}


def test_kubernetes_own_namespaces_are_outside_the_workload_rules():
    pod = good_pod()
    pod["metadata"]["namespace"] = "kube-system"
    pod["spec"]["hostNetwork"] = True
    assert r.evaluate([pod], FACTS, NOW) == []


def test_a_model_serving_deployment_named_in_platform_yaml_needs_the_registry_and_a_digest():
    pod = good_pod()
    pod["spec"]["containers"][0]["image"] = "ghcr.io/vllm/vllm-openai:v0.12.0"
    deployment = _template("Deployment", pod)
    deployment["metadata"] = {"name": "vllm", "namespace": "model-serving"}
    deny = copy.deepcopy(DENY_ALL)
    deny["metadata"]["namespace"] = "model-serving"
    found = {f.rule: f.severity for f in r.evaluate([deployment, deny], FACTS, NOW)}
    assert found == {"platform-image-registry-serving": "high", "platform-model-image-digest": "high"}


def test_without_a_registry_fact_the_registry_rule_is_skipped():
    pod = good_pod()
    pod["spec"]["containers"][0]["image"] = "docker.io/nginx:1"
    assert rules_on(pod, facts=r.PlatformFacts()) == set()


# -- namespace, node, network, TLS, Flux, Kyverno ------------------------------------------------------------


def test_a_namespace_with_workloads_and_no_default_deny_is_a_finding():
    allow_only = {"kind": "NetworkPolicy", "metadata": {"name": "allow", "namespace": "apps"},
                  "spec": {"podSelector": {"matchLabels": {"app": "x"}}, "ingress": [{}]}}
    ingress_only = {"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "apps"},
                    "spec": {"podSelector": {}}}
    found = r.evaluate([good_pod(), allow_only], FACTS, NOW)
    assert [(f.rule, f.resource) for f in found] == [("platform-default-deny", "namespace/apps")]
    found = r.evaluate([good_pod(), ingress_only], FACTS, NOW)
    assert "Egress" in found[0].message and "Ingress" not in found[0].message.split("for")[-1]
    assert r.evaluate([good_pod(), DENY_ALL], FACTS, NOW) == []


def node(pool: str, taints: list[dict[str, str]], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": "Node", "metadata": {"name": f"aks-{pool}-0", "labels": {
        "kubernetes.azure.com/agentpool": pool, **(labels or {})}}, "spec": {"taints": taints}}


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def test_a_gpu_node_without_its_pool_taint_is_a_finding():
    assert [f.rule for f in r.evaluate([node("h100", [])], FACTS, NOW)] == ["platform-gpu-node-taint"]
    assert r.evaluate([node("h100", [GPU_TAINT])], FACTS, NOW) == []
    assert r.evaluate([node("cpu", [])], FACTS, NOW) == []  # not a GPU pool


def test_a_node_with_gpus_outside_the_declared_pools_still_needs_the_taint():
    stray = node("other", [])
    stray["status"] = {"capacity": {"amd.com/gpu": "8"}}
    assert [f.rule for f in r.evaluate([stray], FACTS, NOW)] == ["platform-gpu-node-taint"]


def test_the_mig_profile_on_the_node_must_be_the_declared_one():
    label = "platform.example.com/mig-profile"
    wrong = node("a100mig", [GPU_TAINT], {label: "MIG3g"})
    right = node("a100mig", [GPU_TAINT], {label: "MIG1g"})
    unexpected = node("h100", [GPU_TAINT], {label: "MIG1g"})
    assert [f.rule for f in r.evaluate([wrong], FACTS, NOW)] == ["platform-mig-profile"]
    assert r.evaluate([right], FACTS, NOW) == []
    assert [f.rule for f in r.evaluate([unexpected], FACTS, NOW)] == ["platform-mig-profile"]


def test_an_ingress_needs_tls_for_every_host():
    ing = {"kind": "Ingress", "metadata": {"name": "web", "namespace": "apps"},
           "spec": {"rules": [{"host": "a.example.com"}, {"host": "b.example.com"}],
                    "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}]}}
    found = [f for f in r.evaluate([ing], FACTS, NOW, source="gitops") if f.rule == "platform-ingress-tls"]
    assert len(found) == 1 and "b.example.com" in found[0].message
    ing["spec"]["tls"][0]["hosts"] = ["*.example.com"]
    assert not [f for f in r.evaluate([ing], FACTS, NOW, source="gitops") if f.rule == "platform-ingress-tls"]


def test_an_httproute_on_a_plain_http_listener_is_a_finding():
    gateway = {"kind": "Gateway", "metadata": {"name": "public", "namespace": "gateways"},
               "spec": {"listeners": [
                   {"name": "http", "port": 80, "protocol": "HTTP"},
                   {"name": "https", "port": 443, "protocol": "HTTPS",
                    "tls": {"certificateRefs": [{"kind": "Secret", "name": "origin-test"}]}}]}}
    route = {"kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "apps"},
             "spec": {"parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "http"}]}}
    found = r.evaluate([gateway, route], FACTS, NOW, source="gitops")
    assert [f.rule for f in found] == ["platform-ingress-tls"]
    route["spec"]["parentRefs"][0]["sectionName"] = "https"
    assert r.evaluate([gateway, route], FACTS, NOW, source="gitops") == []


@pytest.fixture(scope="module")
def certificate_secret() -> Callable[[int, int], dict[str, Any]]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])

    def make(issued_days_ago: int, days_left: int) -> dict[str, Any]:
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(NOW - dt.timedelta(days=issued_days_ago))
                .not_valid_after(NOW + dt.timedelta(days=days_left)).sign(key, hashes.SHA256()))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return {"kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": "origin-test", "namespace": "gateways"},
                "data": {"tls.crt": base64.b64encode(pem).decode()}}
    return make


@pytest.mark.parametrize(("issued", "left", "expected"), [
    (10, 80, None),          # fresh
    (70, 20, "high"),        # inside renew_before_days (30)
    (100, -1, "critical"),   # expired
])
def test_the_origin_certificate_a_gateway_serves_must_not_be_near_expiry(certificate_secret, issued, left, expected):
    gateway = {"kind": "Gateway", "metadata": {"name": "public", "namespace": "gateways"},
               "spec": {"listeners": [{"name": "https", "port": 443, "protocol": "HTTPS",
                                       "tls": {"certificateRefs": [{"name": "origin-test"}]}}]}}
    found = [f for f in r.evaluate([gateway, certificate_secret(issued, left)], FACTS, NOW)
             if f.rule == "platform-origin-certificate-expiry"]
    assert [f.severity for f in found] == ([expected] if expected else [])


def test_a_missing_tls_secret_in_the_cluster_is_a_finding():
    ing = {"kind": "Ingress", "metadata": {"name": "web", "namespace": "apps"},
           "spec": {"rules": [{"host": "a.example.com"}], "tls": [{"hosts": ["a.example.com"], "secretName": "x"}]}}
    assert [f.rule for f in r.evaluate([ing], FACTS, NOW)] == ["platform-origin-certificate-expiry"]


def flux(kind: str, *, suspend: bool = False, ready: str | None = "True") -> dict[str, Any]:
    status = {"conditions": [{"type": "Ready", "status": ready, "message": "boom"}]} if ready else {}
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1" if kind == "Kustomization" else
            "helm.toolkit.fluxcd.io/v2", "kind": kind, "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"suspend": suspend}, "status": status}


@pytest.mark.parametrize(("obj", "expected"), [
    (flux("Kustomization", suspend=True), ["platform-flux-suspended"]),
    (flux("HelmRelease", ready="False"), ["platform-flux-not-ready"]),
    (flux("Kustomization"), []),
    (flux("HelmRelease", ready=None), []),  # in git: no status to judge
])
def test_flux_objects_must_be_ready_and_not_suspended(obj, expected):
    assert [f.rule for f in r.evaluate([obj], FACTS, NOW)] == expected


def test_kyverno_policy_reports_are_merged_not_recomputed():
    report = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
              "metadata": {"name": "r", "namespace": "apps"},
              "results": [
                  {"policy": "require-labels", "rule": "check-team", "result": "fail", "severity": "high",
                   "message": "label team is required",
                   "resources": [{"kind": "Deployment", "name": "web", "namespace": "apps"}]},
                  {"policy": "require-labels", "rule": "check-owner", "result": "pass",
                   "resources": [{"kind": "Deployment", "name": "web", "namespace": "apps"}]},
                  {"policy": "restrict-image-registries", "rule": "check", "result": "warn", "message": "w"}]}
    per_resource = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "ClusterPolicyReport",
                    "metadata": {"name": "x"}, "scope": {"kind": "Namespace", "name": "apps"},
                    "results": [{"policy": "ns-labels", "result": "error", "message": "e"}]}
    found = {(f.source, f.rule, f.severity, f.resource) for f in r.evaluate([report, per_resource], FACTS, NOW)}
    assert found == {("kyverno", "require-labels/check-team", "high", "deployment/apps/web"),
                     ("kyverno", "restrict-image-registries/check", "low", "policyreport/apps/r"),
                     ("kyverno", "ns-labels", "medium", "namespace/apps")}


def test_platform_facts_come_from_platform_yaml():
    from shared.services.compliance.scan import load_platform

    facts = r.platform_facts(load_platform("dev-uaenorth"))
    raw = load_platform("dev-uaenorth")
    assert facts.registry == f"{raw['acr']['name']}.azurecr.io"
    assert {p.name for p in facts.gpu_pools} == {p["name"] for p in raw["gpu_pools"]}
    assert all(p.taint.endswith("=present:NoSchedule") for p in facts.gpu_pools)


def test_declared_gpu_pools_carry_their_taint_and_mig_profile_in_aks():
    from types import SimpleNamespace as Pool

    pools = [Pool(name="h100", taints=(), mig_profile=None),
             Pool(name="a100mig", taints=("nvidia.com/gpu=present:NoSchedule",), mig_profile="MIG1g"),
             Pool(name="cpu", taints=(), mig_profile=None)]
    assert [(f.rule, f.resource) for f in r.pool_findings(pools, FACTS)] == [
        ("platform-gpu-node-taint", "nodepool/h100")]
    pools[1].mig_profile = "MIG2g"
    assert ("platform-mig-profile", "nodepool/a100mig") in {(f.rule, f.resource) for f in r.pool_findings(pools, FACTS)}


@pytest.mark.parametrize("obj", [
    {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": 1, "volumes": True, "tolerations": "x"}},
    {"kind": "Pod", "metadata": "x", "spec": {"securityContext": {"sysctls": [{"name": ["a"]}],
                                                                  "seLinuxOptions": {"type": {"a": 1}}}}},
    {"kind": ["Pod"], "spec": {}},
    {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [
        {"name": "c", "securityContext": {"seccompProfile": {"type": ["x"]}, "capabilities": {"add": 3}},
         "ports": 80, "resources": {"limits": "lots"}}]}}}},
    {"kind": "Ingress", "metadata": {"name": "i"}, "spec": {"tls": [{"hosts": [None, 1]}], "rules": "x"}},
    {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "k"},
     "status": {"conditions": True}},
    {"kind": "Secret", "metadata": {"name": "s"}, "data": {"tls.crt": {"not": "pem"}}},
], ids=["scalar lists", "unhashable values", "kind not a string", "template oddities", "ingress oddities",
        "flux oddities", "secret oddities"])
def test_a_hand_written_manifest_of_the_wrong_shape_is_judged_or_skipped_never_a_crash(obj):
    r.evaluate([obj, {"kind": "Gateway", "metadata": {"name": "g"}, "spec": {"listeners": [
        {"protocol": "HTTPS", "tls": {"certificateRefs": [{"name": "s"}]}}]}}], FACTS, NOW)
