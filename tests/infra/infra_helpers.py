"""Helpers shared by the offline infrastructure checks (tests/infra/test_infra_*.py).

Everything here reads files only: no Azure credentials, no provider downloads.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from functools import cache
from pathlib import Path

import hcl2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MODULES_DIR = INFRA / "modules"
# What the module examples share (resource group, private-endpoint network, DNS zones, workspace...).
PREREQUISITES_DIR = INFRA / "examples" / "prerequisites"
ENVS_DIR = INFRA / "envs"
ENVIRONMENTS = ("dev-uaenorth", "stg-uaenorth", "prd-uaenorth")
MODULES = (
    "network",
    "aks",
    "acr",
    "keyvault",
    "storage",
    "monitoring",
    "automation",
    "state-bootstrap",
    "postgresql",
    "platform",
)
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"

_HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)


@cache
def load_hcl(path: Path) -> dict:
    """One .tf file as python-hcl2 renders it: blocks are lists of {label: body} dicts."""
    with path.open() as fh:
        return hcl2.load(fh, serialization_options=_HCL_OPTIONS)


def tf_files(directory: Path) -> list[Path]:
    """The .tf files of one Terraform module (not of its examples)."""
    return sorted(directory.glob("*.tf"))


def all_tf_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts)


def blocks(directory: Path, kind: str) -> dict[str, dict]:
    """Named blocks of one kind (variable, output, module, locals...) across a module's files."""
    found: dict[str, dict] = {}
    for path in tf_files(directory):
        for entry in load_hcl(path).get(kind, []):
            for name, body in entry.items():
                found[name] = body
    return found


def resources(directory: Path) -> dict[tuple[str, str], dict]:
    """(type, name) -> body for every resource of a module."""
    found: dict[tuple[str, str], dict] = {}
    for path in tf_files(directory):
        for entry in load_hcl(path).get("resource", []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    found[(rtype, name)] = body
    return found


def module_locals(directory: Path) -> dict:
    merged: dict = {}
    for path in tf_files(directory):
        for entry in load_hcl(path).get("locals", []):
            merged.update(entry)
    return merged


def description_text(body: dict) -> str:
    """A block's description, with python-hcl2's heredoc markers removed."""
    text = str(body.get("description", ""))
    if text.startswith("<<"):
        text = textwrap.dedent(text.split("\n", 1)[1].rsplit("\n", 1)[0])
    return text.strip()


@cache
def platform_file(env: str) -> dict:
    with (ENVS_DIR / env / "platform.yaml").open() as fh:
        return yaml.safe_load(fh)


def terraform_binary() -> str:
    path = shutil.which("terraform")
    if path is None:
        pytest.skip(
            "terraform is not installed: install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"
        )
    return path


def terraform_env() -> dict[str, str]:
    """Environment for terraform subprocesses: no prompts, and no warning about a CLI config
    file that TF_CLI_CONFIG_FILE names but that does not exist."""
    env = dict(os.environ, TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    cli_config = env.get("TF_CLI_CONFIG_FILE")
    if cli_config and not Path(cli_config).exists():
        env.pop("TF_CLI_CONFIG_FILE")
    return env
