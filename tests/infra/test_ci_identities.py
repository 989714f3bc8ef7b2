"""The CI identities (infra/modules/platform/ci_identities.tf) trust exactly the jobs the pipeline files run.

Every job that signs in to Azure names an environment; that environment's AZURE_CLIENT_ID is the plan or the
deploy identity of one platform environment (output `ci_variables`). These tests render the federated subjects
from platform.yaml and check them against what GitLab and GitHub put in the token of each such job:
GitLab `project_path:<project>:ref_type:branch:ref:<branch>` (the sub claim cannot name the environment),
GitHub `repo:<owner>/<repo>:environment:<environment>` (a job with an environment always gets that subject).
They also hold the plan identity to read-only roles.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from infra_helpers import ENVIRONMENTS, ENVS_DIR, MODULES_DIR, REPO, blocks, load_hcl, module_locals, resources

PLATFORM_MODULE = MODULES_DIR / "platform"
CI_TF = PLATFORM_MODULE / "ci_identities.tf"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
CI_VARIABLES = {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID"}
# Roles that read and never change anything (data plane included): all the plan identity may hold.
READ_ONLY_ROLES = {
    "Reader", "Storage Blob Data Reader", "Storage Table Data Reader", "Storage Queue Data Reader",
    "Key Vault Reader", "Key Vault Secrets User", "AcrPull", "Monitoring Reader",
}


@cache
def platform(env: str) -> dict:
    return yaml.safe_load((ENVS_DIR / env / "platform.yaml").read_text())


@cache
def ci_locals() -> dict:
    return module_locals(PLATFORM_MODULE)


def render(template: str, env: str, identity: dict | None = None) -> str:
    """A Terraform string template of ci_identities.tf with platform.yaml's values (only the forms it uses)."""

    def value(match: re.Match) -> str:
        expr = match[1]
        if expr == "local.env":
            return env
        if expr.startswith("local.p."):
            node = platform(env)
            for part in expr.removeprefix("local.p.").split("."):
                node = node[part]
            return str(node)
        if expr.startswith("ci.") and identity is not None:
            return render(identity[expr.removeprefix("ci.")], env)
        raise AssertionError(f"cannot render ${{{expr}}} in {template!r}")

    return re.sub(r"\$\{([\w.]+)\}", value, template)


def identities(env: str) -> dict[str, dict]:
    return ci_locals()["ci_identities"]


def federation(env: str) -> set[tuple[str, str, str]]:
    """(identity, issuer, subject) of every federated credential of one environment."""
    loc = ci_locals()
    assert loc["ci_gitlab_issuer"] == '${trimsuffix(local.p.gitlab.url, "/")}'
    found = {(name, platform(env)["gitlab"]["url"].rstrip("/"), render(loc["ci_gitlab_subject"], env))
             for name in identities(env)}
    github = loc["ci_github_federation"]
    (subject,) = re.findall(r'subject = \\?"(.+?)\\?"', github)
    assert f'issuer = \\"{GITHUB_ISSUER}\\"' in github or f'issuer = "{GITHUB_ISSUER}"' in github
    if platform(env).get("ci", {}).get("github_repository"):
        found |= {(name, GITHUB_ISSUER, render(subject, env, ci)) for name, ci in identities(env).items()}
    return found


# -- pipeline files: which job signs in with which environment, on which refs ---------------------------------

class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@cache
def gitlab_config() -> dict:
    root = yaml.load((REPO / ".gitlab-ci.yml").read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    merged: dict = {}
    for include in root.get("include", []):
        text = (REPO / include["local"]).read_text()
        merged.update(yaml.load(text, Loader=_Loader))  # noqa: S506 - a SafeLoader subclass
    merged.update(root)
    return merged


def gitlab_job(name: str) -> dict:
    config = gitlab_config()
    job = config[name]
    parents = job.get("extends", [])
    resolved: dict = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        resolved = _merge(resolved, gitlab_job(parent))
    return _merge(resolved, {k: v for k, v in job.items() if k != "extends"})


def _rule_ifs(job: dict) -> list[str]:
    """The `if:` conditions of a job's rules (a `!reference [.x, rules]` loads as its path and is resolved)."""
    rules = job.get("rules", [])
    if rules and all(isinstance(part, str) for part in rules):
        node = gitlab_config()
        for part in rules:
            node = node[part]
        rules = node
    return [rule.get("if", "") for rule in rules if isinstance(rule, dict)]


def gitlab_azure_jobs() -> list[tuple[str, str, list[str]]]:
    """(job, environment name, rule conditions) for every job that signs in to Azure (extends .azure-oidc)."""
    found = []
    for name, job in gitlab_config().items():
        if name.startswith(".") or not isinstance(job, dict) or "extends" not in job:
            continue
        resolved = gitlab_job(name)
        if "AZURE_ID_TOKEN" not in resolved.get("id_tokens", {}):
            continue
        environment = resolved.get("environment")
        assert environment, f"{name} signs in to Azure without an environment: it would get no AZURE_CLIENT_ID"
        env_name = environment["name"] if isinstance(environment, dict) else environment
        matrix = resolved.get("parallel", {}).get("matrix", [])
        values = ([v for entry in matrix for v in entry.get("PLATFORM_ENV", [])]
                  or [resolved["variables"]["PLATFORM_ENV"]])
        for platform_env in values:
            found.append((name, re.sub(r"\$\{?PLATFORM_ENV\}?", platform_env, env_name), _rule_ifs(resolved)))
    return found


def _identity_of(ci_environment: str, system: str) -> tuple[str, str]:
    """(platform environment, identity) whose ci_variables entry the CI environment holds."""
    for env in ENVIRONMENTS:
        for name, ci in identities(env).items():
            if render(ci[f"{system}_environment"], env) == ci_environment:
                return env, name
    raise AssertionError(f"{system} environment {ci_environment!r} holds no CI identity's client ID")


MAIN_RULE = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"


@cache
def workflows() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in (REPO / ".github" / "workflows").glob("*.yml")}


def _expand(expr: str, context: dict[str, str]) -> str:
    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", lambda m: context[m[1]], expr)


def github_azure_jobs() -> list[tuple[str, str, str]]:
    """(caller job, GitHub environment, mode) for every job of ci.yml (direct or reusable) that runs azure/login."""
    found = []
    for caller, job in workflows()["ci.yml"]["jobs"].items():
        uses = job.get("uses", "")
        if not uses.startswith("./.github/workflows/"):
            continue
        called = workflows()[Path(uses).name]
        matrix = job.get("strategy", {}).get("matrix", {})
        rows = [{"matrix.environment": e} for e in matrix.get("environment", [])] or [{}]
        for row in rows:
            inputs = {f"inputs.{k}": _expand(str(v), row) for k, v in job.get("with", {}).items()}
            for inner_name, inner in called["jobs"].items():
                # azure/login, or a step handing vars.AZURE_CLIENT_ID to azure-identity (the promotion gate).
                if "vars.AZURE_CLIENT_ID" not in yaml.safe_dump(inner.get("steps", []), width=1000):
                    continue
                inner_rows = [{"matrix.environment": e} for e in inner.get("strategy", {}).get("matrix", {})
                              .get("environment", [])] or [{}]
                for inner_row in inner_rows:
                    environment = _expand(inner["environment"], {**inputs, **inner_row})
                    mode = inputs.get("inputs.mode") or Path(uses).stem
                    found.append((f"{caller}/{inner_name}", environment, mode))
    return found


# -- tests ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_has_a_plan_and_a_deploy_identity_federated_with_both_cis(env):
    assert set(identities(env)) == {"plan", "deploy"}
    trusted = federation(env)
    assert {(i, iss) for i, iss, _ in trusted} == {
        ("plan", "https://gitlab.example.com"), ("deploy", "https://gitlab.example.com"),
        ("plan", GITHUB_ISSUER), ("deploy", GITHUB_ISSUER)}
    gitlab = platform(env)["gitlab"]
    subject = f"project_path:{gitlab['project']}:ref_type:branch:ref:{gitlab['default_branch']}"
    assert ("deploy", gitlab["url"], subject) in trusted


def test_the_ci_repository_facts_are_declared_once_and_are_the_same_everywhere():
    facts = {env: (platform(env)["gitlab"]["url"], platform(env)["gitlab"]["project"],
                   platform(env)["ci"]["github_repository"]) for env in ENVIRONMENTS}
    assert len(set(facts.values())) == 1, facts
    (url, project, repository), = set(facts.values())
    assert re.fullmatch(r"https://[^/]+", url) and re.fullmatch(r"[\w.-]+(/[\w.-]+)+", project)
    assert re.fullmatch(r"[A-Za-z0-9-]+/[\w.-]+", repository)
    variable = blocks(PLATFORM_MODULE, "variable")["platform"]
    conditions = " ".join(v["condition"] for v in variable["validation"])
    assert "ci.github_repository" in conditions and "gitlab.url" in conditions and "gitlab.project" in conditions


def test_every_gitlab_job_signing_in_to_azure_runs_on_main_where_its_identity_trusts_it():
    jobs = gitlab_azure_jobs()
    assert {name for name, _, _ in jobs} >= {"plan:dev", "apply:dev", "deploy:prd", "gate:stg", "images:trivy"}
    for name, ci_environment, conditions in jobs:
        env, identity = _identity_of(ci_environment, "gitlab")
        assert any(MAIN_RULE in c for c in conditions), f"{name} never runs on the default branch"
        gitlab = platform(env)["gitlab"]
        subject = f"project_path:{gitlab['project']}:ref_type:branch:ref:{gitlab['default_branch']}"
        assert (identity, gitlab["url"], subject) in federation(env), (name, identity, subject)


def test_gitlab_jobs_holding_the_deploy_identity_run_on_main_only():
    for name, ci_environment, conditions in gitlab_azure_jobs():
        _, identity = _identity_of(ci_environment, "gitlab")
        if identity == "deploy":
            assert conditions and all(c.strip() == MAIN_RULE for c in conditions), (name, conditions)
            assert gitlab_job(name)["stage"] in {"apply", "promote"}, name


def test_every_github_job_signing_in_to_azure_uses_an_environment_its_identity_trusts():
    jobs = github_azure_jobs()
    assert {mode for _, _, mode in jobs} == {"plan", "apply", "functions", "promotion-gate", "security"}
    repository = platform("dev-uaenorth")["ci"]["github_repository"]
    for name, environment, mode in jobs:
        env, identity = _identity_of(environment, "github")
        assert (identity, GITHUB_ISSUER, f"repo:{repository}:environment:{environment}") in federation(env), name
        # Only applies and Functions deploys hold the deploy identity; plans, gates and scans read.
        assert identity == ("deploy" if mode in {"apply", "functions"} else "plan"), (name, mode, identity)


def test_the_security_workflow_scans_images_with_each_environments_plan_identity():
    environments = {e for name, e, _ in github_azure_jobs() if name.startswith("security/")}
    assert environments == {f"{env}-plan" for env in ENVIRONMENTS}
    assert "id-token" in workflows()["ci.yml"]["jobs"]["security"]["permissions"]
    trivy = {e for name, e, _ in gitlab_azure_jobs() if name == "images:trivy"}
    assert trivy == {f"plan/{env}" for env in ENVIRONMENTS}
    for text in ((REPO / "ci/gitlab/security.yml").read_text(), (REPO / ".github/workflows/security.yml").read_text()):
        assert "az acr login" in text


def test_the_plan_identity_holds_read_only_roles_and_the_deploy_identity_cannot_grant_admin():
    roles = ci_locals()["ci_roles"]
    plan = {r["role"] for r in roles.values() if r["identity"] == "plan"}
    assert plan and plan <= READ_ONLY_ROLES, plan - READ_ONLY_ROLES
    assert not any(re.search(r"Contributor|Owner|Administrator|Officer|Writer|Push|Delete", r) for r in plan)
    assert {r["role"] for r in roles.values() if r["identity"] == "deploy"} >= {"Contributor"}
    extra = {name: body for (rtype, name), body in resources(PLATFORM_MODULE).items()
             if rtype == "azurerm_role_assignment" and "azurerm_user_assigned_identity.ci" in str(body)}
    assert set(extra) == {"ci", "ci_deploy_assigns_roles"}
    rbac = extra["ci_deploy_assigns_roles"]
    assert 'ci["deploy"]' in rbac["principal_id"] and rbac["condition_version"] == "2.0"
    owner, uaa, rbac_admin = ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
                              "f58310d9-a9f6-439a-9e8d-f62e7b41a168")
    assert {owner, uaa, rbac_admin} <= set(re.findall(r"[0-9a-f-]{36}", ci_locals()["ci_privileged_role_ids"]))
    assert rbac["condition"].count("GuidNotEquals") == 2


def test_plans_do_not_take_the_state_lock_which_the_read_only_identity_cannot_write():
    gitlab = " ".join(gitlab_job(".terraform-plan")["script"])
    github = workflows()["terraform.yml"]["jobs"]["terraform"]["steps"]
    (plan_step,) = [s for s in github if s.get("name") == "terraform plan"]
    for script in (gitlab, plan_step["run"]):
        assert re.search(r"terraform -chdir=\S+ plan .*-lock=false", script), script


def test_the_ci_variables_output_names_the_variables_the_pipelines_read():
    output = blocks(PLATFORM_MODULE, "output")["ci_variables"]["value"]
    assert set(re.findall(r"AZURE_\w+", str(output))) == CI_VARIABLES
    oidc = (REPO / "ci/gitlab/azure-oidc.yml").read_text()
    assert {v for v in CI_VARIABLES if f"${v}" in oidc or f"${{{v}}}" in oidc} == CI_VARIABLES
    used = set()
    for text in ((REPO / ".github/workflows") / name for name in ("terraform.yml", "functions.yml", "security.yml")):
        used |= set(re.findall(r"vars\.(AZURE_\w+)", text.read_text()))
    assert used == CI_VARIABLES
    root = load_hcl(REPO / "infra" / "root" / "main.tf")
    assert any("ci_variables" in entry for entry in root["output"]), "the environment root exports ci_variables"
    # Environment names in the output are the ones the pipelines use (rendered per environment).
    names = {(system, render(ci[f"{system}_environment"], env)) for env in ENVIRONMENTS
             for ci in identities(env).values() for system in ("gitlab", "github")}
    assert {n for s, n in names if s == "gitlab"} == {e for _, e, _ in gitlab_azure_jobs()} | {
        f"plan/{env}" for env in ENVIRONMENTS}
    assert {n for s, n in names if s == "github"} == {e for _, e, _ in github_azure_jobs()}
