"""Every pipeline file validates against its published schema (check-jsonschema's vendored GitLab CI and GitHub
workflow schemas, actionlint), and the pipelines keep the delivery rules: OIDC only, the plan that apply applies,
stg/prd behind approval and the gate, one package deployed everywhere, actions pinned by commit SHA."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITLAB_FILES = sorted([REPO / ".gitlab-ci.yml", *(REPO / "ci" / "gitlab").glob("*.yml")])
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ENVS = ("dev-uaenorth", "stg-uaenorth", "prd-uaenorth")
BIN = Path(sys.executable).parent


class GitLabLoader(yaml.SafeLoader):
    """PyYAML with GitLab's !reference tag (kept as a list of its path)."""


GitLabLoader.add_constructor("!reference", lambda loader, node: ["!reference", *loader.construct_sequence(node)])


@cache
def gitlab() -> dict:
    """The merged GitLab configuration: .gitlab-ci.yml and its local includes (no extends resolution)."""
    merged: dict = {}
    for path in GITLAB_FILES:
        merged.update(yaml.load(path.read_text(), Loader=GitLabLoader) or {})  # noqa: S506 - a SafeLoader subclass
    return merged


@cache
def workflow(name: str) -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())


def job(name: str) -> dict:
    """A GitLab job with its `extends` chain merged (shallow, like GitLab's deep merge for the keys we check)."""
    config = gitlab()
    own = dict(config[name])
    parents = own.pop("extends", [])
    merged: dict = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged.update(job(parent))
    merged.update(own)
    return merged


def tool(name: str) -> str:
    exe = BIN / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: make venv (requirements-dev.txt pins it)")
    return found


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_the_gitlab_pipeline_and_its_templates_match_the_gitlab_ci_schema():
    proc = run(tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci",
               *map(str, GITLAB_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_workflow_matches_the_github_workflow_schema():
    proc = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_finds_nothing_in_the_workflows():
    # shellcheck/pyflakes integrations off: they depend on what the machine has, and the result must not.
    proc = run(tool("actionlint"), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, WORKFLOWS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- rules the schemas cannot express -------------------------------------------------------------------------

def pipeline_text() -> str:
    return "\n".join(p.read_text() for p in [*GITLAB_FILES, *WORKFLOWS])


def test_no_pipeline_uses_a_client_secret():
    assert not re.search(r"(ARM|AZURE)_CLIENT_SECRET|client-secret|creds:", pipeline_text())


def test_gitlab_signs_in_to_azure_with_an_id_token_for_azure_ad():
    oidc = gitlab()[".azure-oidc"]
    assert oidc["id_tokens"]["AZURE_ID_TOKEN"]["aud"] == "api://AzureADTokenExchange"
    assert oidc["variables"]["ARM_USE_OIDC"] == "true"


def test_every_azure_job_on_gitlab_uses_the_oidc_template():
    for name in gitlab():
        if name.startswith((".", "plan:", "apply:", "deploy:", "gate:")) and ":" in name:
            assert ".azure-oidc" in _ancestors(name), name


def _ancestors(name: str) -> set[str]:
    parents = gitlab()[name].get("extends", [])
    parents = [parents] if isinstance(parents, str) else parents
    return set(parents).union(*(_ancestors(p) for p in parents)) if parents else set()


@pytest.mark.parametrize("env", ENVS)
def test_gitlab_applies_the_plan_made_in_the_same_pipeline(env):
    short = env.split("-")[0]
    apply = job(f"apply:{short}")
    assert f"plan:{short}" in apply["needs"]
    assert apply["variables"]["PLATFORM_ENV"] == env
    assert any("plan-${PLATFORM_ENV}.tfplan" in line for line in apply["script"])
    assert "plan-${PLATFORM_ENV}.tfplan" in job(f"plan:{short}")["artifacts"]["paths"]


def test_gitlab_applies_dev_automatically_and_stg_prd_only_by_hand_after_the_gate():
    assert "when" not in str(job("apply:dev")["rules"])
    for short, previous in (("stg", "dev"), ("prd", "stg")):
        apply = job(f"apply:{short}")
        assert [r.get("when") for r in apply["rules"]] == ["manual"]
        assert apply["allow_failure"] is False       # a blocking manual job: later jobs wait for the approval
        assert f"gate:{short}" in apply["needs"]
        assert apply["environment"]["name"] == f"{short}-uaenorth"
        assert job(f"gate:{short}")["needs"] == [f"deploy:{previous}"]


def test_gitlab_deploys_one_package_built_once_and_smoke_tests_it():
    assert job("functions:build")["stage"] == "validate"
    for short in ("dev", "stg", "prd"):
        deploy = job(f"deploy:{short}")
        assert deploy["needs"] == [f"apply:{short}", "functions:build"]
        assert any("smoke_health.py" in line and "/api/health" in line for line in deploy["script"])
        assert any("sha256sum -c" in line for line in deploy["script"])


def test_pipelines_do_not_restate_platform_facts():
    text = pipeline_text()
    for env in ENVS:
        facts = yaml.safe_load((REPO / "infra" / "envs" / env / "platform.yaml").read_text())
        for value in (facts["automation"]["function_app_name"], facts["resource_group"],
                      facts["storage"]["account_name"], facts["cluster"]["name"]):
            assert value not in text, f"{value} (from {env}/platform.yaml) is restated in a pipeline file"


USES = re.compile(r"uses:\s*(?P<ref>[^\s#]+)(?:\s*#\s*(?P<comment>\S+))?")


def test_every_action_is_pinned_by_commit_sha_with_its_version_in_a_comment():
    for path in WORKFLOWS:
        for match in USES.finditer(path.read_text()):
            ref = match["ref"]
            if ref.startswith("./"):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref} is not pinned by SHA"
            assert match["comment"] and re.fullmatch(r"v\d+(\.\d+)*", match["comment"]), f"{path.name}: {ref}"


def test_github_workflows_that_sign_in_to_azure_may_request_an_id_token():
    # Per job: a job's own `permissions` replace the workflow's (security.yml grants id-token to its image scan only).
    for path in WORKFLOWS:
        data = yaml.safe_load(path.read_text())
        for name, job in data.get("jobs", {}).items():
            text = yaml.safe_dump(job)
            if "azure/login@" in text or "ACTIONS_ID_TOKEN_REQUEST" in text:
                permissions = job.get("permissions", data.get("permissions", {}))
                assert permissions.get("id-token") == "write", f"{path.name}: {name}"


def test_github_promotes_dev_stg_prd_through_the_gate_and_protected_environments():
    jobs = workflow("ci.yml")["jobs"]
    assert jobs["apply-dev"]["with"]["github-environment"] == "dev-uaenorth"
    for short, previous in (("stg", "dev"), ("prd", "stg")):
        assert jobs[f"gate-{short}"]["needs"] == [f"deploy-{previous}"]
        assert jobs[f"apply-{short}"]["needs"] == [f"gate-{short}"]
        assert jobs[f"apply-{short}"]["with"] == {"environment": f"{short}-uaenorth", "mode": "apply",
                                                  "github-environment": f"{short}-uaenorth"}
        assert "package" in jobs[f"deploy-{short}"]["needs"]
    # the plan artifact apply downloads is the one the plan matrix made in this run
    steps = workflow("terraform.yml")["jobs"]["terraform"]["steps"]
    download = next(s for s in steps if "download-artifact" in s.get("uses", ""))
    assert download["with"]["name"] == "plan-${{ inputs.environment }}"
