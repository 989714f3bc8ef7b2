"""Every azurerm resource and data source in infra/ matches the azurerm provider's schema, offline.

The schema comes from the pinned `@cdktf/provider-azurerm` bindings (tests/infra/azurerm_schema.py); the
provider constraint of every terraform.tf is the version those bindings were generated from, so what passes
here is what `terraform init` installs. Issue 8 item 16: `terraform validate` is skipped without a registry,
and an argument azurerm does not know (`storage_account_id` on `azurerm_storage_table`) went unnoticed.
"""

from __future__ import annotations

import re

import pytest
from azurerm_schema import Block, SchemaMissing, provider_version, schema
from infra_helpers import INFRA, all_tf_files, load_hcl

# Terraform's own arguments and blocks, valid in any resource or data source.
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}


def azurerm_objects() -> list[tuple[str, str, str, dict]]:
    """(file, kind, type, body) for every azurerm resource and data source in infra/, and every provider block."""
    found = []
    for path in all_tf_files():
        for entry in load_hcl(path).get("provider", []):
            if "azurerm" in entry:
                body = {k: v for k, v in entry["azurerm"].items() if k != "alias"}
                found.append((f"{path.relative_to(INFRA)}:provider.azurerm", "provider", "azurerm", body))
        for kind in ("resource", "data"):
            for entry in load_hcl(path).get(kind, []):
                for type_name, named in entry.items():
                    if type_name.startswith("azurerm_"):
                        for name, body in named.items():
                            found.append((f"{path.relative_to(INFRA)}:{type_name}.{name}", kind, type_name, body))
    return found


def problems(block: Block, body: dict, where: str, top: bool = False) -> list[str]:
    """Unknown arguments or blocks, and missing required ones, in one body and its nested blocks."""
    found = []
    present = set()
    nested: list[tuple[str, dict]] = []
    for key, value in body.items():
        if key.startswith("__") or (top and key in META_ARGUMENTS):
            continue
        if key == "dynamic":
            for entry in value:
                for name, generator in entry.items():
                    present.add(name)
                    nested += [(name, content) for content in generator.get("content", [])]
                    if name not in block.blocks:
                        found.append(f"{where}: unknown dynamic block `{name}`")
            continue
        present.add(key)
        if key in block.blocks:
            items = value if isinstance(value, list) else [value]
            nested += [(key, item) for item in items if isinstance(item, dict)]
        elif key not in block.arguments:
            found.append(f"{where}: unknown argument or block `{key}`")
    for name, content in nested:
        if name in block.blocks:
            found += problems(block.blocks[name], content, f"{where}.{name}")
    found += [f"{where}: missing required `{name}`" for name in sorted(block.required - present)]
    return found


OBJECTS = azurerm_objects()


def test_the_schema_bindings_are_the_pinned_azurerm_release():
    try:
        version = provider_version()
    except SchemaMissing as missing:
        pytest.fail(str(missing))
    assert version == "4.55.0"


def test_infra_uses_azurerm_resources_and_data_sources_at_all():
    kinds = {kind for _, kind, _, _ in OBJECTS}
    assert kinds == {"provider", "resource", "data"} and len(OBJECTS) > 50


@pytest.mark.parametrize(
    ("where", "kind", "type_name", "body"), OBJECTS, ids=[where for where, *_ in OBJECTS]
)
def test_every_azurerm_object_uses_only_arguments_the_provider_knows_and_sets_every_required_one(
    where, kind, type_name, body
):
    try:
        block = schema(kind, type_name)
    except SchemaMissing as missing:
        pytest.fail(f"{where}: {missing}")
    assert problems(block, body, where, top=True) == []


@pytest.mark.parametrize(
    ("label", "body", "expected"),
    [
        # The defect issue 8 names: 4.55 takes the account's name, not its ID.
        ("unknown argument", {"name": "audit", "storage_account_id": "x"},
         ["t: unknown argument or block `storage_account_id`", "t: missing required `storage_account_name`"]),
        ("known arguments", {"name": "audit", "storage_account_name": "st", "count": 1}, []),
        ("unknown nested argument", {"name": "a", "storage_account_name": "s", "acl": [{"id": "x", "bogus": 1}]},
         ["t.acl: unknown argument or block `bogus`"]),
        ("required nested argument", {"name": "a", "storage_account_name": "s",
                                      "acl": [{"id": "x", "access_policy": [{"start": "a", "expiry": "b"}]}]},
         ["t.acl.access_policy: missing required `permissions`"]),
        ("dynamic block", {"name": "a", "storage_account_name": "s",
                           "dynamic": [{"acls": {"for_each": "x", "content": [{"id": "x"}]}}]},
         ["t: unknown dynamic block `acls`"]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_check_reports_unknown_and_missing_names(label, body, expected):
    assert problems(schema("resource", "azurerm_storage_table"), body, "t", top=True) == expected


def terraform_files_with_azurerm() -> list:
    found = []
    for path in all_tf_files():
        for entry in load_hcl(path).get("terraform", []):
            for providers in entry.get("required_providers", []):
                if "azurerm" in providers:
                    found.append((str(path.relative_to(INFRA)), providers["azurerm"]["version"]))
    return found


def test_every_azurerm_constraint_admits_only_the_validated_release_line():
    # `~> 4.55.0` admits 4.55.x patch releases (bug fixes, no schema changes by the provider's versioning
    # policy) and nothing the bindings above were not generated from.
    constraints = terraform_files_with_azurerm()
    assert len(constraints) >= 10
    validated = provider_version()
    major, minor, _ = validated.split(".")
    for where, constraint in constraints:
        assert re.fullmatch(rf"~> {major}\.{minor}\.0", constraint), f"{where}: azurerm {constraint}"


def test_the_parser_sees_required_blocks_and_nested_required_arguments_of_a_large_resource():
    # azurerm_kubernetes_cluster: a required block (default_node_pool) whose own required argument is `name`,
    # and a nested block (identity) whose converter takes an OutputReference | interface union.
    cluster = schema("resource", "azurerm_kubernetes_cluster")
    assert {"default_node_pool", "location", "name", "resource_group_name"} <= cluster.required
    assert "name" in cluster.blocks["default_node_pool"].required
    assert cluster.blocks["identity"].required == {"type"}
    assert "upgrade_settings" in cluster.blocks["default_node_pool"].blocks
    body = {"name": "c", "location": "l", "resource_group_name": "g", "identity": [{}]}
    assert problems(cluster, body, "k", top=True) == [
        "k.identity: missing required `type`",
        "k: missing required `default_node_pool`",
    ]
