"""RBAC for people and bots, rendered and checked by rule: the ClusterRoles in gitops/apps/base/rbac bound per
environment (gitops/apps/<env>/rbac.yaml) to the Entra ID groups of platform.yaml `access`, and the Azure role
assignments (infra/modules/platform/access.tf) that give those groups a kubeconfig and nothing more."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ENVS = ("dev-uaenorth", "stg-uaenorth", "prd-uaenorth")
GROUP_VARS = {"developers": "${DEVELOPERS_GROUP_ID}", "operators": "${OPERATORS_GROUP_ID}", "bots": "${BOTS_GROUP_ID}"}
EXEC = ("", "pods/exec")
SECRETS = ("", "secrets")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    """`kubectl kustomize gitops/apps/<env>` for the three environments, in parallel, once."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl not found on PATH: the RBAC checks render the apps overlays")

    def build(env: str) -> list[dict]:
        out = subprocess.run([kubectl, "kustomize", str(REPO / "gitops" / "apps" / env)], check=True,
                             capture_output=True, text=True, timeout=120).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(ENVS, pool.map(build, ENVS), strict=True))


def rules_of(objects: list[dict], group: str) -> list[dict]:
    """Every PolicyRule granted to ``group`` (cluster-wide or in any namespace) by the rendered bindings."""
    roles = {(o["kind"], o.get("metadata", {}).get("namespace"), o["metadata"]["name"]): o.get("rules") or []
             for o in objects if o["kind"] in ("ClusterRole", "Role")}
    granted = []
    for binding in (o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        if not any(s.get("kind") == "Group" and s.get("name") == group for s in binding.get("subjects") or []):
            continue
        ref = binding["roleRef"]
        namespace = None if ref["kind"] == "ClusterRole" else binding["metadata"].get("namespace")
        granted += roles.get((ref["kind"], namespace, ref["name"]), [])
    return granted


def can(objects: list[dict], group: str, verb: str, api_group: str, resource: str) -> bool:
    return any((verb in r.get("verbs", []) or "*" in r.get("verbs", []))
               and (api_group in r.get("apiGroups", []) or "*" in r.get("apiGroups", []))
               and (resource in r.get("resources", []) or "*" in r.get("resources", []))
               for r in rules_of(objects, group))


@pytest.mark.parametrize("env", ENVS)
def test_the_bot_cannot_read_secrets(rendered, env):
    for verb in ("get", "list", "watch"):
        assert not can(rendered[env], GROUP_VARS["bots"], verb, *SECRETS)


@pytest.mark.parametrize("env", ENVS)
def test_nobody_in_the_platform_roles_reads_secrets_or_execs_as_a_bot(rendered, env):
    for group in GROUP_VARS.values():
        assert not can(rendered[env], group, "get", *SECRETS), group
    assert not can(rendered[env], GROUP_VARS["bots"], "create", *EXEC)


def test_developers_cannot_exec_in_prd_but_can_in_dev_and_stg(rendered):
    developers = GROUP_VARS["developers"]
    assert not can(rendered["prd-uaenorth"], developers, "create", *EXEC)
    assert not can(rendered["prd-uaenorth"], developers, "create", "", "pods/portforward")
    assert not can(rendered["prd-uaenorth"], developers, "delete", "", "pods")
    assert can(rendered["dev-uaenorth"], developers, "create", *EXEC)
    assert can(rendered["stg-uaenorth"], developers, "create", *EXEC)


@pytest.mark.parametrize("env", ENVS)
def test_every_role_can_read_what_it_is_for(rendered, env):
    objects = rendered[env]
    for group in GROUP_VARS.values():
        assert can(objects, group, "list", "apps", "deployments"), group
    assert can(objects, GROUP_VARS["developers"], "get", "", "pods/log")
    assert can(objects, GROUP_VARS["operators"], "patch", "", "nodes")           # cordon (runbooks)
    assert can(objects, GROUP_VARS["operators"], "create", *EXEC)
    assert can(objects, GROUP_VARS["bots"], "patch", "kustomize.toolkit.fluxcd.io", "kustomizations")


@pytest.mark.parametrize("env", ENVS)
def test_the_platform_roles_are_least_privilege(rendered, env):
    platform_roles = [o for o in rendered[env] if o["kind"] == "ClusterRole" and
                      o["metadata"]["name"] in ("platform-view", "platform-debug", "platform-operate", "platform-bot")]
    assert len(platform_roles) == 4
    for role in platform_roles:
        for rule in role["rules"]:
            for key in ("verbs", "apiGroups", "resources"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], rule)
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), role["metadata"]["name"]
            assert not {"roles", "clusterroles", "rolebindings", "clusterrolebindings", "serviceaccounts/token",
                        "secrets"} & set(rule["resources"]) - ({"serviceaccounts"}), role["metadata"]["name"]


@pytest.mark.parametrize("env", ENVS)
def test_the_bindings_name_the_groups_flux_substitutes_from_platform_yaml(rendered, env):
    subjects = {s["name"] for o in rendered[env] if o["kind"] == "ClusterRoleBinding"
                and o["metadata"]["name"].startswith("platform-") for s in o["subjects"]}
    assert set(GROUP_VARS.values()) <= subjects
    entry = yaml.safe_load((REPO / "gitops" / "clusters" / env / "apps.yaml").read_text())
    provided = entry["spec"]["postBuild"]["substitute"]
    for var in ("DEVELOPERS_GROUP_ID", "OPERATORS_GROUP_ID", "BOTS_GROUP_ID"):
        assert provided[var] == "${" + var + "}"
    flux_tf = (REPO / "infra" / "modules" / "aks" / "flux.tf").read_text()
    for var, key in (("DEVELOPERS", "developers"), ("OPERATORS", "operators"), ("BOTS", "bots")):
        assert re.search(rf"{var}_GROUP_ID\s*=\s*var\.access_group_object_ids\.{key}", flux_tf)
    access = yaml.safe_load((REPO / "infra" / "envs" / env / "platform.yaml").read_text())["access"]
    assert set(access) == set(GROUP_VARS)
    assert len(set(access.values())) == 3, "one group per role"


def test_azure_gives_the_groups_a_kubeconfig_and_no_kubernetes_permissions():
    text = (REPO / "infra" / "modules" / "platform" / "access.tf").read_text()
    roles = re.findall(r'role_definition_name\s*=\s*"([^"]+)"', text)
    assert roles == ["Azure Kubernetes Service Cluster User Role", "Monitoring Reader"]
    assert "Azure Kubernetes Service RBAC" not in text.split("locals {", 1)[1]
