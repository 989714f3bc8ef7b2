"""Azure Verified Modules conventions, checked on every module under infra/modules."""

import re

import pytest
from infra_helpers import (
    MODULES,
    MODULES_DIR,
    PREREQUISITES_DIR,
    all_tf_files,
    blocks,
    description_text,
    load_hcl,
    tf_files,
)

MODULE_DIRS = [MODULES_DIR / name for name in MODULES]
# The examples' shared prerequisites module follows the same conventions as the modules it serves.
CONVENTION_DIRS = [*MODULE_DIRS, PREREQUISITES_DIR]
PREREQUISITES_SOURCE = "../../../../examples/prerequisites"
# Modules that create their own resource group, so their examples need nothing around them.
SELF_CONTAINED_MODULES = {"state-bootstrap", "platform"}
# What the examples used to repeat; it now comes from infra/examples/prerequisites.
SHARED_RESOURCE_TYPES = {
    "azurerm_resource_group",
    "azurerm_virtual_network",
    "azurerm_subnet",
    "azurerm_network_security_group",
    "azurerm_subnet_network_security_group_association",
    "azurerm_private_dns_zone",
    "azurerm_log_analytics_workspace",
}


def test_the_module_list_matches_the_folders():
    assert sorted(p.name for p in MODULES_DIR.iterdir() if p.is_dir()) == sorted(MODULES)


@pytest.mark.parametrize("module", CONVENTION_DIRS, ids=lambda p: p.name)
def test_every_module_has_variables_outputs_versions_and_readme(module):
    names = {p.name for p in module.iterdir()}
    assert "variables.tf" in names
    assert "outputs.tf" in names
    assert names & {"versions.tf", "terraform.tf"}, "needs versions.tf or terraform.tf"
    assert "README.md" in names


@pytest.mark.parametrize("module", CONVENTION_DIRS, ids=lambda p: p.name)
def test_every_module_is_split_by_feature_beyond_the_required_files(module):
    feature_files = {p.name for p in tf_files(module)} - {
        "variables.tf",
        "outputs.tf",
        "terraform.tf",
        "versions.tf",
    }
    assert feature_files, "resources belong in main.tf or feature files"
    for name in ("variables.tf", "outputs.tf"):
        assert not load_hcl(module / name).get("resource"), f"{name} declares resources"


@pytest.mark.parametrize("module", MODULE_DIRS, ids=lambda p: p.name)
def test_every_module_has_a_runnable_example(module):
    examples = sorted((module / "examples").glob("*/main.tf"))
    assert examples, "needs examples/<name>/main.tf"
    for example in examples:
        parsed = load_hcl(example)
        sources = [body["source"] for entry in parsed.get("module", []) for body in entry.values()]
        assert "../.." in sources, f'{example} does not call its module with source = "../.."'
        assert parsed.get("provider"), f"{example} configures no provider, so it cannot run"


@pytest.mark.parametrize("module", MODULE_DIRS, ids=lambda p: p.name)
def test_examples_take_shared_infrastructure_from_the_prerequisites_module(module):
    for example in sorted((module / "examples").glob("*/main.tf")):
        parsed = load_hcl(example)
        declared = {rtype for entry in parsed.get("resource", []) for rtype in entry}
        assert not declared & SHARED_RESOURCE_TYPES, (
            f"{example} declares {sorted(declared & SHARED_RESOURCE_TYPES)}: take them from "
            f'module "prerequisites" (infra/examples/prerequisites) instead'
        )
        if module.name in SELF_CONTAINED_MODULES:
            continue
        sources = [body["source"] for entry in parsed.get("module", []) for body in entry.values()]
        assert PREREQUISITES_SOURCE in sources, f'{example} does not call source = "{PREREQUISITES_SOURCE}"'


@pytest.mark.parametrize("module", CONVENTION_DIRS, ids=lambda p: p.name)
def test_every_variable_has_a_type_and_description(module):
    variables = blocks(module, "variable")
    assert variables
    for name, body in variables.items():
        assert body.get("type"), f"variable {name} has no type"
        assert description_text(body), f"variable {name} has no description"


@pytest.mark.parametrize("module", CONVENTION_DIRS, ids=lambda p: p.name)
def test_required_variables_have_no_default_and_optional_ones_do(module):
    for name, body in blocks(module, "variable").items():
        description = description_text(body)
        assert description.startswith(("Required.", "Optional.")), (
            f"{name}: description must start with Required. or Optional."
        )
        has_default = "default" in body
        if description.startswith("Required."):
            assert not has_default, f"{name} is Required. but has a default"
        else:
            assert has_default, f"{name} is Optional. but has no default"


@pytest.mark.parametrize("module", CONVENTION_DIRS, ids=lambda p: p.name)
def test_every_module_validates_its_inputs(module):
    validated = [name for name, body in blocks(module, "variable").items() if body.get("validation")]
    assert validated, "no variable carries a validation block"


@pytest.mark.parametrize("module", CONVENTION_DIRS, ids=lambda p: p.name)
def test_every_output_has_a_description(module):
    outputs = blocks(module, "output")
    assert outputs
    for name, body in outputs.items():
        assert body.get("description", "").strip(), f"output {name} has no description"


@pytest.mark.parametrize("module", CONVENTION_DIRS, ids=lambda p: p.name)
def test_every_module_readme_lists_its_inputs_and_outputs(module):
    readme = (module / "README.md").read_text()
    for kind in ("variable", "output"):
        for name in blocks(module, kind):
            assert f"`{name}`" in readme, f"README.md does not document {kind} `{name}`"


def _bounded(constraint: str) -> bool:
    lower = re.search(r">=?\s*\d", constraint) or re.match(r"^\s*~>\s*\d+\.\d+", constraint)
    upper = re.search(r"<\s*\d", constraint) or re.match(r"^\s*~>\s*\d+\.\d+", constraint)
    return bool(lower and upper)


@pytest.mark.parametrize("path", all_tf_files(), ids=lambda p: str(p.relative_to(MODULES_DIR.parent)))
def test_provider_and_terraform_versions_are_bounded(path):
    for terraform in load_hcl(path).get("terraform", []):
        if "required_version" in terraform:
            assert _bounded(terraform["required_version"]), (
                f"unbounded required_version {terraform['required_version']}"
            )
        for providers in terraform.get("required_providers", []):
            for name, spec in providers.items():
                if name.startswith("__"):  # python-hcl2's record of comments
                    continue
                assert isinstance(spec, dict) and spec.get("source"), f"provider {name} needs a source"
                assert _bounded(spec.get("version", "")), (
                    f"provider {name} version {spec.get('version')!r} is not bounded"
                )


@pytest.mark.parametrize("module", CONVENTION_DIRS, ids=lambda p: p.name)
def test_every_module_pins_terraform_and_its_providers(module):
    pins = [t for p in tf_files(module) for t in load_hcl(p).get("terraform", [])]
    assert any("required_version" in t for t in pins), "no required_version"
    assert any(t.get("required_providers") for t in pins), "no required_providers"
