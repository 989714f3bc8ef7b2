"""Drift detection and GitOps merge requests, end to end: the real ARM, Kubernetes and GitLab SDKs against
the emulators, findings kept in Azurite."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from pathlib import Path

import pytest
import yaml
from _fixtures_saas import sandbox_context

from shared.local.sandbox.arm import ArmEmulator
from shared.local.sandbox.gitlab import GitLabEmulator
from shared.local.sandbox.kubernetes import KubernetesEmulator
from shared.services import drift as d
from shared.services import drift_actions as da
from shared.services import gitops_change as gc
from shared.state import table_key

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PLATFORM_PATH = "infra/envs/dev-uaenorth/platform.yaml"
BRANCH = "platform-bot/drift/dev-uaenorth"
T0 = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
KUSTOMIZATIONS = ("kustomize.toolkit.fluxcd.io/v1", "kustomizations")


@pytest.fixture(scope="module")
def arm_server(sandbox_ca, dev_platform):
    declared = yaml.safe_load((ROOT / PLATFORM_PATH).read_text())["cluster"]["kubernetes_version"]
    emulator = ArmEmulator(dev_platform, kubernetes_version=f"{declared}.6")  # the cluster runs what git declares
    emulator.start(sandbox_ca)
    yield emulator
    emulator.stop()


@pytest.fixture
def arm(arm_server):
    arm_server.reset()
    return arm_server


def gitlab_files() -> dict[str, str]:
    return {PLATFORM_PATH: (ROOT / PLATFORM_PATH).read_text(), "gitops/clusters/dev-uaenorth/apps.yaml": "x: 1\n"}


@pytest.fixture
def gitlab(dev_platform):
    emulator = GitLabEmulator(dev_platform, files=gitlab_files())
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def kube(dev_platform, gitlab):
    # Flux has applied the current head of main: no drift to start with.
    emulator = KubernetesEmulator(dev_platform, revision=gitlab.head("main"))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def ctx(dev_platform, arm, kube, gitlab, azurite, sandbox_ca):
    context = sandbox_context(dev_platform, arm, kube, gitlab,
                              PLATFORM_STORAGE_CONNECTION_STRING=azurite.connection_string,
                              TLS_CA_BUNDLE=str(sandbox_ca.ca_path))
    yield context
    # Findings of one test must not leak into the next: they are keyed by environment.
    store = da.FindingStore(context.storage, "dev-uaenorth")
    for f in store.all():
        context.storage.delete(da.FINDINGS_TABLE, table_key("dev-uaenorth"), table_key(f.key))


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]


def test_a_fresh_sandbox_matches_git_with_no_finding_at_all(ctx):
    # The sandbox is the declared estate: system and CPU pools included (no PoolMissing nodepool/cpu any more).
    report = da.run_check(ctx, now=T0, dry_run=True)
    assert report.findings == (), [f.message for f in report.findings]
    assert report.unavailable == ()


def test_a_pool_whose_bounds_were_changed_in_the_portal_gets_a_merge_request_adopting_them(ctx, arm, gitlab):
    arm.set_pool("h100", maxCount=8)
    report = da.run_check(ctx, now=T0, dry_run=False, open_mr=True)

    bounds = [f for f in report.findings if f.resource == "nodepool/h100"]
    assert [(f.kind, f.field, f.expected, f.actual, f.remedy) for f in bounds] == [
        (d.CLOUD_SETTING_CHANGED, "max_count", 4, 8, d.ADOPT_IN_GIT)]
    mr = report.change.merge_request
    assert mr is not None and mr.source_branch == BRANCH and mr.target_branch == "main"
    assert {"platform-bot", "drift", "env::dev-uaenorth", "topic::drift"} <= set(mr.labels)
    assert "| warning | CloudSettingChanged | nodepool/h100 | max_count | 4 | 8 | no |" in mr.description
    # The commit changes exactly the drifted value and keeps every comment.
    assert changed_lines(gitlab.file("main", PLATFORM_PATH), gitlab.file(BRANCH, PLATFORM_PATH)) == [
        "-    max_count: 4", "+    max_count: 8"]
    stored = {f.key: f for f in da.FindingStore(ctx.storage, "dev-uaenorth").all()}
    assert stored["nodepool/h100#max_count"].merge_request == f"{BRANCH}!{mr.iid}"
    assert stored["nodepool/h100#max_count"].first_seen.startswith("2026-11-29T10:00")


def test_two_runs_update_the_same_merge_request_with_one_fresh_commit(ctx, arm, gitlab):
    arm.set_pool("h100", maxCount=8)
    first = da.run_check(ctx, now=T0, dry_run=False, open_mr=True).change
    head_after_first = gitlab.head(BRANCH)
    gitlab.push("main", {"README.md": "# moved on\n"})  # the default branch moves meanwhile
    arm.set_pool("h100", maxCount=9)
    second = da.run_check(ctx, now=T0 + dt.timedelta(hours=1), dry_run=False, open_mr=True).change

    assert second.plan.reason == gc.REFRESHED
    assert second.merge_request.iid == first.merge_request.iid
    assert len([m for m in gitlab.merge_requests.values() if m["source_branch"] == BRANCH]) == 1
    assert gitlab.head(BRANCH) != head_after_first
    # One commit on top of the current main, not a pile of fix-ups.
    assert gitlab.commits[gitlab.head(BRANCH)].parent_ids == [gitlab.head("main")]
    assert "+    max_count: 9" in changed_lines(gitlab.file("main", PLATFORM_PATH), gitlab.file(BRANCH, PLATFORM_PATH))

    third = da.run_check(ctx, now=T0 + dt.timedelta(hours=2), dry_run=False, open_mr=True).change
    assert third.plan.reason == gc.UP_TO_DATE and third.commit_id is None
    assert gitlab.head(BRANCH) == gitlab.commits[gitlab.head(BRANCH)].id


def test_a_branch_a_human_has_committed_to_is_left_alone(ctx, arm, gitlab):
    arm.set_pool("h100", maxCount=8)
    da.run_check(ctx, now=T0, dry_run=False, open_mr=True)
    human = gitlab.push(BRANCH, {"NOTES.md": "please wait for the capacity review\n"}, author="Jane Doe")
    arm.set_pool("h100", maxCount=9)
    change = da.run_check(ctx, now=T0 + dt.timedelta(hours=1), dry_run=False, open_mr=True).change

    assert change.plan.reason == gc.HUMAN_ON_BRANCH and "jane@example.com" in change.plan.message
    assert gitlab.head(BRANCH) == human


def test_a_dry_run_finds_but_commits_nothing_and_records_nothing(ctx, arm, gitlab):
    arm.set_pool("h100", maxCount=8)
    report = da.run_check(ctx, now=T0, dry_run=True, open_mr=True)
    assert report.change is not None and report.change.dry_run and report.change.merge_request is None
    assert BRANCH not in gitlab.branches and gitlab.merge_requests == {}
    assert da.FindingStore(ctx.storage, "dev-uaenorth").all() == []


def test_destructive_and_production_changes_are_labelled_for_review_and_never_auto_merged(ctx, gitlab):
    request = gc.ChangeRequest(
        env="dev-uaenorth", topic="gpu-size", title="bigger GPUs", summary="vm size",
        changes=(gc.FileChange(PLATFORM_PATH, lambda t: d.apply_edits(t, [d.YamlEdit(
            ("gpu_pools", "name=h100", "vm_size"), "Standard_NC80adis_H100_v5")])),),
        destructive=True, auto_merge=True)
    outcome = gc.propose(ctx, request, dry_run=False)
    assert {gc.LABEL_DESTRUCTIVE, gc.LABEL_REVIEW} <= set(outcome.merge_request.labels)
    assert gc.LABEL_AUTO_MERGE not in outcome.merge_request.labels
    assert "never merged automatically" in outcome.merge_request.description

    safe = dataclasses.replace(request, destructive=False)
    assert gc.LABEL_AUTO_MERGE in gc.labels_for(safe)
    assert gc.LABEL_AUTO_MERGE not in gc.labels_for(dataclasses.replace(safe, env="prd-uaenorth"))
    assert gc.LABEL_REVIEW in gc.labels_for(dataclasses.replace(safe, env="prd-uaenorth"))


def test_a_suspended_or_failing_kustomization_is_found_and_reverted_through_a_reconcile_request(ctx, kube):
    apps = kube.object(*KUSTOMIZATIONS, "apps", "flux-system")
    apps["spec"]["suspend"] = True
    kube.put_object(apps, "kustomizations")
    infra = kube.object(*KUSTOMIZATIONS, "infra-configs", "flux-system")
    infra["status"]["conditions"][0].update(status="False", reason="BuildFailed", message="kustomize build failed")
    kube.put_object(infra, "kustomizations")

    report = da.run_check(ctx, now=T0, dry_run=False, revert=True)
    kinds = {(f.kind, f.resource) for f in report.findings}
    assert (d.FLUX_SUSPENDED, "kustomization/flux-system/apps") in kinds
    assert (d.FLUX_NOT_READY, "kustomization/flux-system/infra-configs") in kinds
    # The suspended child is re-applied by the cluster's entry point; the failing one reconciles itself.
    entry = next(o for o in kube.objects[KUSTOMIZATIONS].values()
                 if o["spec"]["path"].strip("./") == "gitops/clusters/dev-uaenorth")["metadata"]["name"]
    assert set(report.reconciles) == {f"kustomization/flux-system/{entry}", "kustomization/flux-system/infra-configs"}
    root = kube.object(*KUSTOMIZATIONS, entry, "flux-system")
    assert root["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"] == T0.isoformat()
    trail = ctx.state.audit_trail(f"flux/dev-uaenorth/kustomization/flux-system/{entry}")
    assert [r.outcome for r in trail][-1] == "succeeded"


def test_node_labels_or_taints_that_differ_from_their_pool_are_found(ctx, kube):
    node = next(n for n in kube.objects[("v1", "nodes")].values()
                if n["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == "system")
    name = node["metadata"]["name"]
    node = kube.object("v1", "nodes", name)
    node["spec"]["taints"] = []
    node["metadata"]["labels"]["platform.example.com/workload"] = "inference"
    kube.put_object(node, "nodes")

    findings = {(f.kind, f.resource) for f in da.run_check(ctx, now=T0, dry_run=True).findings}
    assert {(d.NODE_TAINTS_DIFFER, f"node/{name}"), (d.NODE_LABELS_DIFFER, f"node/{name}")} <= findings


def test_a_kustomization_behind_the_git_head_is_found(ctx, gitlab):
    gitlab.push("main", {"gitops/clusters/dev-uaenorth/apps.yaml": "x: 2\n"})
    findings = [f for f in da.run_check(ctx, now=T0, dry_run=True).findings if f.kind == d.FLUX_BEHIND_GIT]
    assert {f.resource for f in findings if f.resource.startswith("gitrepository/")}
    assert "kustomization/flux-system/apps" in {f.resource for f in findings}


def test_ignore_rules_in_the_platform_file_in_git_silence_a_finding(ctx, arm, gitlab):
    raw = (ROOT / PLATFORM_PATH).read_text().replace(
        "  ignore: []", '  ignore:\n    - {resource: "nodepool/h100", field: max_count, reason: "capacity test"}')
    gitlab.push("main", {PLATFORM_PATH: raw})
    arm.set_pool("h100", maxCount=8)
    assert [f for f in da.run_check(ctx, now=T0, dry_run=True).findings if f.resource == "nodepool/h100"] == []


def test_findings_keep_their_first_sighting_and_close_when_resolved(ctx, arm):
    arm.set_pool("h100", maxCount=8)
    da.run_check(ctx, now=T0, dry_run=False)
    da.run_check(ctx, now=T0 + dt.timedelta(hours=1), dry_run=False)
    store = da.FindingStore(ctx.storage, "dev-uaenorth")
    found = {f.key: f for f in store.all()}["nodepool/h100#max_count"]
    assert (found.first_seen[:16], found.last_seen[:16], found.status) == ("2026-11-29T10:00", "2026-11-29T11:00",
                                                                          "open")
    arm.set_pool("h100", maxCount=4)
    da.run_check(ctx, now=T0 + dt.timedelta(hours=2), dry_run=False)
    found = {f.key: f for f in store.all()}["nodepool/h100#max_count"]
    assert found.status == "closed" and found.closed_reason.startswith("resolved")


def test_the_desired_state_is_the_platform_file_at_the_git_head_not_the_deployed_copy(ctx, arm, gitlab):
    arm.set_pool("h100", maxCount=8)
    da.run_check(ctx, now=T0, dry_run=False, open_mr=True)
    gitlab.merge(1)  # a maintainer merges the adoption: git now says 8, the app's own copy still says 4
    report = da.run_check(ctx, now=T0 + dt.timedelta(hours=1), dry_run=False, open_mr=True)
    assert [f for f in report.findings if f.resource == "nodepool/h100"] == []
    assert report.change is None


def test_a_new_kubernetes_version_opens_the_version_bump_merge_request_for_dev(ctx, gitlab):
    current = yaml.safe_load((ROOT / PLATFORM_PATH).read_text())["cluster"]["kubernetes_version"]
    major, minor = current.split(".")
    target = f"{major}.{int(minor) + 1}"
    plan, outcome = da.propose_version_bump(ctx, f"{target}.2", now=T0, soak=dt.timedelta(days=7), dry_run=False,
                                            actor="test")
    assert plan.reason == "Propose" and plan.target == target
    branch = "platform-bot/kubernetes-version/dev-uaenorth"
    assert outcome.merge_request.source_branch == branch
    assert changed_lines(gitlab.file("main", PLATFORM_PATH), gitlab.file(branch, PLATFORM_PATH)) == [
        f'-  kubernetes_version: "{current}"', f'+  kubernetes_version: "{target}"']
    assert yaml.safe_load(gitlab.file(branch, PLATFORM_PATH))["cluster"]["kubernetes_version"] == target


def test_findings_stay_open_while_a_source_cannot_be_read(ctx, arm, kube):
    arm.set_pool("h100", maxCount=8)
    da.run_check(ctx, now=T0, dry_run=False)
    kube.inject(status=503, times=None)
    arm.inject(status=503, times=None)
    try:
        report = da.run_check(ctx, now=T0 + dt.timedelta(hours=1), dry_run=False)
    finally:
        kube.clear_faults()
        arm.clear_faults()
    assert {s for s, _ in report.unavailable} == {"arm", "kubernetes"}
    found = {f.key: f for f in da.FindingStore(ctx.storage, "dev-uaenorth").all()}["nodepool/h100#max_count"]
    assert found.status == "open"


def test_stg_gets_the_version_bump_only_after_dev_has_declared_it_for_the_soak_time(ctx, gitlab, azurite, sandbox_ca):
    from shared.platform import load_environment

    stg_platform = load_environment("stg-uaenorth")
    stg = sandbox_context(stg_platform, gitlab, PLATFORM_STORAGE_CONNECTION_STRING=azurite.connection_string,
                          TLS_CA_BUNDLE=str(sandbox_ca.ca_path))
    stg_text = (ROOT / "infra/envs/stg-uaenorth/platform.yaml").read_text()
    gitlab.push("main", {"infra/envs/stg-uaenorth/platform.yaml": stg_text}, create_branch=False)
    current = yaml.safe_load(stg_text)["cluster"]["kubernetes_version"]
    major, minor = current.split(".")
    target = f"{major}.{int(minor) + 1}"
    soak = dt.timedelta(days=7)
    now = dt.datetime.now(dt.UTC)

    plan, _ = da.propose_version_bump(stg, f"{target}.1", now=now, soak=soak, dry_run=False, actor="test")
    assert plan.reason == "DevNotThere"
    dev_text = gitlab.file("main", PLATFORM_PATH).replace(f'kubernetes_version: "{current}"',
                                                          f'kubernetes_version: "{target}"')
    gitlab.push("main", {PLATFORM_PATH: dev_text})  # dev's bump merged just now (GitLab dates the commit)
    plan, _ = da.propose_version_bump(stg, f"{target}.1", now=now, soak=soak, dry_run=False, actor="test")
    assert plan.reason == "WaitForDev"
    plan, outcome = da.propose_version_bump(stg, f"{target}.1", now=now + dt.timedelta(days=8), soak=soak,
                                            dry_run=False, actor="test")
    assert plan.reason == "Propose"
    assert outcome.merge_request.source_branch == "platform-bot/kubernetes-version/stg-uaenorth"
    assert gc.LABEL_REVIEW not in outcome.merge_request.labels  # stg: reviewed as usual, not flagged
