"""`terraform validate` needs the azurerm and azapi providers. It runs when `terraform init` can
install them (a registry or a local mirror is reachable). It is skipped, saying so, only on a proven
network failure: registry.terraform.io cannot be reached directly AND every error of `terraform init`
is a failed connection. A provider-constraint or any other init error fails the test."""

import shutil
import socket
import subprocess
from functools import cache

import pytest
from infra_helpers import ENVIRONMENTS, INFRA, terraform_binary, terraform_env

INIT_TIMEOUT_S = 45
REGISTRY = ("registry.terraform.io", 443)
# What Go's net/http and terraform print when a connection could not be made at all. None of these
# appears in a provider-constraint or validation error (those say "no available releases match",
# "was not found in any of the search locations", ...), unlike "failed to query available provider
# packages" or "registry.terraform.io", which head every provider error whatever its cause.
NETWORK_ERRORS = (
    "dial tcp",
    "no such host",
    "connection refused",
    "connection reset by peer",
    "i/o timeout",
    "network is unreachable",
    "tls handshake timeout",
    "server misbehaving",
)


def registry_reachable(timeout: float = 5.0) -> bool:
    """A direct DNS lookup and TCP connection to the public provider registry."""
    try:
        with socket.create_connection(REGISTRY, timeout=timeout):
            return True
    except OSError:
        return False


def is_network_failure(output: str, *, registry_reachable: bool) -> bool:
    """True only when the registry is unreachable from here AND every error terraform printed is a
    failed connection: one error of another kind (a version constraint, a missing provider) is a real
    failure, whatever else went wrong."""
    if registry_reachable:
        return False
    errors = [block.lower() for block in output.split("Error: ")[1:]]
    return bool(errors) and all(any(marker in error for marker in NETWORK_ERRORS) for error in errors)


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
        if registry_reachable():
            pytest.fail(f"terraform init took over {INIT_TIMEOUT_S}s although registry.terraform.io is reachable")
        pytest.skip(
            f"terraform validate skipped: `terraform init` could not install the providers within "
            f"{INIT_TIMEOUT_S}s (no provider registry reachable). Run `make infra-check` where "
            "registry.terraform.io or a provider mirror is reachable."
        )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if is_network_failure(output, registry_reachable=registry_reachable()):
            flat = " ".join(output.split())  # terraform wraps its messages
            at = min(i for i in (flat.lower().find(m) for m in NETWORK_ERRORS) if i >= 0)
            pytest.skip(
                "terraform validate skipped: the provider registry is unreachable from this machine, so "
                f"azurerm/azapi cannot be installed (...{flat[max(0, at - 80):at + 60]}...). "
                "Run `make infra-check` where "
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


# -- when a failed `terraform init` may be skipped --------------------------------------------------------------

CONSTRAINED_ROOT = """
terraform {
  required_providers {
    azurerm = { source = "hashicorp/azurerm", version = ">= 99.0" }
  }
}
"""


def init_output(tmp_path, provider_installation: str, mirror_versions: tuple[str, ...] = ()) -> str:
    """What a real `terraform init` prints for CONSTRAINED_ROOT with this provider_installation block.
    A filesystem mirror lists versions from its directory names, so no provider binary is needed."""
    for version in mirror_versions:
        folder = tmp_path / "mirror" / "registry.terraform.io" / "hashicorp" / "azurerm" / version / "linux_amd64"
        folder.mkdir(parents=True)
        (folder / f"terraform-provider-azurerm_v{version}").write_bytes(b"")
    (tmp_path / "mirror").mkdir(exist_ok=True)
    config = tmp_path / "cli.tfrc"
    config.write_text(f"provider_installation {{\n{provider_installation.format(mirror=tmp_path / 'mirror')}\n}}\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(CONSTRAINED_ROOT)
    result = subprocess.run(
        [terraform_binary(), f"-chdir={root}", "init", "-backend=false", "-input=false", "-no-color"],
        capture_output=True, text=True, timeout=INIT_TIMEOUT_S, check=False,
        env={**terraform_env(), "TF_CLI_CONFIG_FILE": str(config), "TF_PLUGIN_CACHE_DIR": ""},
    )
    assert result.returncode != 0, "the case was built to make terraform init fail"
    return result.stdout + result.stderr


def closed_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("installation", "versions", "registry_reachable", "skipped"),
    [
        pytest.param('filesystem_mirror {{ path = "{mirror}" }}', ("4.0.0",), False, False,
                     id="a provider version constraint that no release meets is a validation error, never skipped"),
        pytest.param('filesystem_mirror {{ path = "{mirror}" }}', (), False, False,
                     id="a provider that no search location holds is a validation error, never skipped"),
        pytest.param('network_mirror {{ url = "https://127.0.0.1:PORT/" }}', (), False, True,
                     id="a refused connection while no registry is reachable is a network failure, skipped"),
        pytest.param('network_mirror {{ url = "https://127.0.0.1:PORT/" }}', (), True, False,
                     id="a refused connection while the registry is reachable is no proof of being offline"),
    ],
)
def test_only_a_proven_network_failure_skips_terraform_validate(tmp_path, request, installation, versions,
                                                                 registry_reachable, skipped):
    installation = installation.replace("PORT", str(closed_loopback_port()))
    output = init_output(tmp_path, installation, versions)
    verdict = is_network_failure(output, registry_reachable=registry_reachable)
    assert verdict is skipped, f"{request.node.callspec.id}\n{output}"
