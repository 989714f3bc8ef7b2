#!/usr/bin/env python3
"""Re-extract the custom-resource JSON schemas in gitops/schemas/ from the npm packages in versions.yaml.

Usage (from the repository root; needs npm and the npm registry, the tests never do):

    .venv/bin/python gitops/schemas/update.py                 # npm install into a temp dir, then extract
    .venv/bin/python gitops/schemas/update.py --node-modules /tmp/x/node_modules   # reuse an install

The @kubernetes-models packages carry their schemas as ajv "standalone" validators (one JavaScript function
per schema node, every error tagged with `schemaPath:"#/<keyword>"`). This script reads those functions back
into JSON Schema: type (and nullability), required, properties, additionalProperties maps, items, enum,
format, pattern, length/size limits and oneOf. Cross-file references (ObjectMeta, core/v1 Container, ...)
are followed and bundled under `$defs`, so each output file stands alone. Objects that declare properties
get `additionalProperties: false` (the CRDs are structural: the API server prunes unknown fields, and Flux's
server-side apply rejects them), which is what makes a misspelt field fail the offline check.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
FN_HEAD = re.compile(
    r'function (validate\d+)\(data,\{instancePath="",parentData,parentDataProperty,rootData=data\}=\{\}\)\{'
)
IMPORT = re.compile(r'import\{validate as (validate\d+)\}from"([^"]+)"')
EXPORT = re.compile(r"export const validate=(validate\d+);")
ENUM_VAR = re.compile(r"(?:let|const) (schema\d+_enum)=")
JS_STRING = r'"(?:[^"\\]|\\.)*"'
PROP_CALL = re.compile(
    r"void 0!==data(?:\.([A-Za-z_$][\w$]*)|\[(" + JS_STRING + r")\])&&\(?(validate\d+)\(data(?:\.[\w$]+|\[)"
)
MAP_CALL = re.compile(r"for\(let key\d+ in data\)(validate\d+)\(data\[key\d+\]")
ITEM_CALL = re.compile(r"(validate\d+)\(data\[i\d+\]")
SELF_CALL = re.compile(r"(validate\d+)\(data,\{instancePath,parentData,parentDataProperty,rootData\}\)")
LIMIT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


def js_literal_end(src: str, start: int, open_ch: str, close_ch: str) -> int:
    """Index just past the bracket that closes src[start] (string- and regex-literal aware enough for ajv code)."""
    depth = 0
    i = start
    while i < len(src):
        c = src[i]
        if c == '"':
            i += 1
            while src[i] != '"':
                i += 2 if src[i] == "\\" else 1
        elif c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced brackets")


def js_string(lit: str) -> str:
    return json.loads(lit)


class Module:
    """One compiled _schemas/*.js file: its functions, imports, enum constants and exported root."""

    def __init__(self, path: Path):
        self.path = path
        src = path.read_text()
        self.name = path.stem
        self.imports = {local: spec for local, spec in IMPORT.findall(src)}
        m = EXPORT.search(src)
        if not m:
            raise ValueError(f"{path}: no exported validate")
        self.export = m.group(1)
        self.enums: dict[str, list] = {}
        for m in ENUM_VAR.finditer(src):
            end = js_literal_end(src, m.end(), "[", "]")
            self.enums[m.group(1)] = json.loads(src[m.end() : end])
        self.functions: dict[str, str] = {}
        for m in FN_HEAD.finditer(src):
            body_start = m.end() - 1
            end = js_literal_end(src, body_start, "{", "}")
            self.functions[m.group(1)] = src[body_start + 1 : end - 1]


class Extractor:
    def __init__(self, node_modules: Path):
        self.node_modules = node_modules
        self.modules: dict[Path, Module] = {}
        self.defs: dict[str, dict] = {}

    def module(self, path: Path) -> Module:
        path = path.resolve()
        if path not in self.modules:
            self.modules[path] = Module(path)
        return self.modules[path]

    def resolve(self, mod: Module, spec: str) -> Path:
        if spec.startswith("."):
            p = (mod.path.parent / spec).resolve()
        else:
            # Node resolution: nearest node_modules/<package> walking up from the importing file.
            parts = spec.split("/")
            pkg_len = 2 if spec.startswith("@") else 1
            pkg, rest = "/".join(parts[:pkg_len]), "/".join(parts[pkg_len:])
            for parent in mod.path.parents:
                cand = parent / "node_modules" / pkg
                if cand.is_dir():
                    p = cand / rest
                    break
            else:
                raise FileNotFoundError(f"{spec} from {mod.path}")
        return p if p.suffix == ".js" else p.with_name(p.name + ".js")

    def def_name(self, mod: Module, fn: str) -> str:
        return mod.name if fn == mod.export else f"{mod.name}.{fn}"

    def ref(self, mod: Module, fn: str) -> dict:
        """$ref to the schema of function `fn` (local or imported), converting it on first use."""
        if fn in mod.imports:
            target = self.module(self.resolve(mod, mod.imports[fn]))
            return self.ref(target, target.export)
        name = self.def_name(mod, fn)
        if name not in self.defs:
            self.defs[name] = {}  # placeholder breaks recursion (e.g. JSONSchemaProps-like types)
            self.defs[name] = self.convert(mod, fn)
        return {"$ref": f"#/$defs/{name}"}

    def convert(self, mod: Module, fn: str) -> dict:
        body = mod.functions[fn]
        schema: dict = {}
        nullable = re.search(r"null!==data(?![.\[\w])", body) is not None
        if 'keyword:"oneOf"' in body:
            branches = [self.ref(mod, f) for f in SELF_CALL.findall(body)]
            schema["oneOf"] = branches
            return schema
        types = re.findall(r'keyword:"type",params:\{type:"([^"]+)"\}', body)
        if types:
            t = types[-1].split(",")
            if nullable:
                t = [*t, "null"]
            schema["type"] = t[0] if len(t) == 1 else t
        required = [js_string(x) for x in re.findall(r"missingProperty:(" + JS_STRING + ")", body)]
        if required:
            schema["required"] = list(dict.fromkeys(required))
        props = {}
        for ident, quoted, callee in PROP_CALL.findall(body):
            props[ident or js_string(quoted)] = self.ref(mod, callee)
        if props:
            schema["properties"] = props
        maps = MAP_CALL.findall(body)
        if maps:
            schema["additionalProperties"] = self.ref(mod, maps[0])
        elif props:
            schema["additionalProperties"] = False
        items = ITEM_CALL.findall(body)
        if items:
            schema["items"] = self.ref(mod, items[0])
        if not (types or props or maps or items):
            delegated = SELF_CALL.findall(body)
            if delegated:
                target = self.ref(mod, delegated[0])
                return {"anyOf": [target, {"type": "null"}]} if nullable else target
        m = re.search(r'keyword:"enum",params:\{allowedValues:([^}]+)\}', body)
        if m:
            val = m.group(1)
            schema["enum"] = mod.enums[val] if val in mod.enums else json.loads(val)
            if nullable and None not in schema["enum"]:
                schema["enum"] = [*schema["enum"], None]
        m = re.search(r'keyword:"format",params:\{format:"([^"]+)"\}', body)
        if m:
            schema["format"] = m.group(1)
        m = re.search(r'keyword:"pattern",params:\{pattern:(' + JS_STRING + r")\}", body)
        if m:
            pattern = js_string(m.group(1))
            if "(?i)" in pattern and not pattern.startswith("(?i)"):
                # Go/RE2 accepts an inline flag mid-pattern; Python's re only at the start.
                pattern = "(?i)" + pattern.replace("(?i)", "")
            schema["pattern"] = pattern
        for kw in LIMIT_KEYWORDS:
            m = re.search(r'keyword:"' + kw + r'",params:\{limit:(-?\d+)\}', body)
            if m:
                schema[kw] = int(m.group(1))
        for kw, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            m = re.search(r'keyword:"' + kw + r'",params:\{comparison:"([<>]=?)",limit:(-?[\d.]+)\}', body)
            if m:
                num = float(m.group(2)) if "." in m.group(2) else int(m.group(2))
                schema[kw if m.group(1).endswith("=") else exclusive] = num
        return schema

    def bundle(self, js_file: Path, title: str) -> dict:
        self.defs = {}
        root = self.ref(self.module(js_file), self.module(js_file).export)
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": title,
            **root,
            "$defs": dict(sorted(self.defs.items())),
        }


def npm_install(packages: list[str], prefix: Path) -> Path:
    npm = shutil.which("npm")
    if not npm:
        sys.exit("update.py needs npm (Node.js >= 22) to fetch the schema packages")
    subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--ignore-scripts", *packages],
        check=True,
    )
    return prefix / "node_modules"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--node-modules", type=Path, help="use this node_modules instead of a fresh npm install")
    args = ap.parse_args()
    versions = yaml.safe_load((HERE / "versions.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        nm = args.node_modules or npm_install(
            [f"{p['package']}@{p['version']}" for p in versions["npm"]], Path(tmp)
        )
        ex = Extractor(nm)
        for pkg in versions["npm"]:
            installed = json.loads((nm / pkg["package"] / "package.json").read_text())["version"]
            if installed != str(pkg["version"]):
                sys.exit(f"{pkg['package']}: installed {installed}, versions.yaml says {pkg['version']}")
            for k in pkg["kinds"]:
                js = nm / pkg["package"] / "_schemas" / f"{k['schema']}.js"
                title = f"{k['group']}/{k['version']} {k['kind']} from {pkg['package']}@{pkg['version']}"
                schema = ex.bundle(js, title)
                out = HERE / k["group"] / k["version"] / f"{k['kind']}.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(schema, indent=1, sort_keys=False) + "\n")
                print(f"{out.relative_to(HERE)}: {len(schema['$defs'])} definitions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
