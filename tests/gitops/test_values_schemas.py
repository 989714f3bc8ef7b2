"""Helm values checked offline against each chart's own values.schema.json (issue 8 item 17).

Helm validates a release's merged values against the chart's values.schema.json, and each enabled subchart's
values against the subchart's, before it renders anything. These tests do the same with the schemas vendored in
gitops/schemas/values/ (index.yaml says which chart versions ship one and which ship none), so that a misplaced
or misspelt value fails before a reconcile does. A HelmRelease whose chart version is in neither list fails too:
bumping a pin means looking at the new tag. Where a chart ships no values schema but copies a subtree of its
values into a custom resource whose CRD it ships (the AMD operator's DeviceConfig), that subtree is checked
against the CRD's schema instead (`derived:` in the index).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache

import jsonschema
import pytest
import yaml

from .conftest import ENVS, LAYERS, SCHEMAS, find, name_of, platform
from .test_policies import chart_of

VALUES_SCHEMAS = SCHEMAS / "values"


@dataclass(frozen=True)
class ChartRecord:
    """One chart version as index.yaml records it: its schema file (None when the chart ships none)."""

    chart: str
    version: str
    schema: str | None
    close_objects: bool
    values_key: str | None = None  # subcharts only: where their values sit in the parent's
    condition: str | None = None  # subcharts only: the values path that enables them (Chart.yaml condition)
    values_path: str | None = None  # derived only: the subtree of the values the schema describes


@dataclass(frozen=True)
class ChartChecks:
    """Everything index.yaml says to check of one chart version's values."""

    chart: ChartRecord
    subcharts: tuple[ChartRecord, ...]
    derived: tuple[ChartRecord, ...]


@cache
def index() -> dict:
    return yaml.safe_load((VALUES_SCHEMAS / "index.yaml").read_text())


def record_of(entry: dict, parent: dict | None = None) -> ChartRecord:
    owner = entry if "chart" in entry else parent
    return ChartRecord(chart=owner["chart"], version=str(owner["version"]), schema=entry.get("schema"),
                       close_objects=bool(entry.get("close_objects", False)), values_key=entry.get("values_key"),
                       condition=entry.get("condition"), values_path=entry.get("values_path"))


@cache
def records() -> dict[tuple[str, str], ChartChecks]:
    """(chart, version) -> what to check of its values."""
    return {(e["chart"], str(e["version"])): ChartChecks(
        chart=record_of(e), subcharts=tuple(record_of(s) for s in e.get("subcharts", [])),
        derived=tuple(record_of(d, parent=e) for d in e.get("derived", [])))
        for e in index()["charts"]}


def closed(schema):
    """The schema with additionalProperties: false on every object that lists properties and says nothing
    about others (for charts whose schema is generated from values.yaml but left open); a CRD's object that
    keeps unknown fields (x-kubernetes-preserve-unknown-fields) stays open."""
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if isinstance(schema.get("properties"), dict) and schema["properties"] and \
                "additionalProperties" not in schema and "patternProperties" not in schema and \
                not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


@cache
def validator(schema_file: str, close_objects: bool):
    schema = json.loads((VALUES_SCHEMAS / schema_file).read_text())
    if close_objects:
        schema = closed(schema)
    return draft_of(schema)(schema)


# Helm reads a schema's $schema whether spelt http:// or https:// (Loki's says https://json-schema.org/draft-07);
# jsonschema knows each draft by one spelling only, so the draft is picked by its name.
DRAFTS = (("draft-07", jsonschema.Draft7Validator), ("2019-09", jsonschema.Draft201909Validator),
          ("2020-12", jsonschema.Draft202012Validator))


def draft_of(schema: dict):
    return next((cls for name, cls in DRAFTS if name in schema.get("$schema", "")), jsonschema.Draft202012Validator)


def schema_errors(record: ChartRecord, values: dict, prefix: str = "") -> list[str]:
    if record.schema is None:
        return []
    return [f"{prefix}{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}"
            for e in sorted(validator(record.schema, record.close_objects).iter_errors(values),
                            key=lambda e: list(map(str, e.absolute_path)))]


def at_path(values: dict, path: str):
    """The value at a dotted path of the values, or None where any part is missing."""
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def enabled(condition: str | None, values: dict) -> bool:
    """Whether a subchart is on: its condition path in the release's values, unless set, the chart default
    (every subchart listed in index.yaml is on by default)."""
    return not condition or at_path(values, condition) is not False


def values_problems(chart: str, version: str, values: dict) -> list[str]:
    """What Helm's schema validation would say of these values for this chart version (a pure function of the
    index and the vendored schemas); a version the index does not record is itself a problem."""
    if (chart, version) not in records():
        return [f"{chart} {version} is neither schema-checked nor recorded as schemaless in "
                "gitops/schemas/values/index.yaml: look at the chart's source at that tag"]
    checks = records()[(chart, version)]
    problems = schema_errors(checks.chart, values)
    for sub in checks.subcharts:
        if enabled(sub.condition, values):
            problems += schema_errors(sub, values.get(sub.values_key) or {}, prefix=f"{sub.values_key}.")
    for derived in checks.derived:
        if (subtree := at_path(values, derived.values_path)) is not None:
            problems += schema_errors(derived, subtree, prefix=f"{derived.values_path}.")
    return problems


def test_the_index_says_of_every_chart_version_whether_it_has_a_schema_and_where_it_was_looked_for():
    problems = []
    for entry in index()["charts"]:
        for e in (entry, *entry.get("subcharts", [])):
            label = f"{e['chart']} {e['version']}"
            if e is entry and "kube_version" not in e:
                problems.append(f"{label}: kube_version (Chart.yaml kubeVersion at the tag, or null)")
            if ("schema" in e) == ("no_schema" in e):
                problems.append(f"{label}: exactly one of schema / no_schema")
            if not str(e.get("source", "")).startswith("https://github.com/"):
                problems.append(f"{label}: source must be the chart's repository at its tag")
            if "no_schema" in e and "no values.schema.json at" not in e["no_schema"]:
                problems.append(f"{label}: no_schema says 'no values.schema.json at <tag>'")
            if e.get("schema") and not (VALUES_SCHEMAS / e["schema"]).is_file():
                problems.append(f"{label}: {e['schema']} is missing")
            if e.get("schema") and e["schema"] != f"{e['chart']}-{e['version']}.values.schema.json":
                problems.append(f"{label}: name the file <chart>-<version>.values.schema.json")
        for e in entry.get("subcharts", []):
            if not (e.get("values_key") and e.get("condition")):
                problems.append(f"{e['chart']}: a subchart needs values_key and condition")
        for e in entry.get("derived", []):
            label = f"{entry['chart']} {entry['version']} {e.get('values_path')}"
            if not (e.get("values_path") and str(e.get("source", "")).startswith("https://github.com/")):
                problems.append(f"{label}: a derived schema needs values_path and the source it was taken from")
            if e.get("schema") != f"{entry['chart']}-{entry['version']}.{e.get('values_path')}.schema.json":
                problems.append(f"{label}: name the file <chart>-<version>.<values_path>.schema.json")
            elif not (VALUES_SCHEMAS / e["schema"]).is_file():
                problems.append(f"{label}: {e['schema']} is missing")
    assert not problems
    keys = [(e["chart"], str(e["version"])) for e in index()["charts"]]
    assert len(keys) == len(set(keys)), "one entry per chart version"


def test_every_vendored_values_schema_is_in_the_index():
    listed = {s["schema"] for e in index()["charts"]
              for s in (e, *e.get("subcharts", []), *e.get("derived", [])) if s.get("schema")}
    assert {p.name for p in VALUES_SCHEMAS.glob("*.json")} == listed


@pytest.mark.parametrize("env", ENVS)
def test_every_helm_release_passes_its_charts_values_schema(objects, env):
    if any((layer, env) not in objects for layer in LAYERS):
        pytest.skip("an overlay of this environment does not build (see test_every_overlay_builds)")
    objs = [o for layer in LAYERS for o in objects[(layer, env)]]
    used, failures = set(), {}
    for hr in find(objs, "HelmRelease"):
        chart, version, _ = chart_of(hr, objs)
        used.add((chart, version))
        if problems := values_problems(chart, version, hr["spec"].get("values") or {}):
            failures[name_of(hr)] = problems
    assert not failures, json.dumps(failures, indent=1)
    assert set(records()) <= used, f"index entries no release uses: {sorted(set(records()) - used)}"


# Each vendored schema (and the index itself) must reject what Helm would: one case per behaviour.
REJECTED = [
    ("misspelt cert-manager key", "cert-manager", "v1.21.1", {"replicaCount": 2, "webhok": {}}),
    ("cert-manager value of the wrong type", "cert-manager", "v1.21.1", {"crds": {"enabled": "yes"}}),
    ("misspelt external-secrets key", "external-secrets", "2.9.0", {"serviceAccount": {"nmae": "x"}}),
    ("external-secrets value of the wrong type", "external-secrets", "2.9.0", {"replicaCount": "two"}),
    ("Loki ruler storage that is not an object", "loki", "7.0.0", {"loki": {"rulerConfig": {"storage": "azure"}}}),
    ("misspelt key in the NVIDIA chart's Node Feature Discovery", "gpu-operator", "v26.7.0",
     {"node-feature-discovery": {"worker": {"tolerashuns": []}}}),
    ("misplaced toleration field in Node Feature Discovery", "gpu-operator", "v26.7.0",
     {"node-feature-discovery": {"worker": {"tolerations": [{"key": "k", "efect": "NoSchedule"}]}}}),
    ("an AMD operand toleration in commonConfig, which the chart drops", "gpu-operator-charts", "v1.5.1",
     {"deviceConfig": {"spec": {"commonConfig": {"tolerations": [{"key": "amd.com/gpu"}]}}}}),
    ("a misspelt AMD device plugin field", "gpu-operator-charts", "v1.5.1",
     {"deviceConfig": {"spec": {"devicePlugin": {"enableNodeLabeler": True}}}}),
    ("a chart version nobody looked at", "gateway-helm", "v1.8.4", {}),
]

ACCEPTED = [
    ("a schemaless chart's values", "kyverno", "3.9.0", {"anything": {"goes": True}}),
    ("values of a disabled subchart", "gpu-operator", "v26.7.0",
     {"nfd": {"enabled": False}, "node-feature-discovery": {"tolerashuns": []}}),
    ("AMD operand tolerations where the DeviceConfig has them", "gpu-operator-charts", "v1.5.1",
     {"deviceConfig": {"spec": {"devicePlugin": {"devicePluginTolerations": [{"key": "amd.com/gpu"}]}}}}),
    ("the NVIDIA chart's own keys, its Node Feature Discovery enabled", "gpu-operator", "v26.7.0",
     {"nfd": {"enabled": True}, "node-feature-discovery": {"worker": {"tolerations": []}}}),
]


@pytest.mark.parametrize(("case", "chart", "version", "values"), REJECTED, ids=[c[0] for c in REJECTED])
def test_values_schemas_reject_misplaced_or_misspelt_values(case, chart, version, values):
    assert values_problems(chart, version, values), f"{case} was accepted"


@pytest.mark.parametrize(("case", "chart", "version", "values"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_values_schemas_accept_what_helm_would(case, chart, version, values):
    assert not values_problems(chart, version, values)


# ---------------------------------------------------------------- Chart.yaml kubeVersion against the cluster's

CONSTRAINT_TERM = re.compile(r"(>=|<=|!=|>|<|=|\^|~)?\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-[0-9A-Za-z.-]+)?")


def meets(version: str, constraint: str | None) -> bool:
    """Whether a Kubernetes version ("1.36") meets a chart's kubeVersion constraint, as Helm reads it
    (Masterminds semver: `||` between alternatives, terms of one alternative all hold; a `-0` suffix only lets
    pre-releases match). None: the chart sets no constraint."""
    if constraint is None:
        return True
    have = tuple(int(p) for p in [*version.split("."), "0", "0"][:3])

    def holds(op: str, want: tuple[int, int, int]) -> bool:
        return {">=": have >= want, ">": have > want, "<=": have <= want, "<": have < want, "!=": have != want,
                "=": have == want, "": have == want,
                "^": want <= have < (want[0] + 1, 0, 0),
                "~": want <= have < (want[0], want[1] + 1, 0)}[op]

    return any(all(holds(op or "", (int(a), int(b or 0), int(c or 0)))
                   for op, a, b, c in CONSTRAINT_TERM.findall(alternative))
               for alternative in constraint.split("||"))


KUBE_VERSION_CASES = [
    ("no constraint", "1.36", None, True),
    ("a lower bound met", "1.36", ">= 1.29.0-0", True),
    ("a lower bound with a v", "1.36", ">=v1.23.0-0", True),
    ("a lower bound missed", "1.24", ">=1.25.0-0", False),
    ("caret within the major", "1.36", "^1.25.0-0", True),
    ("caret past the major", "2.0", "^1.25.0-0", False),
    ("an upper bound the cluster has passed", "1.36", ">=1.25.0-0 <1.36.0-0", False),
    ("one alternative holds", "1.36", "<1.20.0 || >=1.30.0", True),
]


@pytest.mark.parametrize(("case", "version", "constraint", "ok"), KUBE_VERSION_CASES,
                         ids=[c[0] for c in KUBE_VERSION_CASES])
def test_kube_version_constraints_read_as_helm_reads_them(case, version, constraint, ok):
    assert meets(version, constraint) is ok, case


@pytest.mark.parametrize("env", ENVS)
def test_every_chart_installs_on_the_environments_kubernetes_version(env):
    version = str(platform(env)["cluster"]["kubernetes_version"])
    refused = [f"{e['chart']} {e['version']}: kubeVersion {e['kube_version']!r}" for e in index()["charts"]
               if not meets(version, e["kube_version"])]
    assert not refused, f"Helm refuses these charts on Kubernetes {version}: {refused}"
