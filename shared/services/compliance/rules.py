"""Cluster rules: pure functions of Kubernetes objects (plain dicts, as the API or a YAML file holds them).

- **Pod Security Standards**, baseline and restricted, control by control as
  https://kubernetes.io/docs/concepts/security/pod-security-standards/ states them (field lists and allowed
  values), including init and ephemeral containers. Rule ids are the names Kyverno's pod-security policies
  use, so a finding reads the same whichever tool raised it. Baseline findings are ``high`` (known privilege
  escalations), restricted ones ``medium`` (hardening).
- **Platform rules** no upstream tool knows: images from the platform registry (and by digest for model
  serving), requests and limits, GPU taints and who tolerates them, MIG profiles as declared, a default-deny
  NetworkPolicy per application namespace, TLS on every Ingress/HTTPRoute with an origin certificate not
  near expiry, Flux objects ready and not suspended.
- **Kyverno reports**: ``PolicyReport``/``ClusterPolicyReport`` results are merged as findings, not recomputed.

Rules apply to Pods and to the pod templates of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob
(and ReplicationController). In a live cluster, objects a controller owns (``ownerReferences`` with
``controller: true``) are evaluated through their owner only, so one bad Deployment is one finding.

``evaluate(objects, facts, now)`` is the whole engine: one pass over the objects, dictionaries keyed by
namespace/name, no quadratic scans (10,000 pods well under a second: ``bench/compliance.py``).
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shared.services.compliance.findings import CLUSTER, CRITICAL, HIGH, KYVERNO, LOW, MEDIUM, SEVERITIES, Finding

PSS_URL = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
                            "ReplicationController"})
CONTROLLER_OWNERS = frozenset({"ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob",
                               "ReplicationController"})
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")
EMPTY: Mapping[str, Any] = MappingProxyType({})
#: Kubernetes' own namespaces: the control plane's add-ons run there, outside the workload rules
#: (Kyverno's default resourceFilters skip them too).
KUBERNETES_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
AGENTPOOL_LABEL = "kubernetes.azure.com/agentpool"

# -- Pod Security Standards: the allowed values, as the standard lists them ---------------------------

#: Baseline "Capabilities": what may be added beyond the runtime's defaults.
BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
#: Restricted "Capabilities (v1.22+)": drop ALL, add at most NET_BIND_SERVICE.
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
#: Baseline "Sysctls": the safe set (namespaced, isolated from other pods), including the later additions.
SAFE_SYSCTLS = tuple(sorted({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"}))
#: Baseline "SELinux": allowed seLinuxOptions.type values (user and role must be unset or empty);
#: container_engine_t since Kubernetes 1.31 (kubernetes/kubernetes#126165; Kyverno's policy predates it).
SELINUX_TYPES = tuple(sorted({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}))
#: Baseline "Seccomp" / "AppArmor" profile types (undefined is allowed too; Unconfined is not).
#: (Allowed-value lists are tuples: membership by equality, so a list or a map where a string belongs in a
#: hand-written manifest is simply not allowed, instead of an unhashable-type crash.)
PROFILE_TYPES = tuple(sorted({"RuntimeDefault", "Localhost"}))
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
#: Restricted "Volume Types": the only volume sources allowed.
RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                "persistentVolumeClaim", "projected", "secret"})


@dataclass(frozen=True)
class PodView:
    """One pod spec to evaluate: a Pod's, or a workload's template. ``items`` lists every container (init and
    ephemeral included) once, with its field path and security context, so that no rule walks the spec again."""

    resource: str            # "deployment/model-serving/vllm-h100"
    kind: str
    namespace: str
    name: str
    labels: Mapping[str, Any]
    annotations: Mapping[str, Any]
    spec: Mapping[str, Any]
    items: tuple[tuple[str, Mapping[str, Any], Mapping[str, Any]], ...] = ()
    pod_sc: Mapping[str, Any] = field(default_factory=dict)
    #: ``spec.os.name: windows``: the Linux-only restricted controls do not apply.
    windows: bool = False
    #: Every field name set in the spec, its securityContext, the containers and theirs (see ``NEEDS``).
    keys: frozenset[str] = frozenset()

    def containers(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """``(field path, container)`` over containers, init and ephemeral containers."""
        for where, c, _ in self.items:
            yield where, c


def _seq(value: Any, /) -> list[Any] | tuple[()]:
    # A list field holding a scalar (a hand-written manifest) is nothing to iterate, not a crash.
    return value if isinstance(value, list) else ()


def _map(value: Any, /) -> Mapping[str, Any]:
    # Objects are JSON/YAML documents: plain dicts (an ABC isinstance check costs 10x at 10,000 pods).
    return value if isinstance(value, dict) else EMPTY


def resource_name(obj: Mapping[str, Any]) -> str:
    meta = _map(obj.get("metadata"))
    kind = str(obj.get("kind") or "?").lower()
    ns = meta.get("namespace")
    return f"{kind}/{ns}/{meta.get('name')}" if ns else f"{kind}/{meta.get('name')}"


def pod_view(obj: Mapping[str, Any]) -> PodView | None:
    """The pod spec of a Pod or workload object; None for other kinds."""
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return None
    meta = _map(obj.get("metadata"))
    if kind == "Pod":
        template: Mapping[str, Any] = obj
    elif kind == "CronJob":
        template = _map(_map(_map(_map(obj.get("spec")).get("jobTemplate")).get("spec")).get("template"))
    elif kind in WORKLOAD_KINDS:
        template = _map(_map(obj.get("spec")).get("template"))
    else:
        return None
    tmeta = _map(template.get("metadata"))
    namespace = str(meta.get("namespace") or "default")
    spec = _map(template.get("spec"))
    items = tuple((f"spec.{key}[{c.get('name', '?')}]", c, _map(c.get("securityContext")))
                  for key in CONTAINER_FIELDS for c in _seq(spec.get(key)) if isinstance(c, dict))
    pod_sc = _map(spec.get("securityContext"))
    keys = set(spec).union(pod_sc)
    for _, c, csc in items:
        keys.update(c)
        keys.update(csc)
    annotations = _map(tmeta.get("annotations"))
    if any(str(a).startswith(APPARMOR_ANNOTATION) for a in annotations):
        keys.add(APPARMOR_ANNOTATION)
    return PodView(resource=f"{str(kind).lower()}/{namespace}/{meta.get('name')}", kind=str(kind),
                   namespace=namespace, name=str(meta.get("name")), labels=_map(tmeta.get("labels")),
                   annotations=annotations, spec=spec, items=items, pod_sc=pod_sc,
                   windows=_map(spec.get("os")).get("name") == "windows", keys=frozenset(keys))


# -- the rule table -----------------------------------------------------------------------------------

Check = Callable[[PodView], list[str]]
#: A check returns the violating fields. Where Kyverno splits a control into several rules (capabilities-strict:
#: require-drop-all and adding-capabilities-strict; selinux: selinux-type and selinux-user-role), each violation
#: starts with that rule's name in brackets, so a finding reads against Kyverno's results rule by rule.


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    remediation: str
    source: str             # where the rule is defined (a URL, or "platform")
    profile: str = ""       # "baseline" | "restricted" for Pod Security Standards


POD_RULES: dict[str, tuple[Rule, Check]] = {}


#: For the rules that only a field's presence can fail: those fields (in the pod spec, its securityContext, a
#: container or its securityContext). A pod naming none of them passes without running the check: most pods set
#: few of these, which keeps 10,000 pods well under a second.
NEEDS: dict[str, frozenset[str]] = {}


def _pod_rule(rule_id: str, severity: str, title: str, remediation: str, profile: str = "",
              needs: Iterable[str] = ()) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        source = f"{PSS_URL}#{profile}" if profile else "platform"
        POD_RULES[rule_id] = (Rule(rule_id, severity, title, remediation, source, profile), fn)
        if needs:
            NEEDS[rule_id] = frozenset(needs)
        return fn
    return register


# Baseline ---------------------------------------------------------------------------------------------

@_pod_rule("disallow-host-process", HIGH, "HostProcess containers", "remove windowsOptions.hostProcess (or set "
           "it false) on the pod and every container", "baseline",
           needs={"windowsOptions"})
def _host_process(p: PodView) -> list[str]:
    bad = ["spec.securityContext.windowsOptions.hostProcess"] if _map(
        p.pod_sc.get("windowsOptions")).get("hostProcess") is True else []
    return bad + [f"{where}.securityContext.windowsOptions.hostProcess" for where, c, csc in p.items
                  if _map(csc.get("windowsOptions")).get("hostProcess") is True]


@_pod_rule("disallow-host-namespaces", HIGH, "Host namespaces", "remove hostNetwork, hostPID and hostIPC (or set "
           "them false)", "baseline",
           needs={"hostNetwork", "hostPID", "hostIPC"})
def _host_namespaces(p: PodView) -> list[str]:
    return [f"spec.{k}" for k in ("hostNetwork", "hostPID", "hostIPC") if p.spec.get(k) is True]


@_pod_rule("disallow-privileged-containers", HIGH, "Privileged containers", "remove securityContext.privileged "
           "(or set it false)", "baseline",
           needs={"privileged"})
def _privileged(p: PodView) -> list[str]:
    return [f"{where}.securityContext.privileged" for where, c, csc in p.items if csc.get("privileged") is True]


@_pod_rule("disallow-capabilities", HIGH, "Capabilities", "add no capabilities beyond the default set "
           f"({', '.join(sorted(BASELINE_CAPABILITIES))})", "baseline",
           needs={"capabilities"})
def _capabilities(p: PodView) -> list[str]:
    out = []
    for where, _c, csc in p.items:
        added = [str(a) for a in _seq(_map(csc.get("capabilities")).get("add"))]
        extra = [a for a in added if a not in BASELINE_CAPABILITIES]
        if extra:
            out.append(f"{where}.securityContext.capabilities.add={','.join(extra)}")
    return out


@_pod_rule("disallow-host-path", HIGH, "HostPath volumes", "use a PersistentVolumeClaim, emptyDir or CSI volume "
           "instead of hostPath", "baseline",
           needs={"volumes"})
def _host_path(p: PodView) -> list[str]:
    return [f"spec.volumes[{v.get('name')}].hostPath" for v in _seq(p.spec.get("volumes"))
            if isinstance(v, dict) and v.get("hostPath") is not None]


@_pod_rule("disallow-host-ports", HIGH, "Host ports", "remove hostPort (a Service exposes the port)", "baseline",
           needs={"ports"})
def _host_ports(p: PodView) -> list[str]:
    return [f"{where}.ports[{port.get('containerPort')}].hostPort={port.get('hostPort')}"
            for where, c, csc in p.items for port in _seq(c.get("ports"))
            if isinstance(port, dict) and port.get("hostPort") not in (None, 0)]


def _profile_type(sc: Mapping[str, Any], key: str) -> Any:
    profile = sc.get(key)
    return profile.get("type") if isinstance(profile, dict) else None


@_pod_rule("restrict-apparmor-profiles", HIGH, "AppArmor", "use the RuntimeDefault or a Localhost AppArmor "
           "profile (field appArmorProfile, or the annotation runtime/default, localhost/<profile>)", "baseline",
           needs={"appArmorProfile", APPARMOR_ANNOTATION})
def _apparmor(p: PodView) -> list[str]:
    out = []
    for key, value in p.annotations.items():
        if str(key).startswith(APPARMOR_ANNOTATION) and not (
                value == "runtime/default" or str(value).startswith("localhost/")):
            out.append(f"metadata.annotations[{key}]={value}")
    kind = _profile_type(p.pod_sc, "appArmorProfile")
    if kind is not None and kind not in PROFILE_TYPES:
        out.append(f"spec.securityContext.appArmorProfile.type={kind}")
    for where, _c, csc in p.items:
        kind = _profile_type(csc, "appArmorProfile")
        if kind is not None and kind not in PROFILE_TYPES:
            out.append(f"{where}.securityContext.appArmorProfile.type={kind}")
    return out


def _selinux(where: str, sc: Mapping[str, Any]) -> list[str]:
    options = _map(sc.get("seLinuxOptions"))
    out = []
    if options.get("type") is not None and options.get("type") not in SELINUX_TYPES:
        out.append(f"[selinux-type] {where}.seLinuxOptions.type={options.get('type')}")
    for key in ("user", "role"):
        if options.get(key) not in (None, ""):
            out.append(f"[selinux-user-role] {where}.seLinuxOptions.{key}={options.get(key)}")
    return out


@_pod_rule("disallow-selinux", HIGH, "SELinux", "set no seLinuxOptions user or role, and a type among "
           f"{', '.join(sorted(t for t in SELINUX_TYPES if t))}", "baseline",
           needs={"seLinuxOptions"})
def _selinux_rule(p: PodView) -> list[str]:
    out = _selinux("spec.securityContext", p.pod_sc)
    for where, _c, csc in p.items:
        out += _selinux(f"{where}.securityContext", csc)
    return out


@_pod_rule("disallow-proc-mount", HIGH, "/proc mount type", "remove procMount (or set it Default)", "baseline",
           needs={"procMount"})
def _proc_mount(p: PodView) -> list[str]:
    return [f"{where}.securityContext.procMount={csc.get('procMount')}" for where, c, csc in p.items
            if csc.get("procMount") not in (None, "Default")]


@_pod_rule("restrict-seccomp", HIGH, "Seccomp", "do not set seccompProfile.type Unconfined: use RuntimeDefault or "
           "Localhost", "baseline",
           needs={"seccompProfile"})
def _seccomp(p: PodView) -> list[str]:
    out = []
    kind = _profile_type(p.pod_sc, "seccompProfile")
    if kind is not None and kind not in PROFILE_TYPES:
        out.append(f"spec.securityContext.seccompProfile.type={kind}")
    for where, _c, csc in p.items:
        kind = _profile_type(csc, "seccompProfile")
        if kind is not None and kind not in PROFILE_TYPES:
            out.append(f"{where}.securityContext.seccompProfile.type={kind}")
    return out


@_pod_rule("restrict-sysctls", HIGH, "Sysctls", f"set only the safe sysctls ({', '.join(sorted(SAFE_SYSCTLS))})",
           "baseline",
           needs={"sysctls"})
def _sysctls(p: PodView) -> list[str]:
    return [f"spec.securityContext.sysctls[{s.get('name')}]" for s in _seq(p.pod_sc.get("sysctls"))
            if isinstance(s, dict) and s.get("name") not in SAFE_SYSCTLS]


# Restricted -------------------------------------------------------------------------------------------

@_pod_rule("restrict-volume-types", MEDIUM, "Volume types", "use only configMap, csi, downwardAPI, emptyDir, "
           "ephemeral, persistentVolumeClaim, projected or secret volumes (other storage through a "
           "PersistentVolumeClaim)", "restricted",
           needs={"volumes"})
def _volume_types(p: PodView) -> list[str]:
    out = []
    for v in _seq(p.spec.get("volumes")):
        if not isinstance(v, dict):
            continue
        kinds = [k for k in v if k != "name" and v[k] is not None]
        bad = [k for k in kinds if k not in RESTRICTED_VOLUMES]
        if bad:
            out.append(f"spec.volumes[{v.get('name')}].{','.join(bad)}")
    return out


@_pod_rule("disallow-privilege-escalation", MEDIUM, "Privilege escalation", "set securityContext."
           "allowPrivilegeEscalation: false on every container", "restricted")
def _privilege_escalation(p: PodView) -> list[str]:
    if p.windows:
        return []
    return [f"{where}.securityContext.allowPrivilegeEscalation" for where, c, csc in p.items
            if csc.get("allowPrivilegeEscalation") is not False]


@_pod_rule("require-run-as-nonroot", MEDIUM, "Running as non-root", "set securityContext.runAsNonRoot: true on "
           "the pod (and false on no container), or on every container", "restricted")
def _run_as_non_root(p: PodView) -> list[str]:
    pod_value = p.pod_sc.get("runAsNonRoot")
    out = ["spec.securityContext.runAsNonRoot=false"] if pod_value is False else []
    for where, _c, csc in p.items:
        value = csc.get("runAsNonRoot")
        if value is False:
            out.append(f"{where}.securityContext.runAsNonRoot=false")
        elif value is None and pod_value is not True:
            out.append(f"{where}.securityContext.runAsNonRoot unset (and not true on the pod)")
    return out


@_pod_rule("require-run-as-non-root-user", MEDIUM, "Running as non-root user", "do not set runAsUser: 0 on the "
           "pod or any container", "restricted")
def _run_as_user(p: PodView) -> list[str]:
    out = ["spec.securityContext.runAsUser=0"] if p.pod_sc.get("runAsUser") == 0 else []
    return out + [f"{where}.securityContext.runAsUser=0" for where, c, csc in p.items
                  if csc.get("runAsUser") == 0]


@_pod_rule("restrict-seccomp-strict", MEDIUM, "Seccomp (restricted)", "set securityContext.seccompProfile.type "
           "RuntimeDefault (or Localhost) on the pod, or on every container", "restricted")
def _seccomp_strict(p: PodView) -> list[str]:
    if p.windows:
        return []
    pod_kind = _profile_type(p.pod_sc, "seccompProfile")
    out = [f"spec.securityContext.seccompProfile.type={pod_kind}"] if (
        pod_kind is not None and pod_kind not in PROFILE_TYPES) else []
    for where, _c, csc in p.items:
        kind = _profile_type(csc, "seccompProfile")
        if kind is not None and kind not in PROFILE_TYPES:
            out.append(f"{where}.securityContext.seccompProfile.type={kind}")
        elif kind is None and pod_kind not in PROFILE_TYPES:
            out.append(f"{where}.securityContext.seccompProfile unset (and not set on the pod)")
    return out


@_pod_rule("disallow-capabilities-strict", MEDIUM, "Capabilities (restricted)", "drop ALL capabilities and add "
           "at most NET_BIND_SERVICE", "restricted")
def _capabilities_strict(p: PodView) -> list[str]:
    if p.windows:
        return []
    out = []
    for where, _c, csc in p.items:
        caps = _map(csc.get("capabilities"))
        if "ALL" not in [str(d) for d in _seq(caps.get("drop"))]:
            out.append(f"[require-drop-all] {where}.securityContext.capabilities.drop lacks ALL")
        extra = [str(a) for a in _seq(caps.get("add")) if str(a) not in RESTRICTED_CAPABILITIES]
        if extra:
            out.append(f"[adding-capabilities-strict] {where}.securityContext.capabilities.add={','.join(extra)}")
    return out


# -- platform facts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuPoolFacts:
    name: str
    vendor: str
    mig_profile: str | None
    taint: str          # "nvidia.com/gpu=present:NoSchedule"


@dataclass(frozen=True)
class CertificateFacts:
    name: str
    renew_before_days: int
    synced_secrets: tuple[str, ...]


@dataclass(frozen=True)
class PlatformFacts:
    """What ``platform.yaml`` declares that the rules check against (read there, never restated)."""

    env: str = ""
    registry: str | None = None                    # "acrplatdevuaen.azurecr.io"; None: the rule is skipped
    node_label_prefix: str = ""
    gpu_pools: tuple[GpuPoolFacts, ...] = ()
    #: "namespace/name" of the model-serving Deployments (gpu_pools[].serving_deployment).
    serving_workloads: frozenset[str] = frozenset()
    certificates: tuple[CertificateFacts, ...] = ()
    renew_lifetime_share: float = 1 / 3
    #: Namespaces outside the workload rules (default: Kubernetes' own).
    exempt_namespaces: frozenset[str] = KUBERNETES_NAMESPACES


def platform_facts(raw: Mapping[str, Any]) -> PlatformFacts:
    """From the parsed ``infra/envs/<env>/platform.yaml``. The registry is ``<acr.name>.azurecr.io``, the login
    server ``infra/modules/acr`` outputs; GPU taints as ``infra/modules/aks`` sets them (``drift.GPU_TAINTS``)."""
    from shared.services.drift import GPU_TAINTS

    acr = _map(raw.get("acr"))
    pools = tuple(GpuPoolFacts(str(p.get("name")), str(p.get("vendor")), p.get("mig_profile"),
                               GPU_TAINTS.get(str(p.get("vendor")), ""))
                  for p in _seq(raw.get("gpu_pools")) if isinstance(p, Mapping))
    serving = frozenset(str(p["serving_deployment"]) for p in _seq(raw.get("gpu_pools"))
                        if isinstance(p, Mapping) and p.get("serving_deployment"))
    certs = tuple(CertificateFacts(str(c.get("name")), int(c.get("renew_before_days") or 30),
                                   tuple(str(s) for s in _seq(c.get("synced_secrets"))))
                  for c in _seq(raw.get("certificates")) if isinstance(c, Mapping))
    rotation = _map(raw.get("certificate_rotation"))
    return PlatformFacts(
        env=str(raw.get("environment") or ""),
        registry=f"{acr['name']}.azurecr.io" if acr.get("name") else None,
        node_label_prefix=str(_map(raw.get("cluster")).get("node_label_prefix") or ""),
        gpu_pools=pools, serving_workloads=serving, certificates=certs,
        renew_lifetime_share=float(rotation.get("renew_lifetime_share") or 1 / 3))


# -- platform rules on pods ---------------------------------------------------------------------------


def _resources(c: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    res = c.get("resources")
    if not isinstance(res, dict):
        return EMPTY, EMPTY
    requests, limits = res.get("requests"), res.get("limits")
    return (requests if isinstance(requests, dict) else EMPTY), (limits if isinstance(limits, dict) else EMPTY)


def requests_gpu(p: PodView) -> bool:
    for _, c, _ in p.items:
        res = c.get("resources")
        if not isinstance(res, dict):
            continue
        for part in (res.get("limits"), res.get("requests")):  # extended resources: limits, requests equal
            if not isinstance(part, dict):
                continue
            for g in GPU_RESOURCES:
                if g in part and str(part[g]) not in ("0", ""):
                    return True
    return False


def is_model_serving(p: PodView, facts: PlatformFacts, gpu: bool | None = None) -> bool:
    return (f"{p.namespace}/{p.name}" in facts.serving_workloads or (requests_gpu(p) if gpu is None else gpu)
            or p.labels.get("app.kubernetes.io/component") == "model-serving")


def _registry_violations(p: PodView, facts: PlatformFacts) -> list[str]:
    prefix = f"{facts.registry}/"
    out = []
    for where, c, _ in p.items:
        image = c.get("image")
        if not (isinstance(image, str) and image.startswith(prefix)):
            out.append(f"{where}.image={image}")
    return out


def _tolerates_gpu(p: PodView) -> list[str]:
    out = []
    for t in _seq(p.spec.get("tolerations")):
        if not isinstance(t, dict):
            continue
        key = t.get("key")
        if key in GPU_RESOURCES or (not key and t.get("operator") == "Exists"):
            out.append(f"spec.tolerations[{key or '*'}]")
    return out


def pod_platform_findings(p: PodView, facts: PlatformFacts) -> Iterator[tuple[Rule, list[str]]]:
    gpu = requests_gpu(p)
    serving = is_model_serving(p, facts, gpu)
    if facts.registry:
        bad = _registry_violations(p, facts)
        if bad:
            yield (PLATFORM_RULES["platform-image-registry-serving" if serving else "platform-image-registry"], bad)
    if serving:
        unpinned = [f"{where}.image={c.get('image')}" for where, c, csc in p.items
                    if "@sha256:" not in str(c.get("image") or "")]
        if unpinned:
            yield PLATFORM_RULES["platform-model-image-digest"], unpinned
    missing = []
    for where, c, _ in p.items:
        if where.startswith("spec.ephemeralContainers"):
            continue  # ephemeral containers cannot set resources
        requested, limits = _resources(c)
        if requested.get("cpu") and requested.get("memory") and limits.get("cpu") and limits.get("memory"):
            continue
        gaps = [f"{kind}.{r}" for kind, given in (("requests", requested), ("limits", limits))
                for r in ("cpu", "memory") if given.get(r) in (None, "")]
        missing.append(f"{where}.resources: {', '.join(gaps)}")
    if missing:
        yield PLATFORM_RULES["platform-requests-limits"], missing
    if p.kind != "DaemonSet" and not gpu and p.spec.get("tolerations"):
        tolerated = _tolerates_gpu(p)
        if tolerated:
            yield PLATFORM_RULES["platform-gpu-toleration"], tolerated


def _platform(rule_id: str, severity: str, title: str, remediation: str) -> tuple[str, Rule]:
    return rule_id, Rule(rule_id, severity, title, remediation, "platform")


PLATFORM_RULES: dict[str, Rule] = dict([
    _platform("platform-image-registry", MEDIUM, "Images from the platform registry",
              "mirror the image into the platform registry (platform.yaml acr) and reference it there"),
    _platform("platform-image-registry-serving", HIGH, "Model-serving images from the platform registry",
              "model-serving images come only from the platform registry (platform.yaml acr): mirror and repoint"),
    _platform("platform-model-image-digest", HIGH, "Model-serving images pinned by digest",
              "reference the model-serving image by digest (image@sha256:...), not by tag"),
    _platform("platform-requests-limits", LOW, "CPU and memory requests and limits",
              "set resources.requests and resources.limits for cpu and memory on every container"),
    _platform("platform-gpu-toleration", MEDIUM, "Only GPU workloads tolerate GPU taints",
              "remove the GPU toleration, or request nvidia.com/gpu / amd.com/gpu: non-GPU pods must not hold "
              "GPU nodes"),
    _platform("platform-gpu-node-taint", HIGH, "GPU nodes carry their pool's GPU taint",
              "re-taint the node (or reimage it): without the taint any pod can land on a GPU node"),
    _platform("platform-mig-profile", HIGH, "MIG profile as declared",
              "the node's MIG profile differs from platform.yaml gpu_pools[].mig_profile: recreate the pool "
              "through Terraform, or adopt the profile in platform.yaml"),
    _platform("platform-default-deny", HIGH, "Default-deny NetworkPolicy in every application namespace",
              "add a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress] and no rules, then "
              "allow what the namespace needs"),
    _platform("platform-ingress-tls", HIGH, "TLS on every Ingress and HTTPRoute",
              "serve the hosts over TLS: Ingress spec.tls covering every host, or an HTTPS listener with a "
              "certificateRef on the Gateway the route attaches to"),
    _platform("platform-origin-certificate-expiry", HIGH, "Origin certificate not near expiry",
              "rotate the origin certificate (platformctl certs rotate NAME) and check external-secrets synced it"),
    _platform("platform-flux-not-ready", MEDIUM, "Flux objects ready",
              "read the object's Ready message (flux get ...), fix git or the cluster, then reconcile"),
    _platform("platform-flux-suspended", MEDIUM, "Flux objects not suspended",
              "resume it (flux resume ...) or remove spec.suspend from git"),
])


# -- cluster-wide platform rules ------------------------------------------------------------------------


def _finding(rule: Rule, resource: str, detail: Iterable[str] | str, source: str = CLUSTER) -> Finding:
    text = detail if isinstance(detail, str) else "; ".join(detail)
    return Finding(source, rule.id, rule.severity, resource, f"{rule.title}: {text}"[:1500], rule.remediation)


def _taints(node: Mapping[str, Any]) -> set[str]:
    out = set()
    for t in _seq(_map(node.get("spec")).get("taints")):
        if isinstance(t, dict):
            value = t.get("value")
            out.add(f"{t.get('key')}={value}:{t.get('effect')}" if value not in (None, "")
                    else f"{t.get('key')}:{t.get('effect')}")
    return out


def node_findings(node: Mapping[str, Any], facts: PlatformFacts) -> Iterator[Finding]:
    meta = _map(node.get("metadata"))
    labels = _map(meta.get("labels"))
    resource = f"node/{meta.get('name')}"
    pools = {p.name: p for p in facts.gpu_pools}
    pool = pools.get(str(labels.get(AGENTPOOL_LABEL, "")))
    capacity = _map(_map(node.get("status")).get("capacity"))
    has_gpu = any(str(capacity.get(g, "0")) not in ("0", "") for g in GPU_RESOURCES)
    if pool is None and not has_gpu:
        return
    taints = _taints(node)
    wanted = {pool.taint} if pool is not None and pool.taint else {f"{g}=present:NoSchedule" for g in GPU_RESOURCES
                                                                   if str(capacity.get(g, "0")) not in ("0", "")}
    missing = sorted(wanted - taints)
    if missing:
        yield _finding(PLATFORM_RULES["platform-gpu-node-taint"], resource,
                       f"node of GPU pool {pool.name if pool else '?'} lacks taint {', '.join(missing)}")
    if pool is not None and facts.node_label_prefix:
        live = labels.get(f"{facts.node_label_prefix}/mig-profile")
        if (live or None) != (pool.mig_profile or None):
            yield _finding(PLATFORM_RULES["platform-mig-profile"], resource,
                           f"pool {pool.name}: MIG profile {live!r} on the node, {pool.mig_profile!r} declared")


def pool_findings(pools: Iterable[Any], facts: PlatformFacts) -> Iterator[Finding]:
    """AKS agent pools (``name``, ``taints``, ``mig_profile``, as the AKS adapter's ``NodePool``): every declared GPU
    pool carries its GPU taint and the declared MIG profile, so that new nodes are born right."""
    declared = {p.name: p for p in facts.gpu_pools}
    for pool in pools:
        spec = declared.get(str(getattr(pool, "name", "")))
        if spec is None:
            continue
        resource = f"nodepool/{spec.name}"
        if spec.taint and spec.taint not in tuple(getattr(pool, "taints", ()) or ()):
            yield _finding(PLATFORM_RULES["platform-gpu-node-taint"], resource,
                           f"GPU pool {spec.name} lacks taint {spec.taint}: its new nodes take any pod")
        live = getattr(pool, "mig_profile", None)
        if (live or None) != (spec.mig_profile or None):
            yield _finding(PLATFORM_RULES["platform-mig-profile"], resource,
                           f"GPU pool {spec.name}: MIG profile {live!r} in AKS, {spec.mig_profile!r} declared")


def _default_deny(policies: Sequence[Mapping[str, Any]]) -> set[str]:
    """Directions ("Ingress", "Egress") denied by default by a namespace-wide policy with no rules."""
    denied: set[str] = set()
    for pol in policies:
        spec = _map(pol.get("spec"))
        selector = _map(spec.get("podSelector"))
        if selector.get("matchLabels") or selector.get("matchExpressions"):
            continue
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") is not None else ["Ingress"])
        for direction, key in (("Ingress", "ingress"), ("Egress", "egress")):
            if direction in types and not spec.get(key):
                denied.add(direction)
    return denied


def _listener_ok(listener: Mapping[str, Any]) -> bool:
    tls = _map(listener.get("tls"))
    if listener.get("protocol") == "TLS":
        return True  # passthrough or terminate: the bytes are TLS either way
    return listener.get("protocol") == "HTTPS" and bool(tls.get("certificateRefs"))


def _tls_secret_refs(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    meta = _map(obj.get("metadata"))
    ns = str(meta.get("namespace") or "default")
    spec = _map(obj.get("spec"))
    if obj.get("kind") == "Ingress":
        return [(ns, str(t.get("secretName"))) for t in _seq(spec.get("tls"))
                if isinstance(t, dict) and t.get("secretName")]
    refs = []
    for listener in _seq(spec.get("listeners")):
        for ref in _seq(_map(_map(listener).get("tls")).get("certificateRefs")):
            if isinstance(ref, Mapping) and ref.get("kind", "Secret") == "Secret":
                refs.append((str(ref.get("namespace") or ns), str(ref.get("name"))))
    return refs


def certificate_dates(secret: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime] | None:
    """(not_before, not_after) of the leaf in a ``kubernetes.io/tls`` Secret's ``tls.crt``; None if unreadable."""
    from cryptography import x509

    data = _map(secret.get("data")).get("tls.crt")
    if not data or not isinstance(data, str):
        return None
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(data))
    except ValueError:
        return None
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def _certificate_findings(ref: tuple[str, str], secret: Mapping[str, Any] | None, facts: PlatformFacts,
                          now: dt.datetime, used_by: str) -> Iterator[Finding]:
    from shared.platform import CertificateRotation, CertificateSpec
    from shared.services.certificates import CurrentVersion, renewal_due

    rule = PLATFORM_RULES["platform-origin-certificate-expiry"]
    resource = f"secret/{ref[0]}/{ref[1]}"
    if secret is None:
        yield _finding(rule, resource, f"TLS secret {ref[0]}/{ref[1]} used by {used_by} does not exist")
        return
    dates = certificate_dates(secret)
    if dates is None:
        yield _finding(rule, resource, f"TLS secret {ref[0]}/{ref[1]} holds no readable certificate")
        return
    not_before, not_after = dates
    ref_text = f"{ref[0]}/{ref[1]}"
    declared = next((c for c in facts.certificates if ref_text in c.synced_secrets or c.name == ref[1]), None)
    renew_before = declared.renew_before_days if declared else min(
        (c.renew_before_days for c in facts.certificates), default=30)
    # The certificates service's notion of "due": renew_before_days or the lifetime share, whichever is first.
    spec = CertificateSpec(name=declared.name if declared else ref[1], zone="", zone_id="", hostnames=(),
                           request_type="origin-ecc", validity_days=0, renew_before_days=renew_before)
    due = renewal_due(spec, CertificateRotation(renew_lifetime_share=facts.renew_lifetime_share),
                      CurrentVersion("", None, None, not_before, not_after, (), None))
    days = (not_after - now).total_seconds() / 86400
    if not_after <= now:
        yield Finding(CLUSTER, rule.id, CRITICAL, resource,
                      f"{rule.title}: the certificate in {ref_text} (used by {used_by}) expired {not_after:%Y-%m-%d}",
                      rule.remediation)
    elif due is not None and due <= now:
        yield _finding(rule, resource, f"the certificate in {ref_text} (used by {used_by}) expires "
                                       f"{not_after:%Y-%m-%d} ({days:.1f} days): past its renewal time")


def evaluate(objects: Iterable[Mapping[str, Any]], facts: PlatformFacts, now: dt.datetime, *,
             source: str = CLUSTER, owned_by_controllers: bool = True) -> list[Finding]:
    """Every rule over ``objects`` (any kinds, any order). ``owned_by_controllers``: skip objects a controller
    owns (live clusters: the owner is evaluated); files have no owners, so it changes nothing there."""
    findings: list[Finding] = []
    namespaces: set[str] = set()
    workload_namespaces: set[str] = set()
    policies: dict[str, list[Mapping[str, Any]]] = {}
    secrets: dict[tuple[str, str], Mapping[str, Any]] = {}
    gateways: dict[tuple[str, str], Mapping[str, Any]] = {}
    routes: list[Mapping[str, Any]] = []
    ingresses: list[Mapping[str, Any]] = []
    reports: list[Mapping[str, Any]] = []
    exempt = facts.exempt_namespaces
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        kind = obj.get("kind")
        if not isinstance(kind, str):
            continue
        meta = _map(obj.get("metadata"))
        ns = str(meta.get("namespace") or "default")
        if kind == "Namespace":
            namespaces.add(str(meta.get("name")))
        elif kind == "NetworkPolicy":
            policies.setdefault(ns, []).append(obj)
        elif kind == "Secret":
            secrets[(ns, str(meta.get("name")))] = obj
        elif kind == "Gateway":
            gateways[(ns, str(meta.get("name")))] = obj
        elif kind in ("HTTPRoute", "GRPCRoute"):
            routes.append(obj)
        elif kind == "Ingress":
            ingresses.append(obj)
        elif kind == "Node":
            findings.extend(node_findings(obj, facts))
        elif kind in ("PolicyReport", "ClusterPolicyReport", "Report", "ClusterReport"):
            reports.append(obj)
        elif kind in ("Kustomization", "HelmRelease", "GitRepository", "HelmRepository", "OCIRepository") and \
                "fluxcd.io" in str(obj.get("apiVersion")):
            findings.extend(flux_findings(obj, source))
        else:
            if owned_by_controllers and any(
                    isinstance(o, dict) and o.get("controller") and str(o.get("kind")) in CONTROLLER_OWNERS
                    for o in _seq(meta.get("ownerReferences"))):
                continue
            view = pod_view(obj)
            if view is None:
                continue
            if view.namespace in exempt:
                continue
            workload_namespaces.add(view.namespace)
            findings.extend(pod_findings(view, facts, source))
    for ns in sorted(workload_namespaces):
        missing = {"Ingress", "Egress"} - _default_deny(policies.get(ns, ()))
        if missing:
            findings.append(_finding(PLATFORM_RULES["platform-default-deny"], f"namespace/{ns}",
                                     f"namespace {ns} runs workloads without a default-deny NetworkPolicy for "
                                     f"{' and '.join(sorted(missing))}", source))
    tls_rule = PLATFORM_RULES["platform-ingress-tls"]
    cert_refs: dict[tuple[str, str], str] = {}
    for ing in ingresses:
        spec = _map(ing.get("spec"))
        covered = {h for t in _seq(spec.get("tls")) if isinstance(t, dict) for h in _seq(t.get("hosts"))
                   if isinstance(h, str)}
        hosts = [str(r.get("host")) for r in _seq(spec.get("rules")) if isinstance(r, Mapping) and r.get("host")]
        bare = [h for h in hosts if h not in covered and not any(fnmatch.fnmatchcase(h, c) for c in covered)]
        if not spec.get("tls") or bare:
            findings.append(_finding(tls_rule, resource_name(ing),
                                     f"hosts without TLS: {', '.join(bare) or '(all)'}", source))
        for ref in _tls_secret_refs(ing):
            cert_refs.setdefault(ref, resource_name(ing))
    for route in routes:
        meta = _map(route.get("metadata"))
        ns = str(meta.get("namespace") or "default")
        plain = []
        for parent in _seq(_map(route.get("spec")).get("parentRefs")):
            if not isinstance(parent, Mapping) or parent.get("kind", "Gateway") != "Gateway":
                continue
            gw = gateways.get((str(parent.get("namespace") or ns), str(parent.get("name"))))
            if gw is None:
                continue  # not in this object set (another overlay, or not read): nothing to judge
            listeners = [x for x in _seq(_map(gw.get("spec")).get("listeners")) if isinstance(x, Mapping)]
            if parent.get("sectionName"):
                listeners = [x for x in listeners if x.get("name") == parent.get("sectionName")]
            if parent.get("port"):
                listeners = [x for x in listeners if x.get("port") == parent.get("port")]
            plain += [f"{resource_name(gw)} listener {x.get('name')} ({x.get('protocol')})"
                      for x in listeners if not _listener_ok(x)]
        if plain:
            findings.append(_finding(tls_rule, resource_name(route), f"attached to plain listeners: "
                                                                     f"{', '.join(plain)}", source))
    for gw in gateways.values():
        for ref in _tls_secret_refs(gw):
            cert_refs.setdefault(ref, resource_name(gw))
    if source == CLUSTER:
        # Certificates are judged where the Secrets are (a live cluster); manifests in git hold no keys.
        for ref, used_by in sorted(cert_refs.items()):
            findings.extend(_certificate_findings(ref, secrets.get(ref), facts, now, used_by))
    for report in reports:
        findings.extend(kyverno_findings(report))
    return findings


def pod_findings(view: PodView, facts: PlatformFacts, source: str = CLUSTER) -> Iterator[Finding]:
    keys = view.keys
    for rule, check, needs in _POD_CHECKS or _pod_checks():
        if needs is not None and needs.isdisjoint(keys):
            continue
        bad = check(view)
        if bad:
            yield _finding(rule, view.resource, bad, source)
    for rule, bad in pod_platform_findings(view, facts):
        yield _finding(rule, view.resource, bad, source)


_POD_CHECKS: list[tuple[Rule, Check, frozenset[str] | None]] = []


def _pod_checks() -> list[tuple[Rule, Check, frozenset[str] | None]]:
    _POD_CHECKS.extend((rule, check, NEEDS.get(rule.id)) for rule, check in POD_RULES.values())
    return _POD_CHECKS


def flux_findings(obj: Mapping[str, Any], source: str = CLUSTER) -> Iterator[Finding]:
    from shared.services.drift import flux_object

    conditions = _map(obj.get("status")).get("conditions")
    if not all(isinstance(obj.get(k) or {}, dict) for k in ("metadata", "spec", "status")) or not isinstance(
            conditions or [], list) or not all(
            isinstance(c, dict) and isinstance(c.get("type"), str | None)
            for c in _seq(_map(obj.get("status")).get("conditions"))):
        return  # not a Flux object the API would have accepted (a hand-written manifest): nothing to judge
    flux = flux_object(obj)
    resource = flux.resource
    if flux.suspended:
        yield _finding(PLATFORM_RULES["platform-flux-suspended"], resource,
                       f"{flux.kind} {flux.namespace}/{flux.name} is suspended", source)
    elif _map(obj.get("status")).get("conditions") and (flux.ready == "False" or flux.stalled):
        yield _finding(PLATFORM_RULES["platform-flux-not-ready"], resource,
                       f"{flux.kind} {flux.namespace}/{flux.name} is not ready: {flux.ready_message}", source)


# -- Kyverno policy reports -----------------------------------------------------------------------------

#: Kyverno results that are findings; pass and skip are not.
REPORT_RESULTS = {"fail": MEDIUM, "error": MEDIUM, "warn": LOW}


def kyverno_findings(report: Mapping[str, Any]) -> Iterator[Finding]:
    """``PolicyReport``/``ClusterPolicyReport`` (wgpolicyk8s.io/v1alpha2; openreports.io ``Report`` alike):
    one finding per failing (policy, rule, resource). Newer Kyverno writes one report per resource
    (``scope``); older ones list ``resources`` per result."""
    scope = _map(report.get("scope"))
    for result in _seq(report.get("results")):
        if not isinstance(result, Mapping):
            continue
        outcome = str(result.get("result") or "")
        if outcome not in REPORT_RESULTS:
            continue
        severity = str(result.get("severity") or "").lower()
        if severity not in SEVERITIES:
            severity = REPORT_RESULTS[outcome]
        rule = f"{result.get('policy')}/{result.get('rule')}" if result.get("rule") else str(result.get("policy"))
        subjects = [r for r in _seq(result.get("resources")) if isinstance(r, Mapping)] or ([scope] if scope else [])
        for subject in subjects or [report]:
            # The subject, or (a result naming none) the report itself.
            subject = subject if subject is not report else {
                "kind": report.get("kind"), **_map(report.get("metadata"))}
            kind = str(subject.get("kind") or "?").lower()
            resource = (f"{kind}/{subject.get('namespace')}/{subject.get('name')}" if subject.get("namespace")
                        else f"{kind}/{subject.get('name')}")
            yield Finding(KYVERNO, rule, severity, resource,
                          f"Kyverno {outcome}: {str(result.get('message') or '')[:1200]}",
                          f"see Kyverno policy {result.get('policy')}"
                          + (f" ({result.get('category')})" if result.get("category") else ""))


def rules_table() -> list[Rule]:
    """Every cluster rule this engine evaluates (README and SARIF ``tool.driver.rules``)."""
    return [rule for rule, _ in POD_RULES.values()] + list(PLATFORM_RULES.values())

