"""`terraform validate` needs the azurerm and azapi providers. It runs when `terraform init` can
install them (a registry or a local mirror is reachable) and is skipped, saying so, when not."""

import shutil
import subprocess
from functools import cache

import pytest
from infra_helpers import ENVIRONMENTS, INFRA, terraform_binary, terraform_env

INIT_TIMEOUT_S = 45
UNREACHABLE = (
    "could not connect",
    "failed to query available provider packages",
    "no such host",
    "connection refused",
    "i/o timeout",
    "failed to request discovery document",
    "dial tcp",
    "network is unreachable",
    "registry.terraform.io",
)


@cache
def initialised_copy(tmp_root: str) -> str:
    """infra/ copied to a temp folder and initialised there, so no .terraform or lock file lands in the repo."""
    terraform = terraform_binary()
    copy = f"{tmp_root}/infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    workdir = f"{copy}/envs/{ENVIRONMENTS[0]}"
    try:
        result = subprocess.run(
            [terraform, f"-chdir={workdir}", "init", "-backend=false", "-input=false", "-no-color"],
            capture_output=True,
            text=True,
            timeout=INIT_TIMEOUT_S,
            env=terraform_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(
            f"terraform validate skipped: `terraform init` could not install the providers within "
            f"{INIT_TIMEOUT_S}s (no provider registry reachable). Run `make infra-check` where "
            "registry.terraform.io or a provider mirror is reachable."
        )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).lower()
        if any(marker in output for marker in UNREACHABLE):
            first_error = next(
                (line for line in (result.stderr or result.stdout).splitlines() if "Error" in line), ""
            )
            pytest.skip(
                "terraform validate skipped: the provider registry is unreachable from this machine, so "
                f"azurerm/azapi cannot be installed ({first_error.strip()}). Run `make infra-check` where "
                "registry.terraform.io or a provider mirror (TF_CLI_CONFIG_FILE) is reachable."
            )
        pytest.fail(f"terraform init failed for another reason:\n{result.stdout}\n{result.stderr}")
    return copy


@pytest.fixture(scope="module")
def infra_copy(tmp_path_factory) -> str:
    return initialised_copy(str(tmp_path_factory.mktemp("tf")))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_passes_terraform_validate(infra_copy, env):
    terraform = terraform_binary()
    workdir = f"{infra_copy}/envs/{env}"
    if env != ENVIRONMENTS[0]:
        # Providers are already cached by the first init; this init only links them.
        subprocess.run(
            [terraform, f"-chdir={workdir}", "init", "-backend=false", "-input=false", "-no-color"],
            capture_output=True,
            text=True,
            timeout=INIT_TIMEOUT_S,
            env=terraform_env(),
            check=True,
        )
    result = subprocess.run(
        [terraform, f"-chdir={workdir}", "validate", "-no-color"],
        capture_output=True,
        text=True,
        timeout=120,
        env=terraform_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
