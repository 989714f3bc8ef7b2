"""Drift between git (``platform.yaml`` + the Flux path's head) and the live platform.

Gather, decide, act:

- ``desired_state(raw_platform, git_head)`` reads what git declares: cluster version and upgrade
  channel, the system, CPU and GPU pools (VM size, bounds, taints, labels, MIG profile, autoscaler,
  zones) and the commit Flux should have applied. Taints and labels follow ``infra/modules/aks``
  (``locals.tf``: ``gpu_taints``, ``gpu_labels``); ``tests/unit/test_drift.py`` keeps the two in step.
- ``gather_actual(ctx)`` reads the live platform through the adapters: ARM (managed cluster, agent
  pools) and the Kubernetes API (Flux sources, Kustomizations, HelmReleases, nodes per pool).
- ``diff(desired, actual, ignore=..., now=...)`` is pure and fast (dictionaries keyed by name, no
  quadratic scans): it returns ``Finding``s, each with a kind, severity, resource, field path,
  expected and actual values, whether fixing it recreates a pool (``destructive``), and a remedy:
  *revert live* (a Flux reconcile request; for a cloud setting, the next ``terraform apply``) or
  *adopt in git* (the exact ``platform.yaml`` edit, applied by ``apply_edits`` with a
  comment-preserving ruamel.yaml round trip).

Ignore rules live in git, in the environment's platform file: ``drift.ignore`` in
``infra/envs/<env>/platform.yaml`` (Terraform's typed ``platform`` variable drops the block).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# -- vocabulary -------------------------------------------------------------------------------

#: Finding kinds (stable strings: they key stored findings, MR tables and alerts).
CLOUD_SETTING_CHANGED = "CloudSettingChanged"
POOL_MISSING = "PoolMissing"
POOL_UNMANAGED = "PoolUnmanaged"
FLUX_NOT_READY = "FluxNotReady"
FLUX_STALLED = "FluxStalled"
FLUX_SUSPENDED = "FluxSuspended"
FLUX_BEHIND_GIT = "FluxBehindGit"
HELM_DRIFTED = "HelmReleaseDrifted"
NODE_LABELS_DIFFER = "NodeLabelsDiffer"
NODE_TAINTS_DIFFER = "NodeTaintsDiffer"

#: Remedies.
REVERT_LIVE = "revert-live"          # a Flux reconcile request puts the cluster back to git
TERRAFORM_APPLY = "terraform-apply"  # a cloud setting: the next terraform apply puts it back
ADOPT_IN_GIT = "adopt-in-git"        # change platform.yaml so that git matches the live value

CRITICAL, WARNING, INFO = "critical", "warning", "info"
_SEVERITY_ORDER = {CRITICAL: 0, WARNING: 1, INFO: 2}

#: Pool fields whose change AKS can only apply by recreating the pool's nodes.
DESTRUCTIVE_FIELDS = frozenset({"vm_size", "taints", "mig_profile", "zones"})
#: GPU taints per vendor, as ``infra/modules/aks/locals.tf`` sets them (``gpu_taints``).
GPU_TAINTS = {"nvidia": "nvidia.com/gpu=present:NoSchedule", "amd": "amd.com/gpu=present:NoSchedule"}
#: ``only_critical_addons_enabled`` on the system pool taints it so.
SYSTEM_TAINT = "CriticalAddonsOnly=true:NoSchedule"
AGENTPOOL_LABEL = "kubernetes.azure.com/agentpool"

PathPart = str | int


@dataclass(frozen=True)
class YamlEdit:
    """Set ``path`` in platform.yaml to ``value``. A ``"name=x"`` part selects a list item by name."""

    path: tuple[PathPart, ...]
    value: Any

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path)


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    resource: str      # "nodepool/h100", "cluster", "kustomization/flux-system/apps", "node/<name>"
    field: str         # field path on that resource: "max_count", "spec.suspend", "labels"
    expected: Any
    actual: Any
    destructive: bool
    remedy: str
    message: str
    edit: YamlEdit | None = None  # for ADOPT_IN_GIT: the platform.yaml change that makes git match
    #: For REVERT_LIVE through Flux: the object to ask for a reconcile ("kustomization/<ns>/<name>").
    reconcile: str | None = None

    @property
    def key(self) -> str:
        """Identity across runs: first/last seen and MR tables are keyed by it."""
        return f"{self.resource}#{self.field}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "resource": self.resource, "field": self.field,
                "expected": self.expected, "actual": self.actual, "destructive": self.destructive,
                "remedy": self.remedy, "message": self.message,
                "edit": {"path": self.edit.dotted, "value": self.edit.value} if self.edit else None}


# -- desired ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolSpec:
    name: str
    vm_size: str
    min_count: int
    max_count: int
    #: Where the pool sits in platform.yaml, for adopt-in-git edits.
    yaml_path: tuple[PathPart, ...]
    autoscaling: bool = True
    taints: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()  # only the platform's own labels (under the prefix)
    mig_profile: str | None = None
    zones: tuple[str, ...] = ()
    #: The automation raises min_count ahead of demand (infra ignores it): anything in [min, max] is fine.
    automation_moves_min: bool = False


@dataclass(frozen=True)
class DesiredState:
    env: str
    kubernetes_version: str   # "1.32": a minor; the patch channel moves patches
    upgrade_channel: str | None
    pools: tuple[PoolSpec, ...]
    node_label_prefix: str
    default_branch: str
    git_head: str | None       # the commit Flux should have applied; None when GitLab was not read
    gitops_path: str = ""      # the cluster's Flux entry point (gitops/clusters/<env>)


def desired_state(raw: Mapping[str, Any], git_head: str | None = None) -> DesiredState:
    """Desired state from the parsed ``platform.yaml`` (a plain mapping) and the git head."""
    cluster = raw.get("cluster") or {}
    prefix = str(cluster.get("node_label_prefix") or "")
    zones = tuple(str(z) for z in cluster.get("zones") or ())
    pools: list[PoolSpec] = []
    system = cluster.get("system_pool") or {}
    if system:
        pools.append(PoolSpec("system", str(system.get("vm_size")), int(system.get("min_count", 0)),
                              int(system.get("max_count", 0)), ("cluster", "system_pool"),
                              taints=(SYSTEM_TAINT,), zones=tuple(str(z) for z in system.get("zones") or zones)))
    cpu = cluster.get("cpu_pool") or {}
    if cpu:
        pools.append(PoolSpec("cpu", str(cpu.get("vm_size")), int(cpu.get("min_count", 0)),
                              int(cpu.get("max_count", 0)), ("cluster", "cpu_pool"),
                              labels=((f"{prefix}/workload", "general"),),
                              zones=tuple(str(z) for z in cpu.get("zones") or zones), automation_moves_min=True))
    for gpu in raw.get("gpu_pools") or ():
        name, vendor = str(gpu["name"]), str(gpu.get("vendor"))
        labels = {f"{prefix}/gpu-vendor": vendor, f"{prefix}/gpu-pool": name,
                  f"{prefix}/gpus-per-node": str(gpu.get("gpus_per_node")), f"{prefix}/workload": "inference"}
        if gpu.get("inference_queue") is not None:
            labels[f"{prefix}/inference-queue"] = str(gpu["inference_queue"])
        if gpu.get("mig_profile") is not None:
            labels[f"{prefix}/mig-profile"] = str(gpu["mig_profile"])
        pools.append(PoolSpec(
            name, str(gpu.get("vm_size")), int(gpu.get("min_count", 0)), int(gpu.get("max_count", 0)),
            ("gpu_pools", f"name={name}"), taints=(GPU_TAINTS.get(vendor, ""),),
            labels=tuple(sorted(labels.items())), mig_profile=gpu.get("mig_profile"),
            zones=tuple(str(z) for z in gpu.get("zones") or zones), automation_moves_min=True))
    gitlab = raw.get("gitlab") or {}
    return DesiredState(
        env=str(raw.get("environment")), kubernetes_version=str(cluster.get("kubernetes_version") or ""),
        upgrade_channel=cluster.get("upgrade_channel"), pools=tuple(pools), node_label_prefix=prefix,
        default_branch=str(gitlab.get("default_branch") or "main"), git_head=git_head,
        gitops_path=str(gitlab.get("gitops_path") or ""))


# -- actual -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActualPool:
    name: str
    vm_size: str
    min_count: int | None
    max_count: int | None
    autoscaling: bool
    taints: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    mig_profile: str | None = None
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class FluxObject:
    kind: str  # GitRepository | Kustomization | HelmRelease
    namespace: str
    name: str
    suspended: bool = False
    ready: str = "Unknown"          # the Ready condition's status: "True" | "False" | "Unknown"
    ready_message: str = ""
    stalled: bool = False
    reconciling: bool = False
    drifted: bool = False           # helm-controller drift detection (warn mode) found changes
    current: bool = True            # status.observedGeneration == metadata.generation
    revision: str | None = None     # applied (Kustomization) or stored (GitRepository) revision
    source: str | None = None       # "GitRepository/<ns>/<name>" for Kustomizations
    path: str | None = None         # a Kustomization's path in the repository

    @property
    def resource(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class NodeView:
    name: str
    pool: str
    labels: tuple[tuple[str, str], ...]
    taints: tuple[str, ...]


@dataclass(frozen=True)
class ActualState:
    kubernetes_version: str | None = None   # "1.32.6"
    upgrade_channel: str | None = None
    pools: tuple[ActualPool, ...] = ()
    flux: tuple[FluxObject, ...] = ()
    nodes: tuple[NodeView, ...] = ()
    #: Which sources answered; a source that did not is not compared (no false "missing" findings).
    read: frozenset[str] = frozenset({"arm", "kubernetes"})


def flux_object(obj: Mapping[str, Any]) -> FluxObject:
    """Our view of a Flux object as the API returns it (kstatus conditions)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or () if isinstance(c, dict)}
    ready = conditions.get("Ready") or {}
    kind = str(obj.get("kind") or "")
    revision = status.get("lastAppliedRevision") if kind == "Kustomization" else (
        (status.get("artifact") or {}).get("revision") if kind == "GitRepository" else None)
    source_ref = spec.get("sourceRef") or {}
    source = None
    if source_ref.get("kind") == "GitRepository":
        source = f"GitRepository/{source_ref.get('namespace') or meta.get('namespace')}/{source_ref.get('name')}"
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    return FluxObject(
        kind=kind, namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
        suspended=bool(spec.get("suspend")), ready=str(ready.get("status") or "Unknown"),
        ready_message=str(ready.get("message") or "")[:300],
        stalled=(conditions.get("Stalled") or {}).get("status") == "True",
        reconciling=(conditions.get("Reconciling") or {}).get("status") == "True",
        drifted=(conditions.get("Drifted") or {}).get("status") == "True",
        current=generation is None or observed is None or generation == observed,
        revision=revision, source=source, path=spec.get("path"))


def node_view(obj: Mapping[str, Any]) -> NodeView:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    taints = tuple(sorted(
        f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}" if t.get("value") is not None
        else f"{t.get('key')}:{t.get('effect')}"
        for t in (obj.get("spec") or {}).get("taints") or ()))
    return NodeView(name=str(meta.get("name")), pool=str(labels.get(AGENTPOOL_LABEL, "")),
                    labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())), taints=taints)


# -- ignore rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    resource: str            # glob on Finding.resource
    field: str = "*"         # glob on Finding.field
    kind: str = "*"          # glob on Finding.kind
    reason: str = ""
    until: dt.date | None = None

    def matches(self, finding: Finding, today: dt.date) -> bool:
        if self.until is not None and today > self.until:
            return False
        return (fnmatch.fnmatchcase(finding.resource, self.resource)
                and fnmatch.fnmatchcase(finding.field, self.field)
                and fnmatch.fnmatchcase(finding.kind, self.kind))


def parse_ignore_rules(raw: Any, source: str = "drift-ignore.yaml") -> tuple[IgnoreRule, ...]:
    """``{ignore: [{resource, field?, kind?, reason, until?}]}``; raises ValueError naming the bad entry."""
    if raw is None:
        return ()
    entries = raw.get("ignore") if isinstance(raw, dict) else None
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise ValueError(f"{source}: 'ignore' must be a list")
    rules = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), str):
            raise ValueError(f"{source}: ignore[{i}] needs a 'resource' glob")
        if not entry.get("reason"):
            raise ValueError(f"{source}: ignore[{i}] needs a 'reason' (why this drift is accepted)")
        until = entry.get("until")
        if isinstance(until, str):
            until = dt.date.fromisoformat(until)
        rules.append(IgnoreRule(resource=entry["resource"], field=str(entry.get("field", "*")),
                                kind=str(entry.get("kind", "*")), reason=str(entry["reason"]), until=until))
    return tuple(rules)


def ignore_rules(raw_platform: Mapping[str, Any], source: str = "platform.yaml") -> tuple[IgnoreRule, ...]:
    """The ``drift.ignore`` rules of an environment's platform.yaml (kept in git, reviewed like the rest)."""
    block = raw_platform.get("drift") if isinstance(raw_platform, Mapping) else None
    return parse_ignore_rules(block, f"{source}: drift") if block else ()


# -- diff (pure) ------------------------------------------------------------------------------


def _minor(version: str | None) -> tuple[int, ...]:
    parts = []
    for piece in (version or "").lstrip("v").split(".")[:2]:
        if not piece.isdigit():
            return ()
        parts.append(int(piece))
    return tuple(parts)


def _sha(revision: str | None) -> str | None:
    """``main@sha1:abc`` / ``sha1:abc`` / ``abc`` -> ``abc``."""
    if not revision:
        return None
    return revision.rsplit(":", 1)[-1].rsplit("@", 1)[-1]


def diff(desired: DesiredState, actual: ActualState, *, ignore: Sequence[IgnoreRule] = (),
         now: dt.datetime | None = None) -> list[Finding]:
    """Every difference between git and the live platform, minus ignored ones, most severe first."""
    findings: list[Finding] = []
    if "arm" in actual.read:
        findings.extend(_cluster_findings(desired, actual))
        findings.extend(_pool_findings(desired, actual))
    if "kubernetes" in actual.read:
        findings.extend(_flux_findings(desired, actual))
        findings.extend(_node_findings(desired, actual))
    today = (now or dt.datetime.now(dt.UTC)).date()
    if ignore:
        findings = [f for f in findings if not any(rule.matches(f, today) for rule in ignore)]
    findings.sort(key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), f.resource, f.field))
    return findings


def _cluster_findings(desired: DesiredState, actual: ActualState) -> Iterable[Finding]:
    want, have = _minor(desired.kubernetes_version), _minor(actual.kubernetes_version)
    if want and have and want != have:
        newer = have > want
        live = ".".join(map(str, have))
        yield Finding(
            CLOUD_SETTING_CHANGED, WARNING, "cluster", "kubernetes_version", desired.kubernetes_version,
            actual.kubernetes_version, destructive=False,
            remedy=ADOPT_IN_GIT if newer else TERRAFORM_APPLY,
            message=(f"the cluster runs Kubernetes {actual.kubernetes_version}, git says "
                     f"{desired.kubernetes_version}: "
                     + ("AKS cannot downgrade, so git adopts the live minor" if newer
                        else "the next terraform apply upgrades it")),
            edit=YamlEdit(("cluster", "kubernetes_version"), live) if newer else None)
    if actual.upgrade_channel is not None and (desired.upgrade_channel or "none") != actual.upgrade_channel:
        yield Finding(CLOUD_SETTING_CHANGED, WARNING, "cluster", "upgrade_channel", desired.upgrade_channel,
                      actual.upgrade_channel, destructive=False, remedy=TERRAFORM_APPLY,
                      message="the auto-upgrade channel was changed outside Terraform; the next terraform apply "
                              "sets it back")


def _pool_findings(desired: DesiredState, actual: ActualState) -> Iterable[Finding]:
    live = {p.name: p for p in actual.pools}
    declared = {p.name for p in desired.pools}
    for spec in desired.pools:
        pool = live.get(spec.name)
        resource = f"nodepool/{spec.name}"
        if pool is None:
            yield Finding(POOL_MISSING, CRITICAL, resource, "", "present", "absent", destructive=False,
                          remedy=TERRAFORM_APPLY,
                          message=f"pool {spec.name} is declared in platform.yaml but does not exist; "
                                  "the next terraform apply creates it")
            continue
        yield from _pool_field_findings(spec, pool, desired.node_label_prefix)
    for name in sorted(set(live) - declared):
        yield Finding(POOL_UNMANAGED, WARNING, f"nodepool/{name}", "", "absent", "present", destructive=False,
                      remedy=REVERT_LIVE,
                      message=f"pool {name} exists but is not declared in platform.yaml: delete it, or declare "
                              "it (Terraform must own it before it is used)")


def _cloud(spec: PoolSpec, field_name: str, expected: Any, actual: Any, *, adopt: Any = None,
           severity: str = WARNING, message: str = "") -> Finding:
    destructive = field_name in DESTRUCTIVE_FIELDS
    edit = YamlEdit((*spec.yaml_path, field_name), adopt) if adopt is not None else None
    remedy = ADOPT_IN_GIT if edit is not None else TERRAFORM_APPLY
    text = message or (f"pool {spec.name}: {field_name} is {actual!r} live, {expected!r} in git; "
                       + ("git adopts the live value (merge request)" if edit is not None
                          else "the next terraform apply sets it back")
                       + (" - this recreates the pool's nodes" if destructive else ""))
    return Finding(CLOUD_SETTING_CHANGED, severity, f"nodepool/{spec.name}", field_name, expected, actual,
                   destructive=destructive, remedy=remedy, message=text, edit=edit)


def _pool_field_findings(spec: PoolSpec, pool: ActualPool, prefix: str) -> Iterable[Finding]:
    if pool.vm_size != spec.vm_size:
        yield _cloud(spec, "vm_size", spec.vm_size, pool.vm_size, severity=CRITICAL)
    if pool.autoscaling != spec.autoscaling:
        yield _cloud(spec, "autoscaling", spec.autoscaling, pool.autoscaling, severity=CRITICAL)
    if pool.autoscaling:
        # Bounds: a hand edit is adopted in git (reviewed), so the number lives in one place again.
        if pool.max_count is not None and pool.max_count != spec.max_count:
            yield _cloud(spec, "max_count", spec.max_count, pool.max_count, adopt=pool.max_count)
        low = pool.min_count
        if low is not None:
            inside = spec.min_count <= low <= spec.max_count if spec.automation_moves_min else low == spec.min_count
            if not inside:
                yield _cloud(spec, "min_count", spec.min_count, low, adopt=low)
    want_taints, have_taints = tuple(sorted(t for t in spec.taints if t)), tuple(sorted(pool.taints))
    if want_taints != have_taints:
        yield _cloud(spec, "taints", list(want_taints), list(have_taints), severity=CRITICAL)
    if (spec.mig_profile or None) != (pool.mig_profile or None):
        yield _cloud(spec, "mig_profile", spec.mig_profile, pool.mig_profile, severity=CRITICAL)
    if spec.zones and pool.zones and tuple(sorted(spec.zones)) != tuple(sorted(pool.zones)):
        yield _cloud(spec, "zones", list(spec.zones), list(pool.zones))
    mine = {k: v for k, v in pool.labels if k.startswith(prefix + "/")} if prefix else {}
    if prefix and mine != dict(spec.labels):
        yield _cloud(spec, "labels", dict(spec.labels), mine)


def _flux_findings(desired: DesiredState, actual: ActualState) -> Iterable[Finding]:
    head = desired.git_head
    sources = {f"GitRepository/{o.namespace}/{o.name}": o for o in actual.flux if o.kind == "GitRepository"}
    root = flux_root(actual.flux, desired.gitops_path)
    for obj in actual.flux:
        resource = obj.resource
        if obj.suspended:
            is_root = root is not None and obj.resource == root.resource
            yield Finding(FLUX_SUSPENDED, CRITICAL if is_root or root is None else WARNING, resource, "spec.suspend",
                          False, True, destructive=False, remedy=REVERT_LIVE,
                          message=(f"{obj.kind} {obj.namespace}/{obj.name} is suspended: "
                                   + (f"nothing reconciles until `flux resume kustomization {obj.name} -n "
                                      f"{obj.namespace}`" if is_root or root is None
                                      else f"a reconcile of Kustomization {root.namespace}/{root.name} (the "
                                           "cluster's entry point) re-applies it from git, resumed, unless git "
                                           "suspends it")),
                          reconcile=None if is_root or root is None else root.resource)
            continue  # a suspended object's other conditions are stale
        if obj.stalled:
            yield Finding(FLUX_STALLED, CRITICAL, resource, "status.conditions[Stalled]", "False", "True",
                          destructive=False, remedy=REVERT_LIVE, reconcile=resource,
                          message=f"{obj.kind} {obj.namespace}/{obj.name} is stalled (retrying cannot help "
                                  f"until git is fixed): {obj.ready_message}")
        elif obj.ready == "False" and obj.current:
            yield Finding(FLUX_NOT_READY, WARNING, resource, "status.conditions[Ready]", "True", "False",
                          destructive=False, remedy=REVERT_LIVE, reconcile=resource,
                          message=f"{obj.kind} {obj.namespace}/{obj.name} is not ready: {obj.ready_message}")
        if obj.drifted:
            yield Finding(HELM_DRIFTED, WARNING, resource, "status.conditions[Drifted]", "False", "True",
                          destructive=False, remedy=REVERT_LIVE, reconcile=resource,
                          message=f"HelmRelease {obj.namespace}/{obj.name}: helm-controller found in-cluster "
                                  "changes to its objects; a reconcile with drift correction restores them")
        if head and obj.kind in ("GitRepository", "Kustomization") and obj.ready != "False" and not obj.stalled:
            tracks_git = obj.kind == "GitRepository" or (obj.source in sources)
            have = _sha(obj.revision)
            if tracks_git and have and have != head:
                yield Finding(FLUX_BEHIND_GIT, INFO if obj.reconciling else WARNING, resource, "revision",
                              head[:12], have[:12], destructive=False, remedy=REVERT_LIVE, reconcile=resource,
                              message=f"{obj.kind} {obj.namespace}/{obj.name} applied {have[:12]}, git "
                                      f"{desired.default_branch} is at {head[:12]}: a reconcile request fetches it")


def flux_root(flux: Iterable[FluxObject], gitops_path: str) -> FluxObject | None:
    """The Kustomization applying the cluster's entry point (AKS names it ``<configuration>-<kustomization>``)."""
    want = gitops_path.strip("./")
    return next((o for o in flux if o.kind == "Kustomization" and (o.path or "").strip("./") == want), None)


def _node_findings(desired: DesiredState, actual: ActualState) -> Iterable[Finding]:
    prefix = desired.node_label_prefix
    specs = {p.name: p for p in desired.pools}
    for node in actual.nodes:
        spec = specs.get(node.pool)
        if spec is None:
            continue  # an undeclared pool is reported once, as a pool
        mine = {k: v for k, v in node.labels if prefix and k.startswith(prefix + "/")}
        if prefix and mine != dict(spec.labels):
            yield Finding(NODE_LABELS_DIFFER, WARNING, f"node/{node.name}", "metadata.labels", dict(spec.labels),
                          mine, destructive=False, remedy=REVERT_LIVE,
                          message=f"node {node.name} (pool {spec.name}) carries other platform labels than its "
                                  "pool declares: relabel it (`kubectl label`) or reimage the node; workloads "
                                  "select on these labels")
        missing = sorted(set(t for t in spec.taints if t) - set(node.taints))
        if missing:
            yield Finding(NODE_TAINTS_DIFFER, CRITICAL, f"node/{node.name}", "spec.taints", list(spec.taints),
                          list(node.taints), destructive=False, remedy=REVERT_LIVE,
                          message=f"node {node.name} (pool {spec.name}) lacks taint(s) {', '.join(missing)}: "
                                  "any pod can land on it; re-taint it or reimage the node")


# -- adopt in git: comment-preserving edits -----------------------------------------------------


def _round_trip() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines (comments at the end of lines stay where they are)
    yaml.indent(mapping=2, sequence=4, offset=2)
    # ruamel writes None as an empty value; the platform files spell it ``null``.
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def apply_edits(text: str, edits: Iterable[YamlEdit]) -> str:
    """``platform.yaml`` with ``edits`` applied, comments, order and quoting kept; only the values change."""
    edits = list(edits)
    if not edits:
        return text
    yaml = _round_trip()
    doc = yaml.load(text)
    for edit in edits:
        node = doc
        for part in edit.path[:-1]:
            node = _step(node, part, edit)
        last = edit.path[-1]
        if isinstance(last, str) and isinstance(node, dict) and last not in node:
            raise KeyError(f"platform.yaml has no {edit.dotted}")
        old = node[last]
        node[last] = _like(old, edit.value)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _step(node: Any, part: PathPart, edit: YamlEdit) -> Any:
    if isinstance(part, str) and part.startswith("name=") and isinstance(node, list):
        wanted = part[5:]
        for item in node:
            if isinstance(item, dict) and str(item.get("name")) == wanted:
                return item
        raise KeyError(f"platform.yaml has no {edit.dotted}")
    try:
        return node[part]
    except (KeyError, IndexError, TypeError):
        raise KeyError(f"platform.yaml has no {edit.dotted}") from None


def _like(old: Any, value: Any) -> Any:
    """Keep a quoted scalar quoted ("1.33" stays a string in the same style)."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    if isinstance(value, str):
        if isinstance(old, DoubleQuotedScalarString):
            return DoubleQuotedScalarString(value)
        if isinstance(old, SingleQuotedScalarString):
            return SingleQuotedScalarString(value)
    return value


# -- gather (I/O through the adapters) -----------------------------------------------------------

FLUX_KINDS = (
    ("source.toolkit.fluxcd.io/v1", "gitrepositories"),
    ("kustomize.toolkit.fluxcd.io/v1", "kustomizations"),
    ("helm.toolkit.fluxcd.io/v2", "helmreleases"),
)


@dataclass(frozen=True)
class Snapshot:
    desired: DesiredState
    actual: ActualState
    ignore: tuple[IgnoreRule, ...] = ()
    #: Sources that could not be read, with why (reported, and their comparisons skipped).
    unavailable: tuple[tuple[str, str], ...] = field(default=())


def repo_platform_path(env: str) -> str:
    """Where the environment's platform file sits in the GitOps repository (this repository)."""
    return f"infra/envs/{env}/platform.yaml"


def platform_file(ctx: Any) -> Path:
    return Path(ctx.settings.config_dir) / ctx.platform.name / "platform.yaml"


def gather(ctx: Any, *, sources: frozenset[str] = frozenset({"arm", "kubernetes", "gitlab"})) -> Snapshot:
    """Read git and the live platform. A source that fails is recorded, not fatal to the others."""
    import yaml

    from shared.errors import PlatformError

    unavailable: list[tuple[str, str]] = []
    head = text = None
    if "gitlab" in sources:
        try:
            branch = ctx.git.branch(ctx.platform.gitlab.default_branch)
            head = branch.commit_id if branch else None
            # Git is the desired state: the platform file at that head, not the (possibly older) deployed copy.
            text = ctx.git.read_file(repo_platform_path(ctx.platform.name), head) if head else None
        except PlatformError as error:
            unavailable.append(("gitlab", f"{error.code}: {error}"))
    raw = yaml.safe_load(text or platform_file(ctx).read_text(encoding="utf-8"))
    read: set[str] = set()
    version = channel = None
    pools: tuple[ActualPool, ...] = ()
    if "arm" in sources:
        try:
            settings = ctx.node_pools.cluster_settings()
            version, channel = settings.get("kubernetes_version"), settings.get("upgrade_channel")
            pools = tuple(_actual_pool(p) for p in ctx.node_pools.list())
            read.add("arm")
        except PlatformError as error:
            unavailable.append(("arm", f"{error.code}: {error}"))
    flux: list[FluxObject] = []
    nodes: tuple[NodeView, ...] = ()
    if "kubernetes" in sources:
        try:
            for api_version, plural in FLUX_KINDS:
                flux.extend(flux_object(o) for o in ctx.cluster.list(api_version, plural))
            nodes = tuple(node_view(n) for n in ctx.cluster.nodes())
            read.add("kubernetes")
        except PlatformError as error:
            unavailable.append(("kubernetes", f"{error.code}: {error}"))
    actual = ActualState(kubernetes_version=version, upgrade_channel=channel, pools=pools, flux=tuple(flux),
                         nodes=nodes, read=frozenset(read))
    return Snapshot(desired=desired_state(raw, head), actual=actual,
                    ignore=ignore_rules(raw, str(platform_file(ctx))),
                    unavailable=tuple(unavailable))


def _actual_pool(pool: Any) -> ActualPool:
    """From the AKS adapter's ``NodePool``."""
    return ActualPool(name=pool.name, vm_size=pool.vm_size, min_count=pool.min_count, max_count=pool.max_count,
                      autoscaling=pool.autoscaling, taints=tuple(pool.taints), labels=tuple(pool.labels),
                      mig_profile=pool.mig_profile, zones=tuple(getattr(pool, "zones", ()) or ()))
