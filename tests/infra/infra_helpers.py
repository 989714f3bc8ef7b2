"""Helpers shared by the offline infrastructure checks (tests/infra/test_infra_*.py).

Everything here reads files only: no Azure credentials, no provider downloads.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

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


def parse_hcl(text: str) -> dict:
    """Terraform source text as load_hcl renders a file (e.g. a file of an older commit)."""
    return hcl2.loads(text, serialization_options=_HCL_OPTIONS)


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


# `${...}` in a string python-hcl2 read: anything but braces, and quoted strings (`join(", ", x)`).
_INTERPOLATION = re.compile(r'\$\{((?:[^{}"]|"[^"]*")*)\}')
_JOIN = re.compile(r'join\("([^"]*)",\s*(.+)\)')
# `for_each = local.NAME`, or the same map filtered on one attribute of its entries.
_FOR_EACH = re.compile(r"\$\{local\.(\w+)\}|\$\{\{for (\w+), (\w+) in local\.(\w+) : \2 => \3 if \3\.(\w+)\}\}")
_UNKNOWN = object()


def for_each_instances(directory: Path, body: dict) -> tuple[dict[str, dict], str | None]:
    """The instances of a resource whose for_each is a map in the module's locals: key -> the body with
    `each.key`, `each.value.<attribute>`, `local.<name>` (plain strings) and `join(sep, list)` rendered as
    Terraform would, other references (var., resources) left as written; and the entries' attribute that
    filters the map (`{ for k, v in local.NAME : k => v if v.ATTR }`), or None. Every entry is rendered,
    filtered out or not: the caller checks the filter attribute itself."""
    match = _FOR_EACH.fullmatch(str(body.get("for_each", "")))
    assert match, f"for_each is not a (filtered) map of the module's locals: {body.get('for_each')}"
    scope = module_locals(directory)
    entries = scope[match[1] or match[4]]
    rest = {k: v for k, v in body.items() if k != "for_each"}
    return {key: render(rest, key=key, entry=entry, scope=scope) for key, entry in entries.items()}, match[5]


def instances(directory: Path, rtype: str, name: str) -> dict[str, dict]:
    """key -> rendered body of each for_each instance of one resource of a module (see for_each_instances)."""
    return for_each_instances(directory, resources(directory)[(rtype, name)])[0]


def render(value: Any, *, key: str, entry: dict, scope: dict) -> Any:
    """One for_each instance of a value python-hcl2 read (see for_each_instances)."""
    if isinstance(value, dict):
        return {k: render(v, key=key, entry=entry, scope=scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, key=key, entry=entry, scope=scope) for v in value]
    if not isinstance(value, str):
        return value
    whole = _INTERPOLATION.fullmatch(value)
    if whole:  # "${each.value.severity}" is the number itself, "${each.value.codes}" the list
        found = _evaluate(whole[1], key, entry, scope)
        return value if found is _UNKNOWN else found

    def substitute(match: re.Match) -> str:
        found = _evaluate(match[1], key, entry, scope)
        if found is _UNKNOWN:
            return match[0]
        assert isinstance(found, (str, int)) and not isinstance(found, bool), f"{match[0]} is not a string"
        return str(found)  # an expression ("${var.x}") stays one

    return _INTERPOLATION.sub(substitute, value)


def _evaluate(expression: str, key: str, entry: dict, scope: dict) -> Any:
    expression = expression.strip()
    if expression == "each.key":
        return key
    if match := re.fullmatch(r"each\.value\.(\w+)", expression):
        return entry[match[1]]
    if match := re.fullmatch(r"local\.(\w+)", expression):
        found = scope.get(match[1])
        return found if isinstance(found, str) and "${" not in found else _UNKNOWN
    if match := _JOIN.fullmatch(expression):
        items = _evaluate(match[2], key, entry, scope)
        return _UNKNOWN if items is _UNKNOWN else match[1].join(items)
    return _UNKNOWN


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
