"""The drift diff (pure): one row per finding kind, ignore rules, and the comment-preserving platform.yaml edit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
from pathlib import Path

import pytest
import yaml

from shared.services import drift as d
from shared.services import drift_actions as da

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
HEAD = "a" * 40
PREFIX = "platform.example.com"


def platform_text(env: str = "dev-uaenorth") -> str:
    return (ROOT / "infra" / "envs" / env / "platform.yaml").read_text()


@pytest.fixture(scope="module")
def desired() -> d.DesiredState:
    return d.desired_state(yaml.safe_load(platform_text()), HEAD)


def matching_actual(desired: d.DesiredState) -> d.ActualState:
    """The live platform exactly as git declares it."""
    pools = tuple(d.ActualPool(p.name, p.vm_size, p.min_count, p.max_count, True, p.taints, p.labels,
                               p.mig_profile, p.zones) for p in desired.pools)
    rev = f"main@sha1:{HEAD}"
    source = "GitRepository/flux-system/flux-system"
    flux = (d.FluxObject("GitRepository", "flux-system", "flux-system", ready="True", revision=rev),
            d.FluxObject("Kustomization", "flux-system", "platform-cluster", ready="True", revision=rev, source=source,
                         path="./gitops/clusters/dev-uaenorth"),
            d.FluxObject("Kustomization", "flux-system", "apps", ready="True", revision=rev, source=source),
            d.FluxObject("HelmRelease", "cert-manager", "cert-manager", ready="True"))
    nodes = tuple(d.NodeView(f"aks-{p.name}-0", p.name, (*p.labels, (d.AGENTPOOL_LABEL, p.name)), p.taints)
                  for p in desired.pools)
    return d.ActualState(kubernetes_version=f"{desired.kubernetes_version}.6", upgrade_channel="patch", pools=pools,
                         flux=flux, nodes=nodes)


def next_minor(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}"


def with_pool(actual: d.ActualState, name: str, **changes) -> d.ActualState:
    pools = tuple(dataclasses.replace(p, **changes) if p.name == name else p for p in actual.pools)
    return dataclasses.replace(actual, pools=pools)


def with_flux(actual: d.ActualState, name: str, **changes) -> d.ActualState:
    flux = tuple(dataclasses.replace(o, **changes) if o.name == name else o for o in actual.flux)
    return dataclasses.replace(actual, flux=flux)


def with_node(actual: d.ActualState, pool: str, **changes) -> d.ActualState:
    nodes = tuple(dataclasses.replace(n, **changes) if n.pool == pool else n for n in actual.nodes)
    return dataclasses.replace(actual, nodes=nodes)


def test_a_platform_exactly_as_declared_has_no_drift(desired):
    assert d.diff(desired, matching_actual(desired), now=NOW) == []


# behaviour -> (change to the live platform, expected (kind, resource, field, remedy, destructive))
CASES = {
    "a hand-raised GPU max_count is adopted in git": (
        lambda a: with_pool(a, "h100", max_count=8),
        (d.CLOUD_SETTING_CHANGED, "nodepool/h100", "max_count", d.ADOPT_IN_GIT, False)),
    "a GPU min_count below the floor is adopted in git": (
        lambda a: with_pool(a, "system", min_count=1),
        (d.CLOUD_SETTING_CHANGED, "nodepool/system", "min_count", d.ADOPT_IN_GIT, False)),
    "a changed VM size is destructive and left to terraform": (
        lambda a: with_pool(a, "h100", vm_size="Standard_NC80adis_H100_v5"),
        (d.CLOUD_SETTING_CHANGED, "nodepool/h100", "vm_size", d.TERRAFORM_APPLY, True)),
    "a removed taint is destructive": (
        lambda a: with_pool(a, "mi300x", taints=()),
        (d.CLOUD_SETTING_CHANGED, "nodepool/mi300x", "taints", d.TERRAFORM_APPLY, True)),
    "a MIG profile set by hand is destructive": (
        lambda a: with_pool(a, "h100", mig_profile="MIG1g"),
        (d.CLOUD_SETTING_CHANGED, "nodepool/h100", "mig_profile", d.TERRAFORM_APPLY, True)),
    "changed zones are destructive": (
        lambda a: with_pool(a, "h100", zones=("1",)),
        (d.CLOUD_SETTING_CHANGED, "nodepool/h100", "zones", d.TERRAFORM_APPLY, True)),
    "an autoscaler switched off is reported": (
        lambda a: with_pool(a, "cpu", autoscaling=False),
        (d.CLOUD_SETTING_CHANGED, "nodepool/cpu", "autoscaling", d.TERRAFORM_APPLY, False)),
    "a newer live Kubernetes minor is adopted in git": (
        lambda a: dataclasses.replace(a, kubernetes_version=next_minor(a.kubernetes_version) + ".2"),
        (d.CLOUD_SETTING_CHANGED, "cluster", "kubernetes_version", d.ADOPT_IN_GIT, False)),
    "a changed upgrade channel is left to terraform": (
        lambda a: dataclasses.replace(a, upgrade_channel="rapid"),
        (d.CLOUD_SETTING_CHANGED, "cluster", "upgrade_channel", d.TERRAFORM_APPLY, False)),
    "a declared pool that does not exist is missing": (
        lambda a: dataclasses.replace(a, pools=tuple(p for p in a.pools if p.name != "mi300x"),
                                      nodes=tuple(n for n in a.nodes if n.pool != "mi300x")),
        (d.POOL_MISSING, "nodepool/mi300x", "", d.TERRAFORM_APPLY, False)),
    "a pool added in the portal is unmanaged": (
        lambda a: dataclasses.replace(a, pools=(*a.pools, d.ActualPool("adhoc", "Standard_D4ds_v5", 1, 2, True))),
        (d.POOL_UNMANAGED, "nodepool/adhoc", "", d.REVERT_LIVE, False)),
    "a suspended Kustomization is reverted by reconciling its parent": (
        lambda a: with_flux(a, "apps", suspended=True),
        (d.FLUX_SUSPENDED, "kustomization/flux-system/apps", "spec.suspend", d.REVERT_LIVE, False)),
    "a failing Kustomization is not ready": (
        lambda a: with_flux(a, "apps", ready="False", ready_message="kustomize build failed"),
        (d.FLUX_NOT_READY, "kustomization/flux-system/apps", "status.conditions[Ready]", d.REVERT_LIVE, False)),
    "a stalled HelmRelease is critical": (
        lambda a: with_flux(a, "cert-manager", ready="False", stalled=True),
        (d.FLUX_STALLED, "helmrelease/cert-manager/cert-manager", "status.conditions[Stalled]", d.REVERT_LIVE,
         False)),
    "a Kustomization behind the git head asks for a reconcile": (
        lambda a: with_flux(a, "apps", revision="main@sha1:" + "b" * 40),
        (d.FLUX_BEHIND_GIT, "kustomization/flux-system/apps", "revision", d.REVERT_LIVE, False)),
    "helm-controller drift is reported": (
        lambda a: with_flux(a, "cert-manager", drifted=True),
        (d.HELM_DRIFTED, "helmrelease/cert-manager/cert-manager", "status.conditions[Drifted]", d.REVERT_LIVE,
         False)),
    "a relabelled node differs from its pool": (
        lambda a: with_node(a, "h100", labels=((d.AGENTPOOL_LABEL, "h100"), (f"{PREFIX}/gpu-pool", "other"))),
        (d.NODE_LABELS_DIFFER, "node/aks-h100-0", "metadata.labels", d.REVERT_LIVE, False)),
    "an untainted GPU node differs from its pool": (
        lambda a: with_node(a, "h100", taints=()),
        (d.NODE_TAINTS_DIFFER, "node/aks-h100-0", "spec.taints", d.REVERT_LIVE, False)),
}


@pytest.mark.parametrize("behaviour", list(CASES))
def test_each_finding_kind(desired, behaviour):
    change, (kind, resource, field, remedy, destructive) = CASES[behaviour]
    findings = d.diff(desired, change(matching_actual(desired)), now=NOW)
    assert [(f.kind, f.resource, f.field, f.remedy, f.destructive) for f in findings] == [
        (kind, resource, field, remedy, destructive)], [f.message for f in findings]
    assert findings[0].message and findings[0].severity in (d.CRITICAL, d.WARNING, d.INFO)


def test_a_suspended_child_is_resumed_through_the_cluster_entry_point_and_a_suspended_root_only_reported(desired):
    child = d.diff(desired, with_flux(matching_actual(desired), "apps", suspended=True), now=NOW)[0]
    assert (child.severity, child.reconcile) == (d.WARNING, "kustomization/flux-system/platform-cluster")
    root = d.diff(desired, with_flux(matching_actual(desired), "platform-cluster", suspended=True), now=NOW)[0]
    assert (root.severity, root.reconcile) == (d.CRITICAL, None)


def test_a_gpu_min_count_raised_by_the_automation_within_bounds_is_not_drift(desired):
    assert d.diff(desired, with_pool(matching_actual(desired), "h100", min_count=3), now=NOW) == []


def test_a_source_that_could_not_be_read_is_not_compared(desired):
    actual = dataclasses.replace(matching_actual(desired), pools=(), read=frozenset({"kubernetes"}))
    assert d.diff(desired, actual, now=NOW) == []


def test_ignore_rules_match_resource_and_field_globs_until_their_date(desired):
    actual = with_pool(with_pool(matching_actual(desired), "h100", max_count=8), "mi300x", max_count=2)
    rules = d.parse_ignore_rules({"ignore": [
        {"resource": "nodepool/h1*", "field": "max_count", "reason": "capacity test"},
        {"resource": "nodepool/mi300x", "reason": "expired", "until": "2026-01-01"},
    ]})
    found = d.diff(desired, actual, ignore=rules, now=NOW)
    assert [f.resource for f in found] == ["nodepool/mi300x"]


def test_an_ignore_rule_without_a_reason_is_refused():
    with pytest.raises(ValueError, match="reason"):
        d.parse_ignore_rules({"ignore": [{"resource": "nodepool/*"}]})


@pytest.mark.parametrize("env", ["dev-uaenorth", "stg-uaenorth", "prd-uaenorth"])
def test_every_environment_declares_valid_ignore_rules_in_its_platform_file(env):
    raw = yaml.safe_load(platform_text(env))
    assert "ignore" in raw["drift"]
    d.ignore_rules(raw)


def test_the_platform_yaml_edit_keeps_comments_and_changes_only_the_drifted_value(desired):
    text = platform_text()
    finding = d.diff(desired, with_pool(matching_actual(desired), "h100", max_count=8), now=NOW)[0]
    edited = d.apply_edits(text, [finding.edit])
    changed = [line for line in difflib.unified_diff(text.splitlines(), edited.splitlines(), lineterm="", n=0)
               if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    assert changed == ["-    max_count: 4", "+    max_count: 8"]
    assert yaml.safe_load(edited)["gpu_pools"][0]["max_count"] == 8


def test_a_flow_style_pool_and_a_quoted_version_keep_their_style():
    text = platform_text()
    edited = d.apply_edits(text, [d.YamlEdit(("cluster", "system_pool", "max_count"), 5),
                                  d.YamlEdit(("cluster", "kubernetes_version"), "9.99")])
    changed = [line for line in difflib.unified_diff(text.splitlines(), edited.splitlines(), lineterm="", n=0)
               if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    assert changed == [
        f'-  kubernetes_version: "{yaml.safe_load(text)["cluster"]["kubernetes_version"]}"',
        '+  kubernetes_version: "9.99"',
        '-  system_pool: {vm_size: Standard_D4ds_v5, min_count: 2, max_count: 3}',
        '+  system_pool: {vm_size: Standard_D4ds_v5, min_count: 2, max_count: 5}']


@pytest.mark.parametrize("env", ["dev-uaenorth", "stg-uaenorth", "prd-uaenorth"])
def test_a_round_trip_without_edits_reproduces_every_platform_file(env):
    text = platform_text(env)
    assert d.apply_edits(text, [d.YamlEdit(("environment",), env)]) == text


def test_the_gpu_taints_and_labels_follow_the_aks_module():
    locals_tf = (ROOT / "infra" / "modules" / "aks" / "locals.tf").read_text()
    block = re.search(r"gpu_taints\s*=\s*\{(?P<body>[^}]*)\}", locals_tf)["body"]
    assert dict(re.findall(r'(\w+)\s*=\s*"([^"]+)"', block)) == d.GPU_TAINTS
    for label in ("gpu-vendor", "gpu-pool", "gpus-per-node", "workload", "inference-queue", "mig-profile"):
        assert f'"${{var.node_label_prefix}}/{label}"' in locals_tf


# -- version bumps (pure) -------------------------------------------------------------------------

SOAK = dt.timedelta(days=7)


@pytest.mark.parametrize("behaviour, env, dev_version, dev_age_days, reason, target", [
    ("dev goes first", "dev-uaenorth", None, None, "Propose", "1.33"),
    ("stg waits while dev does not run the minor", "stg-uaenorth", "1.32", 30, "DevNotThere", None),
    ("stg waits for dev's soak time", "stg-uaenorth", "1.33", 2, "WaitForDev", "1.33"),
    ("prd follows once dev has soaked", "prd-uaenorth", "1.33", 8, "Propose", "1.33"),
])
def test_version_bumps_go_to_dev_first_then_the_others(behaviour, env, dev_version, dev_age_days, reason, target):
    since = NOW - dt.timedelta(days=dev_age_days) if dev_age_days is not None else None
    plan = da.plan_version_bump(env, "1.32", "1.34.1", now=NOW, soak=SOAK, dev_version=dev_version,
                                dev_since=since)
    assert (plan.reason, plan.target) == (reason, target), plan.message


def test_a_version_that_is_not_newer_proposes_nothing():
    assert da.plan_version_bump("dev-uaenorth", "1.33", "1.33.4", now=NOW, soak=SOAK, dev_version=None,
                                dev_since=None).reason == "NotNewer"
