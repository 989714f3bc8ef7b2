#!/usr/bin/env python3
"""Turn upstream CustomResourceDefinition files into the per-kind JSON schemas of gitops/schemas/.

Usage (from the repository root; reads CRD YAML files you have at hand, e.g. `git show <tag>:<path>` out of the
upstream repository; the tests never run this, they read the committed JSON):

    .venv/bin/python gitops/schemas/from_crd.py path/to/crd.yaml [...]

For the kinds listed under `crd:` in versions.yaml. Each served version's `openAPIV3Schema` is written to
<group>/<version>/<Kind>.json with three changes, the same as update.py makes to the npm-derived schemas:
`apiVersion` and `kind` become constants, `metadata` gets the small schema the other files use, and every object
that declares properties and neither `additionalProperties` nor `x-kubernetes-preserve-unknown-fields` gets
`additionalProperties: false` (the API server prunes unknown fields and Flux's server-side apply refuses them,
so a misspelt field must fail offline too). `description` texts are dropped (size); CEL rules
(`x-kubernetes-validations`) cannot be checked by jsonschema and are dropped too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["name"],
}
DROPPED = {"description", "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
           "x-kubernetes-map-type", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
           "nullable", "default"}


def close(node):
    """The schema node with descriptions dropped and objects closed (see the module docstring)."""
    if isinstance(node, list):
        return [close(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: close(v) for k, v in node.items() if k not in DROPPED}
    if "properties" in node:
        out["properties"] = {k: close(v) for k, v in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if isinstance(out.get("pattern"), str) and "(?i)" in out["pattern"] and not out["pattern"].startswith("(?i)"):
        out["pattern"] = "(?i)" + out["pattern"].replace("(?i)", "")  # RE2 allows the flag mid-pattern
    return out


def schemas(crd: dict):
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        if not version.get("served", True):
            continue
        root = close(version["schema"]["openAPIV3Schema"])
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        props = root.setdefault("properties", {})
        props["apiVersion"] = {"const": f"{group}/{version['name']}"}
        props["kind"] = {"const": kind}
        props["metadata"] = METADATA
        root["required"] = sorted({"apiVersion", "kind", "metadata", *root.get("required", [])})
        root["additionalProperties"] = False
        yield Path(group) / version["name"] / f"{kind}.json", root


def main(paths: list[str]) -> int:
    for path in paths:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            for rel, schema in schemas(doc):
                out = HERE / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                print(rel)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
