"""The azurerm provider's configuration schema, read offline from the prebuilt CDK for Terraform bindings.

`@cdktf/provider-azurerm` (package.json, pinned) is generated from the provider's own schema: 14.23.1 carries
azurerm 4.55.0. Each resource or data source is one folder under `lib/`:

- `index.js` converts configuration to Terraform names. The class of the resource has
  `synthesizeHclAttributes()`, and each nested block has a `<struct>ToHclTerraform(struct)` function; both
  list every argument and block as `terraform_name: { value: ..., isBlock: true|false, ... }`, and a block's
  value names the converter of its own body. `synthesizeAttributes()` / `<struct>ToTerraform(struct)` map each
  Terraform name to its camelCase property.
- `index.d.ts` declares the configuration interfaces: a property without `?` is required.

Nothing here downloads anything: the package comes from package-lock.json (`make node`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "node_modules" / "@cdktf" / "provider-azurerm"

_FUNCTION = re.compile(r"^function (\w+)ToHclTerraform\(struct\) \{$", re.M)
_METHOD = re.compile(r"^    synthesizeHclAttributes\(\) \{$", re.M)
# One entry of an attrs object: `            name: {\n                value: <expr>,\n                isBlock: true,`
_ENTRY = re.compile(r"^\s+(\w+): \{\n\s+value: (.*),\n\s+isBlock: (true|false),", re.M)
_CONVERTER = re.compile(r"(\w+)ToHclTerraform\b")
# `storage_account_name: cdktf.stringToTerraform(this._storageAccountName),` / `(struct.expiry)` / `struct!.x`
_PROPERTY = re.compile(r"^\s+(\w+): .*?\((?:this\._|struct!?\.)(\w+)\b", re.M)
_TO_TF = re.compile(r"^function (\w+)ToTerraform\(struct\) \{$", re.M)
_DECLARED = re.compile(r"^export declare function (\w+)ToTerraform\(struct\?: ([^)]*)\)", re.M)
_INTERFACE = re.compile(r"^export interface (\w+)(?: extends [\w.]+)? \{\n(.*?)^\}", re.M | re.S)
_MEMBER = re.compile(r"^\s+readonly (\w+)(\??):", re.M)


@dataclass(frozen=True)
class Block:
    """One configuration body: its arguments, its nested blocks, and which of either are required."""

    arguments: frozenset[str]
    blocks: dict[str, Block] = field(hash=False)
    required: frozenset[str]


class SchemaMissing(LookupError):
    """The pinned bindings are not installed, or carry no such resource or data source."""


def provider_version() -> str:
    """The azurerm version the bindings were generated from (package.json `cdktf.provider.version`)."""
    if not PACKAGE.is_dir():
        raise SchemaMissing(f"{PACKAGE.relative_to(REPO)} is not installed: run `make node`")
    meta = json.loads((PACKAGE / "package.json").read_text())
    return meta["cdktf"]["provider"]["version"]


def _section(source: str, start: int) -> str:
    """The text of one function or method body: from `start` to its closing brace at the same indent."""
    line_start = source.rfind("\n", 0, start) + 1
    indent = len(source[line_start:start]) - len(source[line_start:start].lstrip())
    end = source.find("\n" + " " * indent + "}\n", start)
    return source[start:end]


@cache
def _folder(kind: str, type_name: str) -> Path:
    stem = type_name.removeprefix("azurerm_").replace("_", "-")
    folder = PACKAGE / "lib" / {"data": f"data-azurerm-{stem}", "provider": "provider"}.get(kind, stem)
    marker = f'.tfResourceType = "{type_name}";'
    if folder.is_dir() and marker in (folder / "index.js").read_text():
        return folder
    for candidate in sorted((PACKAGE / "lib").iterdir()):
        index = candidate / "index.js"
        if candidate.name.startswith("data-") == (kind == "data") and index.is_file() and marker in index.read_text():
            return candidate
    raise SchemaMissing(f"azurerm {PACKAGE.name} has no {kind} {type_name}")


@cache
def schema(kind: str, type_name: str) -> Block:
    """The configuration schema of one `resource` or `data` type, e.g. schema("resource", "azurerm_storage_table"),
    or of the provider's own block: schema("provider", "azurerm")."""
    provider_version()  # a clear message when the package is missing
    folder = _folder(kind, type_name)
    js = (folder / "index.js").read_text().split("\n//# sourceMappingURL=")[0]
    dts = (folder / "index.d.ts").read_text()

    # Terraform name -> (is a block, converter of the block's body), per converter and for the resource.
    bodies: dict[str, dict[str, tuple[bool, str | None]]] = {}
    for match in _FUNCTION.finditer(js):
        bodies[match.group(1)] = _entries(_section(js, match.start()))
    (method,) = list(_METHOD.finditer(js))
    bodies[""] = _entries(_section(js, method.start()))

    # Terraform name -> camelCase property, per converter (synthesizeAttributes for the resource itself).
    properties: dict[str, dict[str, str]] = {}
    for match in _TO_TF.finditer(js):
        properties[match.group(1)] = dict(_PROPERTY.findall(_section(js, match.start())))
    synth = js.index("    synthesizeAttributes() {")
    properties[""] = dict(_PROPERTY.findall(_section(js, synth)))

    interfaces = {name: dict(_MEMBER.findall(body)) for name, body in _INTERFACE.findall(dts)}
    # `struct?: XOutputReference | X | cdktf.IResolvable`: the interface is the union member declared as one.
    interface_of = {
        fn: next((t for t in re.findall(r"[\w.]+", union) if t in interfaces), "")
        for fn, union in _DECLARED.findall(dts)
    }
    config = next(name for name in interfaces if name.endswith("Config") and name[:-6] == folder_class(dts))
    interface_of[""] = config

    def build(converter: str) -> Block:
        entries = bodies[converter]
        members = interfaces.get(interface_of.get(converter, ""), {})
        camel = properties.get(converter, {})
        required = frozenset(
            name for name in entries if members.get(camel.get(name, _camel(name))) == "" and name != "id"
        )
        return Block(
            arguments=frozenset(name for name, (is_block, _) in entries.items() if not is_block),
            blocks={name: build(child) for name, (is_block, child) in entries.items() if is_block and child},
            required=required,
        )

    return build("")


def folder_class(dts: str) -> str:
    """The resource class of an index.d.ts: the one declaring `static readonly tfResourceType`."""
    declaration = r"^export declare class (\w+) extends cdktf\.Terraform(?:Resource|DataSource|Provider) \{"
    match = re.search(declaration, dts, re.M)
    if not match:
        raise SchemaMissing("no resource class in index.d.ts")
    return match.group(1)


def _entries(body: str) -> dict[str, tuple[bool, str | None]]:
    found: dict[str, tuple[bool, str | None]] = {}
    for name, value, is_block in _ENTRY.findall(body):
        converter = _CONVERTER.search(value)
        found[name] = (is_block == "true", converter.group(1) if converter else None)
    return found


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
